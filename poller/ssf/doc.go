// Package ssf is setgate's side of the OpenID Shared Signals Framework
// (SSF 1.0) as a receiver: discovery of a transmitter, management of the
// stream that carries its SETs, verification and stream status. Like the
// poll loop beside it, it is one of setgate's outbound calls to a
// transmitter; it never verifies or publishes SETs itself.
//
// # Flow
//
//  1. [Discover] reads the transmitter's metadata from
//     <issuer host>/.well-known/ssf-configuration<issuer path>, or after a
//     404 from /.well-known/risc-configuration<issuer path> (SSF 1.0 §7.2:
//     the well-known segment goes between host and path, a trailing "/"
//     is dropped). The answer must be 200 JSON of at most 1 MiB, name the
//     configured issuer exactly, carry a jwks_uri (setgate verifies
//     signatures), and every endpoint must be https (or http on a
//     loopback host, for tests) and on the issuer's origin or one of the
//     allowed origins ([ParseAllowedOrigins]; [ErrForeignOrigin]
//     otherwise, so no credential goes to a host the operator did not
//     name). Anything else is an error and the metadata is not used.
//  2. A [Client] calls the management API the metadata names
//     (configuration, status and verification endpoints) with the
//     receiver's credential (a [poller.Auth]: bearer token or OAuth 2.0
//     client credentials) under the outbound policy (internal/outbound:
//     a timeout on every call, answers capped, no redirects). Every
//     stream configuration it reads, creates or updates must carry the
//     metadata's issuer as iss, or the call fails (a listed stream of
//     another iss is left out); a missing aud is only a warning
//     ([StreamConfig.Warnings]). A 401 with an OAuth 2.0 credential
//     fetches a new token and sends the call once more. Non-2xx answers
//     are [*HTTPError]s with the status,
//     Retry-After and at most 256 bytes of the body; no credential is
//     ever put in an error or a log.
//  3. A [Manager] keeps one issuer's stream as configured:
//     [Manager.Ensure] finds the stream — the pinned StreamID, else the
//     one its [StreamMemory] remembers, else by listing the receiver's
//     streams (a list refused with 403, 404, 405 or 501 lists none) and
//     reusing the one with the configured delivery method (urn:ietf:rfc:8935 push, to
//     SETGATE_PUBLIC_URL/events/<name> with authorization_header
//     "Bearer <token>"; or urn:ietf:rfc:8936 poll, whose endpoint_url the
//     transmitter chooses and the poll loop then uses), updating it with
//     PATCH when events_requested, description, endpoint or
//     authorization differ, or creates one. It never deletes a stream.
//     A poll endpoint_url it is given must pass the same origin check.
//     It records the stream_id and which requested events the transmitter
//     does not deliver.
//  4. [Manager.Run] keeps it healthy: it sets the stream up (retrying with
//     backoff), asks for a verification event with a fresh random state
//     every VerificationInterval (registering the state with the issuer's
//     [verify.States] first, so the verifier accepts exactly that state and
//     rejects others as invalid_state), and reads the stream status every
//     StatusInterval. The gateway hands every accepted verification and
//     stream-updated event of the issuer to [Manager.Observe]: a
//     verification carrying the outstanding state confirms end-to-end
//     delivery; none within VerificationTimeout marks the stream
//     unhealthy. A paused or disabled stream (from the status endpoint or
//     a stream-updated event) is logged at warn and shown unhealthy, so it
//     does not look like a quiet one. [Manager.Status] reports all of it.
//
// Time comes from ManagerConfig.Now and Sleep, so tests step the loop
// without waiting.
package ssf
