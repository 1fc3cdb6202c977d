package intake

import (
	"errors"

	"github.com/setgate/setgate/verify"
)

// Outcome is what became of one SET handed to [Intake.Accept].
type Outcome uint8

// The outcomes of Accept, as [Classify] sorts them.
const (
	// Accepted: every event is stored; acknowledge it.
	Accepted Outcome = iota
	// Duplicate: the stream already held every event; acknowledge it.
	Duplicate
	// Rejected: the SET is invalid (a *verify.Error with its RFC 8935
	// code); tell the transmitter, never store it.
	Rejected
	// Unavailable: a valid SET that was not stored (ErrUnavailable); the
	// transmitter retries.
	Unavailable
	// Failed: any other error; not stored.
	Failed
)

var outcomeNames = [...]string{"accepted", "duplicate", "rejected", "unavailable", "failed"}

// String returns the outcome's lowercase name.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Stored reports whether the SET is in the stream (Accepted or Duplicate),
// so the source may acknowledge it.
func (o Outcome) Stored() bool { return o == Accepted || o == Duplicate }

// Classify sorts the answer of [Intake.Accept]. It is the one place that
// tells a rejection from an outage: callers switch on its result instead
// of testing the error themselves.
func Classify(res Result, err error) Outcome {
	switch {
	case err == nil && res.Duplicate:
		return Duplicate
	case err == nil:
		return Accepted
	case AsRejection(err) != nil:
		return Rejected
	case errors.Is(err, ErrUnavailable):
		return Unavailable
	default:
		return Failed
	}
}

// AsRejection returns the *verify.Error in err's chain, the RFC 8935 code
// and description to give the transmitter of a [Rejected] SET; nil when
// err is not a rejection.
func AsRejection(err error) *verify.Error {
	var ve *verify.Error
	if errors.As(err, &ve) {
		return ve
	}
	return nil
}
