package test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// Phases of the outage test. A push records the phase when it starts and
// when it ends.
const (
	phaseUp       int32 = iota // NATS running
	phaseStopping              // shutdown begun
	phaseDown                  // NATS fully down
	phaseRestart               // restart begun
)

// ledger records every SET pushed during the outage test and every answer.
type ledger struct {
	mu       sync.Mutex
	sets     map[string]string // jti -> compact SET
	statuses map[string][]int  // jti -> answers, in order
	counts   map[int]int       // status -> count
	errs     int               // transport errors
	violated []string          // 202s answered entirely while NATS was down

	firstDown, firstBackUp time.Time // first 503, first 202 after the restart
}

func newLedger() *ledger {
	return &ledger{sets: map[string]string{}, statuses: map[string][]int{}, counts: map[int]int{}}
}

func (l *ledger) record(jti, set string, status int, startPhase, endPhase int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sets[jti] = set
	l.statuses[jti] = append(l.statuses[jti], status)
	l.counts[status]++
	now := time.Now()
	if status == http.StatusServiceUnavailable && l.firstDown.IsZero() {
		l.firstDown = now
	}
	if status == http.StatusAccepted && startPhase == phaseRestart && l.firstBackUp.IsZero() {
		l.firstBackUp = now
	}
	if status == http.StatusAccepted && startPhase == phaseDown && endPhase == phaseDown {
		l.violated = append(l.violated, jti)
	}
}

func (l *ledger) count(status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[status]
}

// TestNATSOutage pushes continuously while the NATS server goes down and
// comes back: no 202 while it is down, 503 with Retry-After instead, and
// in the end every SET that got a 202 is stored exactly once.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Env: map[string]string{"SETGATE_PUBLISH_TIMEOUT": "1s"}})

	var phase atomic.Int32
	var afterDown, afterRestart atomic.Int64 // answers to pushes started in those phases
	var badRetryAfter atomic.Int64           // 503s without "Retry-After: 5" (README)
	led := newLedger()
	var stop atomic.Bool
	var wg sync.WaitGroup
	const pushers = 4
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Paced so that the outage does not pile up thousands of SETs
			// to retry; every push runs to its answer.
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for ; !stop.Load(); <-tick.C {
				jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "system"}, fmt.Sprintf("user%d@acme.example", p))
				if err != nil {
					t.Error(err)
					return
				}
				start := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), waitShort)
				resp, err := g.acme.Push(ctx, g.url("/events/acme"), g.acmeToken, set)
				cancel()
				end := phase.Load()
				if err != nil {
					// Unanswered: retried below like a 503.
					led.mu.Lock()
					led.sets[jti] = set
					led.statuses[jti] = append(led.statuses[jti], 0)
					led.errs++
					led.mu.Unlock()
					continue
				}
				if resp.Status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "5" {
					badRetryAfter.Add(1)
				}
				led.record(jti, set, resp.Status, start, end)
				switch start {
				case phaseDown:
					afterDown.Add(1)
				case phaseRestart:
					if resp.Status == http.StatusAccepted {
						afterRestart.Add(1)
					}
				}
			}
		}()
	}
	var stopOnce sync.Once
	stopPushers := func() {
		stopOnce.Do(func() {
			stop.Store(true)
			wg.Wait()
		})
	}
	defer stopPushers()

	// Up: some SETs get through.
	checkFor(t, waitLong, poll, func() error {
		if n := led.count(http.StatusAccepted); n < 20 {
			return fmt.Errorf("want 20 answers of 202 before the outage, got %d", n)
		}
		return nil
	})

	// Down.
	phase.Store(phaseStopping)
	downAt := time.Now()
	ns.Shutdown()
	phase.Store(phaseDown)
	shutdownTook := time.Since(downAt)
	checkFor(t, waitLong, poll, func() error {
		if code, _ := g.getStatus("/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz while NATS is down: want %d, got %d", http.StatusServiceUnavailable, code)
		}
		return nil
	})
	notReadyAfter := time.Since(downAt)
	checkFor(t, waitLong, poll, func() error {
		if n := afterDown.Load(); n < 500 {
			return fmt.Errorf("want 500 answers to pushes sent while NATS is down, got %d", n)
		}
		return nil
	})

	// Back up on the same port and store.
	phase.Store(phaseRestart)
	upAt := time.Now()
	ns.Start()
	checkFor(t, waitLong, poll, func() error {
		if n := afterRestart.Load(); n < 20 {
			return fmt.Errorf("want 20 answers of 202 after the restart, got %d", n)
		}
		return nil
	})
	checkFor(t, waitLong, poll, func() error {
		if code, _ := g.getStatus("/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz after the restart: want %d, got %d", http.StatusOK, code)
		}
		return nil
	})
	stopPushers()

	// The transmitter retries every SET that did not get a 202.
	led.mu.Lock()
	var retry []string
	for jti, sts := range led.statuses {
		if !containsStatus(sts, http.StatusAccepted) {
			retry = append(retry, jti)
		}
	}
	led.mu.Unlock()
	for _, jti := range retry {
		checkFor(t, waitLong, poll, func() error {
			resp, err := g.acme.Push(context.Background(), g.url("/events/acme"), g.acmeToken, led.sets[jti])
			if err != nil {
				return err
			}
			led.record(jti, led.sets[jti], resp.Status, phaseRestart, phaseRestart)
			if resp.Status != http.StatusAccepted {
				return fmt.Errorf("retry of %s: want %d, got %d", jti, http.StatusAccepted, resp.Status)
			}
			return nil
		})
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	for status, n := range led.counts {
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			t.Errorf("status %d answered %d times; want only 202 and 503", status, n)
		}
	}
	if led.errs > 0 {
		t.Errorf("%d pushes got no HTTP answer; want 202 or 503 for every push", led.errs)
	}
	if n := badRetryAfter.Load(); n > 0 {
		t.Errorf("%d answers of 503 without %q", n, "Retry-After: 5")
	}
	if len(led.violated) > 0 {
		t.Errorf("%d pushes sent and answered while NATS was down got 202, e.g. %s", len(led.violated), led.violated[0])
	}
	if led.counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 answers during the outage")
	}

	msgs := readStream(t, ns.URL())
	checkAnsweredStoredOnce(t, msgs, led.statuses)

	gap := "n/a"
	if !led.firstDown.IsZero() && !led.firstBackUp.IsZero() {
		gap = led.firstBackUp.Sub(led.firstDown).Round(time.Millisecond).String()
	}
	t.Logf("outage: %d SETs; answers: 202=%d 503=%d transport errors=%d; retried after restart: %d; "+
		"NATS shutdown took %v, /readyz 503 after %v, down for %v; first 503 to first 202 after restart: %s; stored %d",
		len(led.statuses), led.counts[http.StatusAccepted], led.counts[http.StatusServiceUnavailable], led.errs,
		len(retry), shutdownTook.Round(time.Millisecond), notReadyAfter.Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond), gap, len(msgs))
}

// checkAnsweredStoredOnce asserts the guarantees after a fault, from the answers
// each pushed SET (by jti) got and what the stream holds: every SET got a
// 202 eventually, each such SET is stored exactly once, and the stream
// holds nothing else.
func checkAnsweredStoredOnce(t *testing.T, msgs []stored, statuses map[string][]int) {
	t.Helper()
	stored := byJTI(msgs)
	var never, notOnce, unknown []string
	for jti, sts := range statuses {
		switch {
		case !containsStatus(sts, http.StatusAccepted):
			never = append(never, fmt.Sprintf("%s %v", jti, sts))
		case len(stored[jti]) != 1:
			notOnce = append(notOnce, fmt.Sprintf("%s (answers %v) stored %d times", jti, sts, len(stored[jti])))
		}
	}
	for jti := range stored {
		if _, ok := statuses[jti]; !ok {
			unknown = append(unknown, jti)
		}
	}
	sort.Strings(notOnce)
	if len(never) > 0 {
		t.Errorf("%d SETs never got 202, e.g. %s", len(never), never[0])
	}
	if len(notOnce) > 0 {
		t.Errorf("%d SETs answered 202 are not stored exactly once, e.g. %q", len(notOnce), notOnce[:min(5, len(notOnce))])
	}
	if len(unknown) > 0 {
		t.Errorf("the stream holds %d jtis that were never pushed, e.g. %q", len(unknown), unknown[0])
	}
	if len(msgs) != len(statuses) {
		t.Errorf("stream: want %d messages (one per SET), got %d", len(statuses), len(msgs))
	}
}

func containsStatus(sts []int, want int) bool {
	for _, s := range sts {
		if s == want {
			return true
		}
	}
	return false
}
