package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// max400s is how many consecutive 400 answers to requests carrying acks or
// setErrs the loop accepts before it drops them (see [Loop.Run]).
const max400s = 3

// Status is a snapshot of a loop for the admin endpoints; /issuers shows
// it as an issuer's "poll" (README "Admin endpoints").
type Status struct {
	// Issuer is the source's name (/issuers names the issuer already);
	// Endpoint the poll URL.
	Issuer   string `json:"-"`
	Endpoint string `json:"endpoint"`
	// LeaseHeld is whether this replica holds the issuer's lease (always
	// true without a lease).
	LeaseHeld bool `json:"lease_held_here"`
	// LastPoll is when the last successful poll was answered.
	LastPoll time.Time `json:"last_poll,omitzero"`
	// LastError and LastErrorAt describe the last failure (transmitter,
	// publish or lease); they stay after a recovery.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextAttempt is when the next request goes out while backing off;
	// zero otherwise.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// ConsecutiveFailures counts failed polls since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Polls counts successful requests; Received the SETs they returned.
	Polls    uint64 `json:"polls"`
	Received uint64 `json:"received"`
	// Acked and SetErrs count the jtis acknowledged and reported in
	// setErrs by requests the transmitter answered with 200.
	Acked   uint64 `json:"acked"`
	SetErrs uint64 `json:"set_errs"`
	// PendingAcks and PendingSetErrs are waiting for the next request.
	PendingAcks    int `json:"pending_acks"`
	PendingSetErrs int `json:"pending_set_errs"`
}

// Loop polls one issuer. Create it with [New] and call [Loop.Run] once.
type Loop struct {
	cfg Config
	in  intake.Intake
	log *slog.Logger

	running atomic.Bool

	// Owned by Run's goroutine.
	ack      []string
	acked    map[string]bool // members of ack
	setErrs  map[string]SetErr
	failures int
	bad400s  int

	mu     sync.Mutex
	status Status
}

// New checks cfg, fills in defaults and returns a loop that hands every
// SET to in (the intake pipeline push shares).
func New(cfg Config, in intake.Intake) (*Loop, error) {
	if in == nil {
		return nil, errors.New("poller: an intake is required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Loop{
		cfg:     cfg,
		in:      in,
		log:     cfg.Logger.With("issuer", cfg.Source.Name, "delivery", intake.DeliveryPoll),
		acked:   map[string]bool{},
		setErrs: map[string]SetErr{},
	}
	l.status = Status{Issuer: cfg.Source.Name, Endpoint: cfg.Endpoint, LeaseHeld: cfg.Lease == nil}
	return l, nil
}

// Status returns a snapshot of the loop's state. It is safe to call at
// any time from any goroutine.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *Loop) update(f func(*Status)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.status)
}

// syncPending publishes the pending counts; only Run's goroutine calls it.
func (l *Loop) syncPending() {
	l.update(func(s *Status) { s.PendingAcks, s.PendingSetErrs = len(l.ack), len(l.setErrs) })
}

// Run polls until ctx is done, then finishes the batch in hand, sends one
// acknowledge-only request for what is still unacknowledged, releases the
// lease and returns. With a lease it polls only while holding it; a lost
// lease ends the current term the same way (batch, acknowledge) and the
// loop goes back to waiting for the lease.
//
// Run returns nil after a clean stop, or an error saying that the final
// acknowledgement could not be delivered (those SETs come again and are
// acknowledged as duplicates next time). Errors while running never stop
// it: they are logged, kept in [Status] and retried with backoff. A
// transmitter that answers 400 three times in a row to requests carrying
// acks or setErrs has them dropped (it may refuse jtis it no longer
// knows); dropping is safe because redelivered SETs are de-duplicated.
func (l *Loop) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("poller: Run called twice")
	}
	l.log.InfoContext(ctx, "poll loop started", "endpoint", l.cfg.Endpoint, "max_events", l.cfg.MaxEvents, "lease", l.cfg.Lease != nil)
	var err error
	if l.cfg.Lease == nil {
		l.term(ctx)
		err = l.flush(ctx)
	} else {
		err = l.runLeased(ctx)
	}
	l.log.InfoContext(ctx, "poll loop stopped", "acked", l.Status().Acked)
	return err
}

// runLeased alternates between waiting for the lease and polling while
// holding it.
func (l *Loop) runLeased(ctx context.Context) error {
	var err error
	for {
		until, ok := l.acquire(ctx)
		if !ok {
			break
		}
		l.log.InfoContext(ctx, "lease acquired, polling")
		l.update(func(s *Status) { s.LeaseHeld = true })
		termCtx, stop := context.WithCancel(ctx)
		kept := make(chan struct{})
		go func() {
			defer close(kept)
			l.keep(termCtx, stop, until)
		}()
		l.term(termCtx)
		stop()
		<-kept
		err = l.flush(ctx)
		if ctx.Err() != nil {
			break
		}
		l.update(func(s *Status) { s.LeaseHeld = false })
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.ShutdownTimeout)
	defer cancel()
	if rerr := l.cfg.Lease.Release(rctx); rerr != nil {
		l.log.WarnContext(ctx, "lease release failed; another replica takes over when it expires", "err", rerr)
	}
	l.update(func(s *Status) { s.LeaseHeld = false })
	return err
}

// renewEvery is the lease renewal (and acquisition retry) interval.
func (l *Loop) renewEvery() time.Duration { return l.cfg.Lease.TTL() / 3 }

// acquire tries to take the lease every renewEvery until it holds it,
// returning the end of its term, or false when ctx is done.
func (l *Loop) acquire(ctx context.Context) (time.Time, bool) {
	for {
		start := l.cfg.Now()
		held, err := l.cfg.Lease.TryAcquire(ctx)
		if ctx.Err() != nil {
			return time.Time{}, false
		}
		if held && err == nil {
			return start.Add(l.cfg.Lease.TTL()), true
		}
		if err != nil {
			l.log.WarnContext(ctx, "lease acquisition failed", "err", err)
			l.noteError(fmt.Errorf("lease: %w", err))
		}
		if l.cfg.Sleep(ctx, l.renewEvery()) != nil {
			return time.Time{}, false
		}
	}
}

// keep renews the lease every renewEvery until ctx is done, and calls
// stop when the lease is lost or about to expire unrenewed.
func (l *Loop) keep(ctx context.Context, stop context.CancelFunc, until time.Time) {
	every := l.renewEvery()
	for {
		if l.cfg.Sleep(ctx, every) != nil {
			return
		}
		start := l.cfg.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		held, err := l.cfg.Lease.TryAcquire(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && held:
			until = start.Add(l.cfg.Lease.TTL())
		case err == nil:
			l.log.WarnContext(ctx, "lease lost to another replica; stopping polls")
			stop()
			return
		default:
			l.log.WarnContext(ctx, "lease renewal failed", "err", err)
			l.noteError(fmt.Errorf("lease: %w", err))
			if !l.cfg.Now().Add(every).Before(until) {
				l.log.WarnContext(ctx, "lease expiring unrenewed; stopping polls")
				stop()
				return
			}
		}
	}
}

// term polls until ctx is done. A batch that has been received is always
// processed to the end, under a context that ctx does not cancel.
func (l *Loop) term(ctx context.Context) {
	for ctx.Err() == nil {
		started := l.cfg.Now()
		resp, err := l.exchange(ctx, l.cfg.MaxEvents, false)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.WarnContext(ctx, "poll failed", "err", err)
			if l.backoff(ctx, err) != nil {
				return
			}
			continue
		}
		l.log.DebugContext(ctx, "poll answered", "sets", len(resp.Sets)+len(resp.Malformed), "more_available", resp.MoreAvailable)
		if err := l.handle(context.WithoutCancel(ctx), resp); err != nil {
			if l.backoff(ctx, err) != nil {
				return
			}
			continue
		}
		l.failures = 0
		l.update(func(s *Status) { s.ConsecutiveFailures = 0 })
		// An answer without SETs is empty whatever its moreAvailable says
		// (RFC 8936 §2.4 gives no meaning to "more" with none returned), and
		// with no SETs in it nothing is pending to acknowledge. An empty
		// answer that came early does not get an immediate new request: a
		// transmitter answering {"sets":{},"moreAvailable":true} at once
		// would otherwise be polled in a tight loop.
		if len(resp.Sets) == 0 && len(resp.Malformed) == 0 && len(l.ack) == 0 && len(l.setErrs) == 0 &&
			l.cfg.Now().Sub(started) < l.cfg.LongPollTimeout/2 {
			if resp.MoreAvailable {
				l.log.DebugContext(ctx, "poll answered moreAvailable without SETs; treated as empty")
			}
			if l.cfg.Sleep(ctx, l.cfg.MinBackoff) != nil {
				return
			}
		}
	}
}

// backoff records err as the latest failure and waits the backoff for the
// number of consecutive failures, returning ctx.Err() if ctx ends first.
func (l *Loop) backoff(ctx context.Context, err error) error {
	l.failures++
	ceil := BackoffCeiling(l.cfg.MinBackoff, l.cfg.MaxBackoff, l.failures)
	d := time.Duration(l.cfg.Rand(int64(ceil) + 1))
	now := l.cfg.Now()
	l.update(func(s *Status) {
		s.LastError, s.LastErrorAt = err.Error(), now
		s.ConsecutiveFailures = l.failures
		s.NextAttempt = now.Add(d)
	})
	serr := l.cfg.Sleep(ctx, d)
	l.update(func(s *Status) { s.NextAttempt = time.Time{} })
	return serr
}

func (l *Loop) noteError(err error) {
	now := l.cfg.Now()
	l.update(func(s *Status) { s.LastError, s.LastErrorAt = err.Error(), now })
}

// flush sends one acknowledge-only request for what is pending, under a
// context that ctx does not cancel, bounded by ShutdownTimeout.
func (l *Loop) flush(ctx context.Context) error {
	if len(l.ack) == 0 && len(l.setErrs) == 0 {
		return nil
	}
	n, e := len(l.ack), len(l.setErrs)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.ShutdownTimeout)
	defer cancel()
	if _, err := l.exchange(fctx, 0, true); err != nil {
		l.log.WarnContext(ctx, "final acknowledgement failed; those SETs will be delivered again", "acks", n, "set_errs", e, "err", err)
		return fmt.Errorf("poller: issuer %q: final acknowledgement of %d SETs and %d setErrs: %w", l.cfg.Source.Name, n, e, err)
	}
	l.log.InfoContext(ctx, "final acknowledgement sent", "acks", n, "set_errs", e)
	return nil
}

// RequestTimeout is how long one poll request may take before the loop
// gives up on it: 2 × longPoll + margin. RFC 8936 §2.4 leaves the hold to
// the transmitter, and some hold longer than the receiver expects: a poll
// held longer than longPoll is waited for, not counted as a failure
// (README "Poll").
func RequestTimeout(longPoll, margin time.Duration) time.Duration {
	return 2*longPoll + margin
}

// errStatus is a non-200 answer from the transmitter.
type errStatus struct{ code int }

func (e errStatus) Error() string {
	return fmt.Sprintf("poller: transmitter answered %d %s", e.code, http.StatusText(e.code))
}

// exchange sends one poll request carrying every pending ack and setErr,
// and parses the answer. On a 200 answer with a valid body the pending
// acks and setErrs are cleared: the transmitter has them.
func (l *Loop) exchange(ctx context.Context, maxEvents int, immediately bool) (Response, error) {
	body := request{MaxEvents: maxEvents, ReturnImmediately: immediately, Ack: l.ack}
	if len(l.setErrs) > 0 {
		body.SetErrs = l.setErrs
	}
	data, err := json.Marshal(body)
	if err != nil {
		return Response{}, fmt.Errorf("poller: encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout(l.cfg.LongPollTimeout, l.cfg.TimeoutMargin))
	defer cancel()
	resp, err := l.send(ctx, data, len(body.SetErrs) > 0)
	if err != nil {
		return Response{}, err
	}
	// An access token that expired mid-stream: the transmitter answers
	// 401; fetch a new token and send the same request once more, so an
	// ordinary expiry never shows as a failed poll.
	if inv, ok := l.cfg.Auth.(invalidator); ok && resp.StatusCode == http.StatusUnauthorized {
		drain(resp)
		inv.Invalidate()
		l.log.DebugContext(ctx, "transmitter answered 401; retrying with a new access token")
		if resp, err = l.send(ctx, data, len(body.SetErrs) > 0); err != nil {
			return Response{}, err
		}
		if resp.StatusCode == http.StatusUnauthorized {
			inv.Invalidate()
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		l.count400(resp.StatusCode, len(body.Ack)+len(body.SetErrs) > 0)
		return Response{}, errStatus{resp.StatusCode}
	}
	l.bad400s = 0
	raw, err := io.ReadAll(io.LimitReader(resp.Body, l.cfg.MaxResponseBytes+1))
	if err != nil {
		return Response{}, fmt.Errorf("poller: read response: %w", err)
	}
	if int64(len(raw)) > l.cfg.MaxResponseBytes {
		return Response{}, fmt.Errorf("poller: response larger than %d bytes", l.cfg.MaxResponseBytes)
	}
	parsed, err := ParseResponse(raw)
	if err != nil {
		return Response{}, err
	}
	n, e := len(body.Ack), len(body.SetErrs)
	l.ack = l.ack[:0]
	clear(l.acked)
	clear(l.setErrs)
	now := l.cfg.Now()
	l.update(func(s *Status) {
		s.LastPoll = now
		s.Polls++
		s.Received += uint64(len(parsed.Sets) + len(parsed.Malformed))
		s.Acked += uint64(n)
		s.SetErrs += uint64(e)
	})
	l.syncPending()
	return parsed, nil
}

// send posts one poll request body, authorised by the configured
// credential.
func (l *Loop) send(ctx context.Context, data []byte, setErrs bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.Endpoint, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("poller: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if setErrs {
		req.Header.Set("Content-Language", "en")
	}
	if l.cfg.Auth != nil {
		if err := l.cfg.Auth.Authorize(ctx, req); err != nil {
			return nil, err
		}
	}
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("poller: %w", err)
	}
	return resp, nil
}

// drain reads what is left of an answer whose body is not used (RFC 8936
// §2.4 leaves an error answer's body undefined) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// count400 drops the pending acks and setErrs after max400s consecutive
// 400 answers to requests that carried them.
func (l *Loop) count400(code int, carried bool) {
	if code != http.StatusBadRequest || !carried {
		l.bad400s = 0
		return
	}
	l.bad400s++
	if l.bad400s < max400s {
		return
	}
	l.log.Warn("transmitter keeps refusing the request with 400; dropping pending acks and setErrs (those SETs, if delivered again, are acknowledged as duplicates)",
		"acks", len(l.ack), "set_errs", len(l.setErrs))
	l.ack = l.ack[:0]
	clear(l.acked)
	clear(l.setErrs)
	l.bad400s = 0
	l.syncPending()
}

// outcome is what became of one SET of a batch.
type outcome struct {
	ack    bool
	setErr *SetErr
	err    error // not persisted: neither acknowledged nor reported
}

// handle verifies and publishes a batch, SETs in parallel, and queues the
// acks and setErrs for the next request once every SET is done. It
// returns an error when some SET could not be persisted.
func (l *Loop) handle(ctx context.Context, resp Response) error {
	defer l.syncPending()
	for _, k := range resp.Malformed {
		e := &verify.Error{Code: verify.CodeInvalidRequest, Description: "The value of this SET in sets is not a JSON string.", JTI: k}
		l.announce(ctx, e)
		l.reject(k, SetErr{Err: string(e.Code), Description: e.Description})
	}
	if len(resp.Sets) == 0 {
		return nil
	}
	keys := make([]string, 0, len(resp.Sets))
	for k := range resp.Sets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]outcome, len(keys))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(l.cfg.Concurrency, len(keys)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				out[i] = l.accept(ctx, keys[i], resp.Sets[keys[i]])
			}
		})
	}
	wg.Wait()

	var failed error
	nFailed := 0
	for i, o := range out {
		switch {
		case o.ack:
			if !l.acked[keys[i]] {
				l.acked[keys[i]] = true
				l.ack = append(l.ack, keys[i])
			}
		case o.setErr != nil:
			l.reject(keys[i], *o.setErr)
		default:
			nFailed++
			if failed == nil {
				failed = o.err
			}
		}
	}
	if failed != nil {
		l.log.WarnContext(ctx, "SETs not persisted; they stay with the transmitter", "count", nFailed, "of", len(keys), "err", failed)
		return fmt.Errorf("poller: %d of %d SETs not persisted: %w", nFailed, len(keys), failed)
	}
	return nil
}

// announce records a SET the loop refused before verification through the
// intake's Reject: logged, announced on setgate.rejected.<issuer> and
// counted like any rejection.
func (l *Loop) announce(ctx context.Context, e *verify.Error) {
	l.in.Reject(ctx, l.cfg.Source, e, intake.DeliveryPoll)
}

func (l *Loop) reject(key string, e SetErr) {
	l.setErrs[key] = e
}

// accept checks the SET's length and that the map key is its jti, then
// hands the SET to the intake.
func (l *Loop) accept(ctx context.Context, key, token string) outcome {
	if n := int64(len(token)); n > l.cfg.MaxSETBytes {
		// What a push of it would get (413, invalid_request): it can never
		// be stored, so it is reported, not left to come back forever.
		e := &verify.Error{Code: verify.CodeInvalidRequest, JTI: key, Err: intake.ErrTooLarge,
			Description: fmt.Sprintf("The SET is larger than this receiver accepts (%d bytes; at most %d).", n, l.cfg.MaxSETBytes)}
		l.announce(ctx, e)
		return outcome{setErr: &SetErr{Err: string(e.Code), Description: e.Description}}
	}
	if jti, ok := jtiOf(token); ok && jti != key {
		e := &verify.Error{Code: verify.CodeInvalidRequest, Description: "The map key of this SET does not match its jti claim.", JTI: jti}
		l.announce(ctx, e)
		return outcome{setErr: &SetErr{Err: string(e.Code), Description: e.Description}}
	}
	res, err := l.in.Accept(ctx, l.cfg.Source, []byte(token), intake.DeliveryPoll)
	switch intake.Classify(res, err) {
	case intake.Accepted, intake.Duplicate:
		return outcome{ack: true}
	case intake.Rejected:
		ve := intake.AsRejection(err)
		return outcome{setErr: &SetErr{Err: string(ve.Code), Description: ve.Description}}
	default:
		return outcome{err: err}
	}
}
