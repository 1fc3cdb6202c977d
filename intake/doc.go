// Package intake is the one path every SET takes from a source to the
// stream: verify, publish, then tell the observers.
//
// # The walk of one SET
//
// Push (gateway) and poll (poller) are the two sources. Both hand a raw SET
// to the same [Pipeline], built once at start:
//
//	source (push handler or poll loop)
//	  → Pipeline.Accept
//	      → Source.Verifier.Verify          (package verify)
//	      → Publisher.PublishSET            (bridge: JetStream, every ack)
//	      → rejected (by verify, or by the publisher: too large to
//	        store): logged once, Publisher.PublishRejection
//	      → Observers, in order, then Source.Observer
//	  ← Result and error, sorted by [Classify]
//
// A source that refuses a SET before verification (a poll map key that is
// not the SET's jti, a polled SET over the body limit) calls
// [Pipeline.Reject]: the rejection is logged, announced and observed
// exactly like a SET that failed verification.
// Accept and Reject are one interface, [Intake], so nothing between a
// source and the pipeline can forget to pass rejections on.
//
// # Outcomes
//
// Accept's answer falls into one [Outcome]: [Accepted] or [Duplicate]
// (stored; acknowledge), [Rejected] (a *verify.Error carrying the RFC 8935
// error code; tell the transmitter), [Unavailable] (an error wrapping
// [ErrUnavailable]: not stored, the transmitter retries) or [Failed]
// (anything else: not stored either). Every caller branches on
// [Classify]; none repeats the error tests.
//
// # Observers
//
// An [Observer] sees one [Event] per Accept or Reject: the source, the
// delivery, the outcome, the result, the verified SET if any, the error and
// the durations. The Prometheus metrics (gateway) and an issuer's SSF
// stream manager (verification and stream-updated events) are observers.
// Observers run on the caller's goroutine after the SET was stored or
// refused and before the source answers; they must be quick and must not
// block.
package intake
