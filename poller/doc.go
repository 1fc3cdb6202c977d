// Package poller is setgate's poll receiver (RFC 8936): one [Loop] per
// issuer whose transmitter offers poll delivery.
//
// # The loop
//
// Each request is a POST to the issuer's poll endpoint with
// Content-Type and Accept application/json and the body
//
//	{"maxEvents": N, "returnImmediately": false, "ack": [...], "setErrs": {...}}
//
// (ack and setErrs left out when empty; Content-Language: en when setErrs
// is sent). It is a long poll: the transmitter holds it until SETs are
// available or its timeout passes, and the request is given up after
// LongPollTimeout plus a margin. While the answer says moreAvailable, the
// next request goes out at once.
//
// Every SET of an answer goes through the same verify→publish path as a
// pushed one (an [intake.Intake]: the intake pipeline), several at a
// time. Then, and only then, its outcome is queued for the next request:
//
//   - stored in JetStream, or already stored (a duplicate): its jti goes
//     into ack;
//   - rejected: setErrs[jti] = {"err": code, "description": text}, with
//     the code of its *verify.Error; a map key that is not the SET's jti
//     is invalid_request without further checks;
//   - not persisted (NATS down or slow, any other error): neither
//     acknowledged nor reported, so the transmitter delivers it again;
//     the loop backs off before the next request.
//
// # Guarantees
//
//   - Nothing is acknowledged that JetStream has not acknowledged: an ack
//     is queued only after Accept returned for every SET of its batch.
//   - Nothing is stored twice: a SET delivered again is de-duplicated by
//     JetStream and acknowledged again.
//   - Acks and setErrs are never lost to a failed request: they stay
//     pending until a request carrying them is answered with 200 and a
//     valid body (so the transmitter may see an ack twice, which RFC 8936
//     allows).
//   - The loop never dies: network errors, timeouts, non-200 answers,
//     bodies that are not JSON or over MaxResponseBytes, and publish
//     failures are retried with exponential backoff with full jitter,
//     capped at MaxBackoff; the last error and the next attempt are in
//     [Loop.Status].
//   - On shutdown the batch in hand is finished, then one
//     acknowledge-only request (maxEvents 0, returnImmediately true)
//     delivers what is pending, bounded by ShutdownTimeout.
//
// # Credentials
//
// [BearerToken] sends a static token. [NewOAuth2] runs the client
// credentials grant (RFC 6749 §4.4) against the configured token URL
// only, sending the client's credential exactly one way: HTTP Basic
// ([AuthBasic], the default), the form body ([AuthPost]), or a fresh
// signed assertion per token request ([AuthPrivateKeyJWT], RFC 7523
// §2.2). Polls and token requests go through the outbound policy
// (internal/outbound): a timeout on every call, answers capped, and no
// redirects, so a 307 from the token endpoint never re-sends the secret
// to another host.
//
// # Leases
//
// With several replicas, Config.Lease (setgate passes a bridge.Lease in
// the NATS KV bucket setgate_leases) makes sure one replica polls each
// issuer: the
// loop polls only while it holds the lease, renews it every TTL/3, stops
// polling (finishing its batch and acknowledging) when it loses it or
// cannot renew it before it expires, and releases it on shutdown so
// another replica takes over at once. Without a lease the loop always
// polls. Exactly-once storage does not depend on the lease: two replicas
// polling at once only cause duplicates, which JetStream drops.
package poller
