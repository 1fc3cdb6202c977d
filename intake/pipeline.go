package intake

import (
	"context"
	"log/slog"
	"time"

	"github.com/setgate/setgate/verify"
)

// Event is what an [Observer] learns about one SET handed to the pipeline.
type Event struct {
	// Source and Delivery say where the SET came from.
	Source   *Source
	Delivery Delivery
	// Outcome is [Classify] of Result and Err.
	Outcome Outcome
	// Result is what was stored (zero unless Outcome.Stored()).
	Result Result
	// SET is the verified SET; nil when verification failed or the
	// source refused it before verification.
	SET *verify.SET
	// Err is Accept's error, nil when stored. Rejection is the
	// *verify.Error of a Rejected SET.
	Err       error
	Rejection *verify.Error
	// ReceivedAt is when the pipeline received the SET (UTC); Elapsed is
	// how long verify and publish took (zero for Reject).
	ReceivedAt time.Time
	Elapsed    time.Duration
}

// Observer is told about every SET the pipeline handled. Observe runs on
// the source's goroutine before the source answers: it must be quick and
// must not block.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(ctx context.Context, ev Event)

// Observe calls f(ctx, ev).
func (f ObserverFunc) Observe(ctx context.Context, ev Event) { f(ctx, ev) }

// Config configures a [Pipeline].
type Config struct {
	// Publisher stores SETs and announces rejections. Required.
	Publisher Publisher
	// Observers are told about every SET, in this order, after it was
	// stored or refused.
	Observers []Observer
	// Logger receives one info line per rejection and one debug line per
	// stored SET. Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pipeline is the single verify → publish → observe path shared by push
// and poll. It is built once, with every observer it calls, and is safe
// for concurrent use.
type Pipeline struct {
	pub       Publisher
	observers []Observer
	log       *slog.Logger
	now       func() time.Time
}

var _ Intake = (*Pipeline)(nil)

// New returns the pipeline described by cfg.
func New(cfg Config) *Pipeline {
	p := &Pipeline{pub: cfg.Publisher, observers: append([]Observer(nil), cfg.Observers...), log: cfg.Logger, now: cfg.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Accept verifies raw with src's verifier and publishes every event,
// returning only after the publisher acknowledged all of them; then it
// tells the observers.
//
// A rejected SET returns its *verify.Error (logged once at info and
// announced by the publisher), whether verification refused it or the
// publisher did (a SET too large to store, wrapping [ErrTooLarge]); a SET
// that could not be stored returns an error wrapping [ErrUnavailable]. A
// duplicate (same iss, jti) is not an error: Result.Duplicate is set.
// [Classify] sorts the answer.
func (p *Pipeline) Accept(ctx context.Context, src *Source, raw []byte, d Delivery) (Result, error) {
	start := p.now()
	at := start.UTC()
	ev := Event{Source: src, Delivery: d, ReceivedAt: at}
	set, err := src.Verifier.Verify(ctx, raw)
	var res Result
	if err == nil {
		ev.SET = set
		res, err = p.pub.PublishSET(ctx, src.Name, src.Overrides, set, d, at)
		// Checked first: the line's arguments cost allocations per SET
		// even when debug is off.
		if err == nil && p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.DebugContext(ctx, "set accepted", "issuer", src.Name, "delivery", d, "jti", set.JTI,
				"subjects", res.Subjects, "duplicate", res.Duplicate)
		}
	}
	// A SET refused for good, by verification or by the publisher (too
	// large for the NATS server), takes the rejection path: logged,
	// announced, observed as Rejected; its transmitter must not retry it.
	if ev.Rejection = AsRejection(err); ev.Rejection != nil {
		p.reject(ctx, src, ev.Rejection, d, at)
	}
	ev.Result, ev.Err, ev.Outcome, ev.Elapsed = res, err, Classify(res, err), p.now().Sub(start)
	p.observe(ctx, ev)
	return res, err
}

// Reject records a SET that a source refused before verification (a poll
// map key that is not the SET's jti): it is logged, announced and observed
// exactly like a SET that failed verification.
func (p *Pipeline) Reject(ctx context.Context, src *Source, e *verify.Error, d Delivery) {
	at := p.now().UTC()
	p.reject(ctx, src, e, d, at)
	p.observe(ctx, Event{Source: src, Delivery: d, Outcome: Rejected, Err: e, Rejection: e, ReceivedAt: at})
}

// reject logs a rejection once at info (never the token) and announces it.
func (p *Pipeline) reject(ctx context.Context, src *Source, e *verify.Error, d Delivery, at time.Time) {
	p.log.InfoContext(ctx, "set rejected", "issuer", src.Name, "delivery", d, "code", e.Code,
		"description", e.Description, "jti", e.JTI, "cause", e.Err)
	p.pub.PublishRejection(src.Name, string(e.Code), e.Description, e.JTI, d, at)
}

// observe tells the pipeline's observers, then the source's own, about ev.
func (p *Pipeline) observe(ctx context.Context, ev Event) {
	for _, o := range p.observers {
		o.Observe(ctx, ev)
	}
	if ev.Source.Observer != nil {
		ev.Source.Observer.Observe(ctx, ev)
	}
}
