package poller_test

import (
	"context"
	"testing"
	"time"
)

// sleepGate is an injected Sleep that reports every wait on slept and
// returns only when the test lets it (wake), or at once after free is
// closed.
type sleepGate struct {
	slept chan time.Duration
	wake  chan struct{}
	free  chan struct{}
}

func newSleepGate() *sleepGate {
	return &sleepGate{slept: make(chan time.Duration), wake: make(chan struct{}), free: make(chan struct{})}
}

func (g *sleepGate) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-g.free:
		return ctx.Err()
	case g.slept <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-g.wake:
	case <-g.free:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// TestEmptyMoreAvailableBacksOff: a transmitter that answers at once
// {"sets":{},"moreAvailable":true} is not polled again at once: each such
// answer is followed by the empty-answer backoff, so the requests are
// counted one per backoff. Afterwards the loop polls SETs normally.
func TestEmptyMoreAvailableBacksOff(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.ps.SetEmptyMore(true)
	gate := newSleepGate()
	cfg := r.config(t)
	cfg.Sleep = gate.Sleep
	// A clock that stands still: every answer counts as early, however
	// slowly this machine runs the test.
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return epoch }
	_, stop := start(t, cfg, r.in)

	// waitSlept waits for the loop's next Sleep; a loop that keeps
	// polling without one fails the test by its request count.
	waitSlept := func(wantRequests int) {
		t.Helper()
		guard := time.After(waitLong) // hang detector only
		for {
			select {
			case d := <-gate.slept:
				if d != cfg.MinBackoff {
					t.Fatalf("want a backoff of MinBackoff %v, got %v", cfg.MinBackoff, d)
				}
				if n := len(r.ps.Requests()); n != wantRequests {
					t.Fatalf("at backoff %d: want %d requests, got %d", wantRequests, wantRequests, n)
				}
				return
			case <-time.After(tick):
				if n := len(r.ps.Requests()); n > wantRequests+2 {
					t.Fatalf("%d requests answered moreAvailable without SETs and the loop has not backed off once since request %d", n, wantRequests-1)
				}
			case <-guard:
				t.Fatalf("no backoff after %d requests", len(r.ps.Requests()))
			}
		}
	}
	const rounds = 5
	for i := 1; i <= rounds; i++ {
		waitSlept(i)
		gate.wake <- struct{}{}
	}

	// The transmitter recovers: SETs flow again.
	r.ps.SetEmptyMore(false)
	close(gate.free)
	sets := r.enqueue(t, 3)
	allAcked(t, r.ps, sets)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkStoredOnce(t, stored(t, r.br.JetStream()), sets)
}
