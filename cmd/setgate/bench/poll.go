package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// PollResult is the outcome of [Drain].
type PollResult struct {
	// Outcomes holds one entry per queued SET: Acked, Rejected (reported
	// in setErrs) or Unknown (neither when the run ended).
	Outcomes []Outcome
	// Acked and Reported count the SETs acknowledged and reported.
	Acked, Reported int
	// Elapsed is the wall time from queuing the first SET to the last
	// acknowledgement or report.
	Elapsed time.Duration
}

// Rate is acknowledged SETs per second.
func (r *PollResult) Rate() float64 { return rate(r.Acked, r.Elapsed) }

// Drain queues tokens at ps under their jtis and waits until the receiver
// polling ps has acknowledged or reported every one. It gives up when
// nothing was acknowledged for stall, or when ctx is done, and returns
// what was settled so far with the error.
func Drain(ctx context.Context, ps *transmitter.PollServer, jtis []string, tokens [][]byte, stall time.Duration, progress io.Writer, label string) (*PollResult, error) {
	n := len(tokens)
	start := time.Now()
	for i, tok := range tokens {
		ps.Enqueue(jtis[i], string(tok))
	}
	err := waitSettled(ctx, ps, n, start, stall, progress, label)
	res := &PollResult{Elapsed: time.Since(start), Outcomes: make([]Outcome, n)}
	acked, reported := ps.Acked(), ps.Errors()
	for i, jti := range jtis {
		switch {
		case acked[jti] > 0:
			res.Outcomes[i] = Acked
			res.Acked++
		case reported[jti] != (transmitter.SetErr{}):
			res.Outcomes[i] = Rejected
			res.Reported++
		default:
			res.Outcomes[i] = Unknown
		}
	}
	return res, err
}

// waitSettled waits until n SETs were acknowledged or reported at ps.
func waitSettled(ctx context.Context, ps *transmitter.PollServer, n int, start time.Time, stall time.Duration, progress io.Writer, label string) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	lastMoved, lastPrinted, seen := time.Now(), time.Now(), -1
	for {
		settled := ps.AckedCount()
		if settled < n {
			settled += len(ps.Errors())
		}
		now := time.Now()
		if settled >= n {
			return nil
		}
		if settled != seen {
			seen, lastMoved = settled, now
		}
		if now.Sub(lastMoved) > stall {
			return fmt.Errorf("bench: poll: %d of %d SETs settled, none for %s", settled, n, stall)
		}
		if progress != nil && now.Sub(lastPrinted) >= time.Second {
			lastPrinted = now
			fmt.Fprintf(progress, "%s %3.0fs  %8d of %d SETs acknowledged  %7.0f/s\n",
				label, now.Sub(start).Seconds(), settled, n, rate(settled, now.Sub(start)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
