// Package gateway is setgate's push receiver (RFC 8935) and its admin
// server.
//
// # Push
//
// POST /events/{name} takes one compact SET for the issuer called name.
// The handler checks, in order: the issuer exists (404), the transmitter's
// bearer credential (401 with WWW-Authenticate, or 403 access_denied when
// the credential belongs to another issuer), the content type (415), the
// body size (413) and, once the whole body has been read, the issuer's
// concurrency limit (429): a slow upload holds a connection, never a slot.
// A 401, 403 or 404 answer closes the connection. It then hands
// the body to the intake pipeline shared with the poller
// ([intake.Pipeline]), which verifies it and publishes every event to
// JetStream, and answers by [intake.Classify]: 202 with an empty body only
// after JetStream acknowledged every event; a SET error is 400 with
// {"err","description"}; a NATS failure is 503 with Retry-After.
//
// # Metrics
//
// [Metrics] is an [intake.Observer]: registered with the pipeline, it
// counts every SET of push and poll alike.
//
// # Admin
//
// The admin handler serves /healthz (the process is alive) and /readyz
// (NATS connected, stream present, not draining).
package gateway
