package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
)

// Stored counts the messages of one bench run found in the stream.
type Stored struct {
	// Counts holds the number of messages per SET number n (the jti is the
	// run's prefix followed by n in decimal).
	Counts []int32
	// Messages is the number of messages read.
	Messages int
	// Foreign counts messages with the run's prefix but an n it never
	// signed; Others counts messages of other transmitters.
	Foreign, Others int
}

// NextSeq is the stream sequence the next message stored in stream will
// get: where a run's messages start.
func NextSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", stream, err)
	}
	return info.State.LastSeq + 1, nil
}

// ReadStream reads the headers of the messages of stream from sequence
// from up to the last one stored now and counts them by the Setgate-Jti
// header: SET numbers 0 … total-1 with the given jti prefix.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, from uint64, prefix string, total int) (Stored, error) {
	out := Stored{Counts: make([]int32, total)}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return out, fmt.Errorf("bench: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return out, fmt.Errorf("bench: stream %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if last < from {
		return out, nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
		HeadersOnly:   true,
	})
	if err != nil {
		return out, fmt.Errorf("bench: read stream %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return out, fmt.Errorf("bench: read stream %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			return out, fmt.Errorf("bench: read stream %s after %d messages: %w", stream, out.Messages, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return out, fmt.Errorf("bench: read stream %s: %w", stream, err)
		}
		out.count(m.Headers().Get(bridge.HeaderJTI), prefix)
		if md.Sequence.Stream >= last {
			return out, nil
		}
	}
}

// count adds one message with the given jti.
func (s *Stored) count(jti, prefix string) {
	s.Messages++
	rest, ok := strings.CutPrefix(jti, prefix)
	if !ok {
		s.Others++
		return
	}
	n, err := strconv.ParseUint(rest, 10, 63)
	if err != nil || n >= uint64(len(s.Counts)) {
		s.Foreign++
		return
	}
	s.Counts[n]++
}

// Verdict is the result of the correctness check: the stream holds every
// acknowledged SET once (one message per event), no rejected or unsent
// one, and nothing else.
type Verdict struct {
	Passed bool `json:"passed"`
	// Acked counts SETs acknowledged to their transmitter (202, poll ack)
	// or accepted by a ceiling run; Messages the messages of the run read.
	Acked    int `json:"acknowledged"`
	Messages int `json:"messages"`
	// Missing counts acknowledged SETs with fewer messages than events;
	// Duplicated SETs with more; Unexpected SETs stored although rejected
	// or never sent; Foreign messages with this run's prefix and an
	// unknown number. Any of them fails the check.
	Missing    int `json:"missing"`
	Duplicated int `json:"duplicated"`
	Unexpected int `json:"unexpected"`
	Foreign    int `json:"foreign"`
	// Others counts messages from other transmitters: a failure when the
	// stream is the run's own (strict).
	Others int `json:"others"`
	// StoredUnknown counts SETs answered with a 5xx or a transport error
	// that were stored all the same: allowed (the transmitter retries and
	// gets a duplicate 202).
	StoredUnknown int `json:"stored_after_error"`
	// Problems describes up to five failures.
	Problems []string `json:"problems,omitempty"`
}

// Check compares what the transmitters were told (outcomes, by SET number)
// with what the stream holds; each SET carries events events. strict
// counts messages of other transmitters as failures.
func Check(outcomes []Outcome, events int, st Stored, strict bool) Verdict {
	v := Verdict{Messages: st.Messages, Foreign: st.Foreign, Others: st.Others}
	for n, o := range outcomes {
		c := int(st.Counts[n])
		switch {
		case o == Acked:
			v.Acked++
			if c < events {
				v.Missing++
				v.problem("SET %d acknowledged, %d of %d events stored", n, c, events)
			}
		case c > 0 && o == Unknown:
			v.StoredUnknown++
		case c > 0:
			v.Unexpected++
			v.problem("SET %d stored %d times though %s", n, c, o)
		}
		if c > events {
			v.Duplicated++
			v.problem("SET %d stored %d times for %d events", n, c, events)
		}
	}
	if st.Foreign > 0 {
		v.problem("%d messages with this run's jti prefix and an unknown number", st.Foreign)
	}
	if strict && st.Others > 0 {
		v.problem("%d messages from other transmitters in the run's own stream", st.Others)
	}
	v.Passed = v.Missing == 0 && v.Duplicated == 0 && v.Unexpected == 0 && v.Foreign == 0 && (!strict || v.Others == 0)
	return v
}

// problem records one failure, keeping the first five.
func (v *Verdict) problem(format string, args ...any) {
	if len(v.Problems) < 5 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// String names an outcome.
func (o Outcome) String() string {
	switch o {
	case NotSent:
		return "never sent"
	case Rejected:
		return "rejected"
	case Unknown:
		return "answered 5xx or not at all"
	case Acked:
		return "acknowledged"
	default:
		return "outcome " + strconv.Itoa(int(o))
	}
}
