package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/verify"
)

// liveIssuer is one configured issuer while it runs: its verifier (JWKS
// cache), the source push and poll share, and its poll loop if any.
type liveIssuer struct {
	spec     issuerSpec
	verifier *verify.Verifier
	source   *bridge.Source
	loop     *poller.Loop
	run      func()             // runs the poll loop until stop; then closes done
	stop     context.CancelFunc // stops the poll loop
	done     chan struct{}      // closed when the poll loop returned (or never ran)
}

// liveIssuers is the running issuer set. apply swaps it for a new
// configuration: unchanged issuers keep running untouched, added and
// changed ones get a new verifier (and poll loop), removed ones stop.
type liveIssuers struct {
	s      settings
	log    *slog.Logger
	br     *bridge.Bridge
	in     poller.Intake
	gw     *gateway.Server
	holder string

	mu     sync.Mutex
	live   map[string]*liveIssuer
	closed bool // stopAll ran: a late reload must not start anything
}

// newLiveIssuers returns an empty set; poll loops hand SETs to in.
func newLiveIssuers(s settings, log *slog.Logger, br *bridge.Bridge, in poller.Intake, gw *gateway.Server) *liveIssuers {
	return &liveIssuers{s: s, log: log, br: br, in: in, gw: gw, holder: bridge.NewHolderID(), live: make(map[string]*liveIssuer)}
}

// apply makes specs the running configuration. It builds everything new
// first, so a failure leaves the old configuration in force; then it swaps
// the gateway's issuers atomically (in-flight pushes finish on the old
// ones) and stops what was removed or replaced.
func (l *liveIssuers) apply(ctx context.Context, specs []issuerSpec) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("shutting down")
	}

	next := make(map[string]*liveIssuer, len(specs))
	var built []*liveIssuer
	for _, spec := range specs {
		if old, ok := l.live[spec.Name]; ok && reflect.DeepEqual(old.spec, spec) {
			next[spec.Name] = old
			continue
		}
		li, err := l.build(ctx, spec)
		if err != nil {
			for _, b := range built {
				b.stop()
				b.verifier.Close()
			}
			return err
		}
		built = append(built, li)
		next[spec.Name] = li
	}

	push := make([]gateway.Issuer, 0, len(next))
	for _, name := range sortedNames(next) {
		li := next[name]
		push = append(push, gateway.Issuer{Source: li.source, Push: gateway.NewCredential(li.spec.PushToken)})
	}
	l.gw.SetIssuers(push)

	// Retire what is gone or replaced; a replaced poll loop stops (and
	// acknowledges) before its successor starts.
	var retiring []*liveIssuer
	for name, old := range l.live {
		if next[name] != old {
			retiring = append(retiring, old)
		}
	}
	l.live = next
	for _, li := range built {
		var prev *liveIssuer
		for _, old := range retiring {
			if old.spec.Name == li.spec.Name {
				prev = old
			}
		}
		go l.handOver(prev, li)
	}
	for _, old := range retiring {
		if next[old.spec.Name] == nil {
			go l.retire(old)
		}
	}
	return nil
}

func (l *liveIssuers) build(ctx context.Context, spec issuerSpec) (*liveIssuer, error) {
	v, err := verify.New(ctx, spec.Verify, verify.Options{
		FetchTimeout:       l.s.JWKSFetchTimeout,
		RefreshInterval:    l.s.JWKSRefresh,
		MinRefreshInterval: l.s.JWKSMinRefresh,
		Logger:             l.log.With("issuer", spec.Name),
	})
	if err != nil {
		return nil, err
	}
	li := &liveIssuer{spec: spec, verifier: v, source: &bridge.Source{Name: spec.Name, Verifier: v, Overrides: spec.Overrides}}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	li.stop, li.done = cancel, make(chan struct{})
	li.run = func() { close(li.done) }
	if spec.Poll == nil {
		return li, nil
	}
	lease, err := l.br.Lease(ctx, "poll."+spec.Name, l.holder, l.s.PollLeaseTTL)
	if err != nil {
		cancel()
		v.Close()
		return nil, fmt.Errorf("issuer %q: poll lease: %w", spec.Name, err)
	}
	var auth poller.Auth
	if spec.Poll.OAuth2 != nil {
		auth = poller.OAuth2ClientCredentials(*spec.Poll.OAuth2)
	} else {
		auth = poller.BearerToken(spec.Poll.Bearer)
	}
	li.loop, err = poller.New(poller.Config{
		Source:          li.source,
		Endpoint:        spec.Poll.Endpoint,
		MaxEvents:       spec.Poll.MaxEvents,
		LongPollTimeout: spec.Poll.LongPollTimeout,
		Auth:            auth,
		Lease:           lease,
		ShutdownTimeout: min(5*time.Second, l.s.ShutdownTimeout/2),
		Logger:          l.log, // the loop adds issuer and delivery
	}, l.in)
	if err != nil {
		cancel()
		v.Close()
		return nil, fmt.Errorf("issuer %q: poll: %w", spec.Name, err)
	}
	li.run = func() {
		defer close(li.done)
		if err := li.loop.Run(pctx); err != nil {
			l.log.Warn("poll loop ended", "issuer", spec.Name, "err", err)
		}
	}
	return li, nil
}

// handOver stops prev's poll loop (if any), then runs li's until it is
// retired.
func (l *liveIssuers) handOver(prev, li *liveIssuer) {
	if prev != nil {
		l.retire(prev)
	}
	li.run()
}

// retire stops an issuer's poll loop, waits for its final acknowledgement
// and closes its verifier. A loop retired before it ran never polls.
func (l *liveIssuers) retire(li *liveIssuer) {
	li.stop()
	<-li.done
	li.verifier.Close()
}

// stopAll stops every poll loop (each finishes its batch and sends its
// acknowledge-only request), bounded by ctx.
func (l *liveIssuers) stopAll(ctx context.Context) error {
	l.mu.Lock()
	all := l.live
	l.live, l.closed = map[string]*liveIssuer{}, true
	l.mu.Unlock()
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

// snapshot returns the running issuers, sorted by name.
func (l *liveIssuers) snapshot() []*liveIssuer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*liveIssuer, 0, len(l.live))
	for _, name := range sortedNames(l.live) {
		out = append(out, l.live[name])
	}
	return out
}

func sortedNames(m map[string]*liveIssuer) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
