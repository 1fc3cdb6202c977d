package issuers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// Issuer is one configured issuer while it runs: its verifier (JWKS
// cache), the source push and poll share, its SSF stream manager and its
// poll loop if any.
type Issuer struct {
	spec     config.Issuer
	verifier *verify.Verifier
	source   *intake.Source
	meta     *ssf.Metadata // discovered SSF metadata, nil without discovery
	mgr      *ssf.Manager  // SSF stream manager, nil without a stream block
	loop     atomic.Pointer[poller.Loop]
	// discoveryErr is the last SSF metadata error ("" when the last read
	// worked); a pending issuer (verifier nil) has not read it yet.
	discoveryErr atomic.Value
	run          func()             // runs the poll loop until stop; then closes done
	stop         context.CancelFunc // stops the poll loop
	done         chan struct{}      // closed when the poll loop returned (or never ran)
}

// Spec is the issuer's configuration as given to [Set.Apply].
func (li *Issuer) Spec() config.Issuer { return li.spec }

// Source is what push and poll hand the issuer's SETs to the intake
// pipeline with.
func (li *Issuer) Source() *intake.Source { return li.source }

// Stream reports the issuer's SSF stream manager status; ok is false
// without a stream block (or while the issuer is pending discovery).
func (li *Issuer) Stream() (st ssf.ManagerStatus, ok bool) {
	if li.mgr == nil {
		return st, false
	}
	return li.mgr.Status(), true
}

// Options are what a [Set] builds its issuers with.
type Options struct {
	// Settings: JWKS fetch timeout and refresh intervals, the poll lease
	// TTL, the shutdown timeout (bounds a poll loop's last acknowledge)
	// and the public URL (a managed push stream's endpoint).
	Settings config.Settings
	// Logger receives builds, discovery failures, rebuilds and poll loop
	// ends. Nil discards.
	Logger *slog.Logger
	// Bridge holds the poll leases and SSF stream records. It is used
	// only by issuers that poll or manage a stream.
	Bridge *bridge.Bridge
	// Intake is where poll loops hand their SETs.
	Intake intake.Intake
	// Register is called with the running issuers, sorted by name, after
	// every swap (gateway.Server.SetIssuers). Nil: nobody is told.
	Register func([]gateway.Issuer)
	// Counters reports an issuer's push and poll counters for State
	// (gateway.Metrics.Counters). Nil: zero counters.
	Counters func(name string) gateway.IssuerCounters
	// Transport is the base round tripper of SSF discovery, SSF
	// management calls and JWKS fetches, under the outbound policy (no
	// redirects, a timeout, answers capped). Nil: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// Set is the running issuer set. [Set.Apply] swaps it for a new
// configuration: unchanged issuers keep running untouched, added and
// changed ones get a new verifier (and poll loop), removed ones stop.
//
// Building an issuer (SSF discovery, the first JWKS fetch, the poll
// lease) happens outside every lock: the request path and /issuers read
// the set through cur, an immutable snapshot swapped atomically, and
// never wait for a build. swapMu is held only while a finished build is
// swapped in (no I/O under it).
type Set struct {
	s        config.Settings
	log      *slog.Logger
	br       *bridge.Bridge
	in       intake.Intake
	register func([]gateway.Issuer)
	counters func(string) gateway.IssuerCounters
	holder   string
	// httpClient makes SSF discovery and management calls, under the
	// outbound policy (no redirects, a timeout, answers capped).
	httpClient *http.Client
	// transport is the base of JWKS fetches (nil: the verifier's default).
	transport http.RoundTripper

	// cur is the running set; read lock-free, replaced under swapMu.
	cur    atomic.Pointer[issuerSet]
	swapMu sync.Mutex
	closed bool // Close ran: a late build must not start anything (under swapMu)

	statesMu sync.Mutex
	// states keeps each issuer's requested verification states across
	// rebuilds, so a reload does not turn an answer into invalid_state.
	states map[string]*verify.States
}

// issuerSet is one immutable version of the running issuers.
type issuerSet struct {
	byName map[string]*Issuer
	sorted []*Issuer // by name
}

func newIssuerSet(m map[string]*Issuer) *issuerSet {
	set := &issuerSet{byName: m, sorted: make([]*Issuer, 0, len(m))}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		set.sorted = append(set.sorted, m[name])
	}
	return set
}

// New returns an empty set.
func New(o Options) *Set {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Set{s: o.Settings, log: o.Logger, br: o.Bridge, in: o.Intake, register: o.Register, counters: o.Counters,
		holder: bridge.NewHolderID(), states: make(map[string]*verify.States), transport: o.Transport,
		httpClient: outbound.Policy{Timeout: ssf.DefaultCallTimeout, MaxBytes: ssf.MaxBodyBytes, Transport: o.Transport}.Client()}
	l.cur.Store(newIssuerSet(map[string]*Issuer{}))
	return l
}

// Apply makes specs the running configuration. It builds every new or
// changed issuer first, in parallel and outside any lock, so a failure
// leaves the old configuration in force and a slow issuer delays only
// itself; then it swaps the set atomically (in-flight pushes finish on
// the old issuers) and retires what was removed or replaced. Callers
// serialise applies (setgate's reload queue does); a cancelled ctx abandons
// the builds and changes nothing.
func (l *Set) Apply(ctx context.Context, specs []config.Issuer) error {
	cur := l.cur.Load()
	type job struct {
		spec config.Issuer
		li   *Issuer
		err  error
	}
	var jobs []*job
	for _, spec := range specs {
		if old, ok := cur.byName[spec.Name]; ok && reflect.DeepEqual(old.spec, spec) {
			continue
		}
		jobs = append(jobs, &job{spec: spec})
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { j.li, j.err = l.buildBounded(ctx, j.spec) })
	}
	wg.Wait()

	built := make(map[string]*Issuer, len(jobs))
	var errs []error
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
			continue
		}
		built[j.spec.Name] = j.li
	}
	if err := context.Cause(ctx); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	discard := func() {
		for _, li := range built {
			li.discard()
		}
	}
	if len(errs) > 0 {
		discard()
		return errors.Join(errs...)
	}

	l.swapMu.Lock()
	if l.closed {
		l.swapMu.Unlock()
		discard()
		return errors.New("shutting down")
	}
	// The set may have changed since the plan (an issuer rebuilt after
	// rediscovery): unchanged issuers keep whatever instance runs now.
	cur = l.cur.Load()
	next := make(map[string]*Issuer, len(specs))
	for _, spec := range specs {
		if li, ok := built[spec.Name]; ok {
			next[spec.Name] = li
		} else if old := cur.byName[spec.Name]; old != nil {
			next[spec.Name] = old
		}
	}
	l.swap(next)
	l.swapMu.Unlock()

	// Retire what is gone or replaced; a replaced poll loop stops (and
	// acknowledges) before its successor starts.
	for name, li := range built {
		go l.handOver(cur.byName[name], li)
	}
	for name, old := range cur.byName {
		if next[name] == nil {
			go l.retire(old)
		}
	}
	return nil
}

// Get returns the running issuer called name, or nil. It takes no lock:
// the request path never waits for a reload.
func (l *Set) Get(name string) *Issuer {
	return l.cur.Load().byName[name]
}

// closeVerifier stops the verifier's JWKS refresh (a pending issuer has none).
func (li *Issuer) closeVerifier() {
	if li.verifier != nil {
		li.verifier.Close()
	}
}

// discard drops an issuer that was built but never swapped in (its tasks
// never ran).
func (li *Issuer) discard() {
	li.stop()
	li.closeVerifier()
}

// swap makes next the running set and registers it (the gateway's
// issuers). The caller
// holds swapMu.
func (l *Set) swap(next map[string]*Issuer) {
	set := newIssuerSet(next)
	l.cur.Store(set)
	push := make([]gateway.Issuer, 0, len(set.sorted))
	for _, li := range set.sorted {
		push = append(push, gateway.Issuer{
			Source: li.source, Push: gateway.NewCredential(li.spec.PushToken),
			RateLimit: li.spec.PushRate, Burst: li.spec.PushBurst,
		})
	}
	if l.register != nil {
		l.register(push)
	}
}

// handOver stops prev's poll loop (if any), then runs li's until it is
// retired.
func (l *Set) handOver(prev, li *Issuer) {
	if prev != nil {
		l.retire(prev)
	}
	li.run()
}

// retire stops an issuer's poll loop, waits for its final acknowledgement
// and closes its verifier. A loop retired before it ran never polls.
func (l *Set) retire(li *Issuer) {
	li.stop()
	<-li.done
	li.closeVerifier()
}

// Close stops every issuer: each poll loop finishes its batch and sends
// its acknowledge-only request, stream managers, metadata refreshes and
// JWKS refreshes stop; bounded by ctx. Builds that finish later are
// discarded, and a later Apply fails.
func (l *Set) Close(ctx context.Context) error {
	l.swapMu.Lock()
	all := l.cur.Load().sorted
	l.cur.Store(newIssuerSet(map[string]*Issuer{}))
	l.closed = true
	l.swapMu.Unlock()
	var wg sync.WaitGroup
	for _, li := range all {
		wg.Add(1)
		go func() { defer wg.Done(); l.retire(li) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("poll loops did not stop in time: %w", ctx.Err())
	}
}

// Len is how many issuers run.
func (l *Set) Len() int { return len(l.cur.Load().sorted) }
