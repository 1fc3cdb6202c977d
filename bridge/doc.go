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
// "setgate.rejected.<issuer>" by [Bridge.PublishRejection].
package bridge
