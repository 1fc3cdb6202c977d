// Package bench is the measuring kit of "setgate bench": a push load
// generator with keep-alive connections, latency and error accounting, a
// runner for in-process ceilings, parallel pre-signing, a JWKS server, a
// poll driver, process CPU and memory readings, and the correctness check
// that the stream holds exactly the acknowledged SETs.
//
// [RunLocal] and [RunRemote] are the runs themselves: transmitters with
// fresh keys, pre-signed SETs, the ceilings, push and poll, and the check.
// cmd/setgate parses the flags into [Options] and starts the in-process
// gateway ([StartFunc]) or connects to the remote one's NATS
// ([ConnectFunc]).
package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one push endpoint and the bearer token it takes.
type Target struct {
	URL    string
	Bearer string
}

// Item is one pre-signed SET and the index of the [Target] it goes to.
type Item struct {
	Target int
	Body   []byte
}

// Outcome is what happened to one pushed SET, as far as the transmitter
// can tell.
type Outcome uint8

// The outcomes of a push. A SET is stored exactly once when Acked, never
// when NotSent or Rejected, and possibly when Unknown (a 5xx or a transport
// error: the gateway may have stored it before failing to answer; a
// transmitter retries and gets a duplicate 202).
const (
	NotSent Outcome = iota
	Rejected
	Unknown
	Acked
)

// LoadConfig configures [Push].
type LoadConfig struct {
	// Targets are the endpoints; each Item names one by index.
	Targets []Target
	// Concurrency is the number of keep-alive connections, each driven by
	// one goroutine sending the next SET as soon as the previous one is
	// answered.
	Concurrency int
	// Duration ends the run; zero sends every item.
	Duration time.Duration
	// Rate, if positive, paces the run open-loop: item i is due at
	// i/Rate seconds after the start, and its latency counts from then, so
	// a gateway that falls behind is not flattered (no coordinated
	// omission). Zero sends as fast as the connections allow.
	Rate float64
	// TLS configures https targets (roots, client certificate); nil
	// trusts the system's roots. Its ServerName is set per target.
	TLS *tls.Config
	// Progress, if set, gets one line per second.
	Progress io.Writer
	// Label starts each progress line.
	Label string
}

// LoadResult is the outcome of [Push].
type LoadResult struct {
	// Outcomes holds one entry per item (NotSent when the run ended before
	// it).
	Outcomes []Outcome
	// Sent counts requests answered or failed; Accepted counts 202s.
	Sent, Accepted int
	// Elapsed is the wall time from the first request to the last answer.
	Elapsed time.Duration
	// Latencies are the durations of the 202 answers, in no order.
	Latencies []time.Duration
	// Lags are, in an open-loop run, how late each request was written
	// after its due time (a connection still busy with the previous one,
	// or the generator's own wake-up), in no order; a latency includes its
	// lag.
	Lags []time.Duration
	// Errors counts the failures by kind ("http 503", "http 400
	// invalid_key", "transport timeout", …).
	Errors map[string]int
	// Exhausted is true when a Duration was set and the items ran out
	// before it.
	Exhausted bool
}

// Rate is accepted SETs per second.
func (r *LoadResult) Rate() float64 { return rate(r.Accepted, r.Elapsed) }

// pusher is the shared state of one [Push] run.
type pusher struct {
	cfg      LoadConfig
	eps      []*endpoint // one per target
	items    []Item
	outcomes []Outcome
	next     atomic.Int64
	accepted atomic.Int64
	failed   atomic.Int64
	start    time.Time
	deadline time.Time
}

// worker is one connection's share of the results, merged at the end.
type worker struct {
	conn      conn
	latencies []time.Duration
	lags      []time.Duration
	errors    map[string]int
}

// Push sends items to their targets over cfg.Concurrency keep-alive
// connections until every item is sent or cfg.Duration has passed (a
// request under way is always finished and counted). It returns the
// results so far and ctx.Err() when ctx is done first.
func Push(ctx context.Context, cfg LoadConfig, items []Item) (*LoadResult, error) {
	if cfg.Concurrency <= 0 {
		return nil, fmt.Errorf("bench: concurrency must be positive, got %d", cfg.Concurrency)
	}
	p := &pusher{cfg: cfg, items: items, outcomes: make([]Outcome, len(items))}
	for _, t := range cfg.Targets {
		ep, err := newEndpoint(t, cfg.TLS)
		if err != nil {
			return nil, err
		}
		p.eps = append(p.eps, ep)
	}
	workers := make([]worker, cfg.Concurrency)
	start := time.Now()
	p.start = start
	if cfg.Duration > 0 {
		p.deadline = start.Add(cfg.Duration)
	}
	stopProgress := p.progress(ctx, start)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			defer workers[i].conn.close()
			p.work(ctx, &workers[i])
		})
	}
	wg.Wait()
	stopProgress()

	res := &LoadResult{Outcomes: p.outcomes, Elapsed: time.Since(start), Errors: map[string]int{}}
	res.Accepted = int(p.accepted.Load())
	res.Sent = res.Accepted + int(p.failed.Load())
	// A worker takes an index only before the deadline, so one past the
	// end means the items ran out first.
	res.Exhausted = cfg.Duration > 0 && p.next.Load() > int64(len(items))
	for _, w := range workers {
		res.Latencies = append(res.Latencies, w.latencies...)
		res.Lags = append(res.Lags, w.lags...)
		for k, n := range w.errors {
			res.Errors[k] += n
		}
	}
	return res, ctx.Err()
}

// work sends the next item until the run ends.
func (p *pusher) work(ctx context.Context, w *worker) {
	w.errors = map[string]int{}
	for ctx.Err() == nil && (p.deadline.IsZero() || time.Now().Before(p.deadline)) {
		i := p.next.Add(1) - 1
		if i >= int64(len(p.items)) {
			return
		}
		due, ok := p.due(int(i))
		if !ok || !sleepUntil(ctx, due) {
			return
		}
		if p.cfg.Rate > 0 {
			w.lags = append(w.lags, time.Since(due))
		}
		p.send(ctx, w, int(i), due)
	}
}

// due is when item i is to be sent: now, or on the open-loop schedule;
// false when that is after the deadline.
func (p *pusher) due(i int) (time.Time, bool) {
	if p.cfg.Rate <= 0 {
		return time.Now(), true
	}
	t := p.start.Add(time.Duration(float64(i) / p.cfg.Rate * float64(time.Second)))
	return t, p.deadline.IsZero() || !t.After(p.deadline)
}

// send pushes one item and records its outcome; its latency counts from
// due.
func (p *pusher) send(ctx context.Context, w *worker, i int, due time.Time) {
	it := p.items[i]
	status, code, err := w.conn.post(ctx, p.eps[it.Target], it.Body)
	took := time.Since(due)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return // interrupted: neither counted nor classified
		}
		p.outcomes[i] = Unknown
		w.errors[TransportErrorKind(err)]++
		p.failed.Add(1)
	case status == http.StatusAccepted:
		p.outcomes[i] = Acked
		w.latencies = append(w.latencies, took)
		p.accepted.Add(1)
	default:
		p.outcomes[i] = Rejected
		if status >= 500 {
			p.outcomes[i] = Unknown
		}
		w.errors[HTTPErrorKind(status, code)]++
		p.failed.Add(1)
	}
}

// sleepUntil waits until t, or reports false when ctx is done first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// progress prints one line per second until the returned func is called.
func (p *pusher) progress(ctx context.Context, start time.Time) (stop func()) {
	if p.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				acc := p.accepted.Load()
				elapsed := now.Sub(start)
				fmt.Fprintf(p.cfg.Progress, "%s %3.0fs  %8d SETs  %7.0f/s  (last second %7.0f/s)  errors %d\n",
					p.cfg.Label, elapsed.Seconds(), acc, rate(int(acc), elapsed), float64(acc-last), p.failed.Load())
				last = acc
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// rate is n per second of d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
