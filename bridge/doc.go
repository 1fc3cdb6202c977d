// Package bridge is everything setgate does with NATS: the connection (or an
// embedded nats-server with JetStream), stream provisioning, subject naming,
// the message envelope, and publishing verified Security Event Tokens with
// deduplication.
//
// # Subjects
//
// Every event is published on a subject of exactly four tokens,
//
//	<prefix>.<family>.<event>.<issuer>
//
// where family and event come from the event type: known CAEP, RISC and SSF
// types map to short names ("caep.session-revoked", "risc.account-disabled",
// "ssf.verification"), an unknown type maps deterministically to
// "ext.<slug>-<hash>", and a per-issuer override wins. See [Subjects.For].
//
// # Publishing
//
// [Bridge.PublishSET] publishes one message per event of a SET, each carrying
// an [Envelope] as its JSON body and a Nats-Msg-Id derived from iss, jti and
// the event type, so a SET delivered again within the stream's duplicate
// window is not stored twice. It returns only after JetStream acknowledged
// every event; any failure wraps [ErrUnavailable].
//
// Rejected SETs are announced, best effort and outside the stream, on
// "setgate.rejected.<issuer>" by [Bridge.PublishRejection], with a
// [Rejection] as the JSON body.
//
// # The intake's publisher
//
// A [Bridge] is the [intake.Publisher] of the intake pipeline: package
// intake verifies a raw SET, calls PublishSET, and on a rejection logs it
// once and calls PublishRejection. The bridge itself knows nothing about
// verification, HTTP or polling.
//
// # The embedded server
//
// With no URL, [Open] starts nats-server in-process and connects to it
// in-process as an internal user whose password is random per start. Its TCP
// listener ([Config.EmbeddedAddr]; none when empty) admits only
// [ConsumerUser], with the password of [Config.ConsumerPasswordFile] and
// read-only permissions: subscribe to the event and rejection subjects, read
// the stream and run JetStream consumers on it; no publishing into the event
// or setgate subjects, no stream or message changes. [Config.EmbeddedSync]
// chooses whether JetStream syncs every write before acknowledging it.
//
// # Leases
//
// [Bridge.Lease] hands out leases in the "setgate_leases" KV bucket, so
// that with several replicas each poll issuer is polled by one of them.
// Writes are revision-checked; a lease is taken over only after its
// revision stayed unchanged for a whole TTL on the contender's own clock,
// so replicas need no synchronised clocks.
package bridge
