package intake

import (
	"context"
	"errors"
	"time"

	"github.com/setgate/setgate/verify"
)

// Delivery is how a SET reached setgate.
type Delivery string

// The two deliveries: RFC 8935 push and RFC 8936 poll.
const (
	DeliveryPush Delivery = "push"
	DeliveryPoll Delivery = "poll"
)

// ErrUnavailable is wrapped by every error that means a valid SET was not
// durably stored: NATS down, no acknowledgement in time, an issuer whose
// keys cannot be known yet. Push answers 503 and poll leaves the SET
// unacknowledged, so the transmitter retries (RFC 8935 §2.3, RFC 8936 §2.4).
var ErrUnavailable = errors.New("intake: SET not stored")

// ErrTooLarge is wrapped by the rejection of a SET that is too large to
// be stored: one of its messages would exceed the NATS server's max
// payload, or (poll) it is longer than the receiver's body limit. It can
// never succeed, so it is a SET error (invalid_request, RFC 8935 §2.3 and
// RFC 8936 §2.4), not an outage; push answers it with 413 like a body over
// SETGATE_MAX_BODY_BYTES (README "Push receiver").
var ErrTooLarge = errors.New("intake: SET too large to store")

// ErrStreamFull is wrapped, together with [ErrUnavailable], when the stream
// refused the SET for lack of room (README "Capacity").
var ErrStreamFull = errors.New("intake: stream full")

// Verifier checks raw SETs for one issuer; *verify.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, raw []byte) (*verify.SET, error)
}

// Source is one configured issuer as a delivery source sees it: its name
// (path segment, subject token), its verifier, its subject overrides and
// the observer of its own SETs.
type Source struct {
	Name      string
	Verifier  Verifier
	Overrides map[string]string
	// Observer, if set, sees every Event of this source after the
	// pipeline's observers (an issuer's SSF stream manager).
	Observer Observer
}

// Result is what publishing one SET stored.
type Result struct {
	// Subjects holds the subject of each event, in order.
	Subjects []string
	// Duplicate is true when the stream already held every event, so
	// nothing new was stored.
	Duplicate bool
	// Sequences holds each event's stream sequence (the original one for a
	// duplicate), in order.
	Sequences []uint64
	// PublishTime is how long the stream took to acknowledge every event.
	PublishTime time.Duration
	// SET is the verified SET that was published.
	SET *verify.SET
}

// Intake takes raw SETs from a source; *Pipeline implements it. Accept
// verifies and publishes one SET; Reject records one the source refused
// before verification.
type Intake interface {
	Accept(ctx context.Context, src *Source, raw []byte, d Delivery) (Result, error)
	Reject(ctx context.Context, src *Source, e *verify.Error, d Delivery)
}

// Publisher stores verified SETs and announces rejections; *bridge.Bridge
// implements it with JetStream and core NATS.
type Publisher interface {
	// PublishSET stores every event of set and returns once all are
	// acknowledged. An error wrapping ErrUnavailable means not stored;
	// one wrapping a *verify.Error means set can never be stored (too
	// large for NATS: ErrTooLarge) and is rejected like a SET that
	// failed verification.
	PublishSET(ctx context.Context, issuerName string, overrides map[string]string, set *verify.SET, d Delivery, receivedAt time.Time) (Result, error)
	// PublishRejection announces a rejected SET, best effort, never
	// blocking.
	PublishRejection(issuerName string, code, description, jti string, d Delivery, at time.Time)
}
