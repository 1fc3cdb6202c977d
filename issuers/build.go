package issuers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// buildBounded builds spec under a bound of last resort: discovery and
// the first JWKS fetch have their own timeouts, and nothing else a build
// waits for may hold a reload longer than this.
func (l *Set) buildBounded(ctx context.Context, spec config.Issuer) (*Issuer, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout+l.s.JWKSFetchTimeout+buildSlack)
	defer cancel()
	return l.build(ctx, spec)
}

// buildSlack is what an issuer's build may take beyond its discovery and
// first JWKS fetch (the poll lease lookup in NATS).
const buildSlack = 30 * time.Second

// statesFor returns the verification states kept for issuer name.
func (l *Set) statesFor(name string) *verify.States {
	l.statesMu.Lock()
	defer l.statesMu.Unlock()
	states, ok := l.states[name]
	if !ok {
		states = verify.NewStates(nil)
		l.states[name] = states
	}
	return states
}

// newVerifier is verify.New bounded by ctx: the first JWKS fetch inside
// it is bounded by SETGATE_JWKS_FETCH_TIMEOUT but not cancelled by ctx,
// so a build that is abandoned (superseded, shut down) returns at once
// and the verifier, once it exists, is closed.
func newVerifier(ctx context.Context, cfg verify.Config, opts verify.Options) (*verify.Verifier, error) {
	type result struct {
		v   *verify.Verifier
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := verify.New(ctx, cfg, opts)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.v != nil {
				r.v.Close()
			}
		}()
		return nil, fmt.Errorf("issuer %q: first jwks fetch abandoned: %w", cfg.Name, context.Cause(ctx))
	}
}

// build makes a running issuer of spec (not started: handOver runs it).
// li.spec stays spec as configured, so a reload of the same file finds
// it unchanged; what discovery filled in is in the verifier's Config.
func (l *Set) build(ctx context.Context, spec config.Issuer) (*Issuer, error) {
	var meta *ssf.Metadata
	cfg := spec.Verify
	if spec.Discovery {
		dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
		m, err := ssf.Discover(dctx, l.httpClient, spec.Verify.Issuer, spec.DiscoverOptions())
		cancel()
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("issuer %q: ssf discovery abandoned: %w", spec.Name, context.Cause(ctx))
		}
		if err != nil {
			// Do not hold the other issuers hostage: run this one in a
			// pending state (pushes get 503) and keep trying.
			l.log.Warn("ssf discovery failed; the issuer answers 503 until it succeeds", "issuer", spec.Name, "err", err)
			return l.pending(ctx, spec, err), nil
		}
		meta = m
		if cfg.JWKSURI == "" {
			cfg.JWKSURI = m.JWKSURI
		}
	}
	v, err := newVerifier(ctx, cfg, verify.Options{
		States:             l.statesFor(spec.Name),
		FetchTimeout:       l.s.JWKSFetchTimeout,
		RefreshInterval:    l.s.JWKSRefresh,
		MinRefreshInterval: l.s.JWKSMinRefresh,
		Logger:             l.log.With("issuer", spec.Name),
		Transport:          l.transport,
	})
	if err != nil {
		return nil, err
	}
	li := &Issuer{spec: spec, verifier: v, meta: meta, source: &intake.Source{Name: spec.Name, Verifier: v, Overrides: spec.Overrides}}
	var tasks []func(ctx context.Context)
	fail := func(err error) (*Issuer, error) {
		v.Close()
		return nil, err
	}
	var streamReady chan ssf.StreamConfig
	if spec.Stream != nil {
		if streamReady, err = l.buildManager(ctx, li); err != nil {
			return fail(err)
		}
		tasks = append(tasks, func(ctx context.Context) { _ = li.mgr.Run(ctx) })
	}
	if meta != nil {
		tasks = append(tasks, func(ctx context.Context) { l.refreshMetadata(ctx, li) })
	}
	if spec.Poll != nil {
		task, err := l.buildPoll(ctx, li, streamReady)
		if err != nil {
			return fail(err)
		}
		tasks = append(tasks, task)
	}
	li.start(ctx, tasks)
	return li, nil
}

// start prepares li.run: it runs every task until li is retired.
func (li *Issuer) start(ctx context.Context, tasks []func(context.Context)) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	li.stop, li.done = cancel, make(chan struct{})
	li.run = func() {
		defer close(li.done)
		var wg sync.WaitGroup
		for _, t := range tasks {
			wg.Go(func() { t(pctx) })
		}
		wg.Wait()
	}
}

// buildPoll returns the task that runs li's poll loop: at the configured
// endpoint, or (a managed poll stream) at the endpoint the transmitter
// names once the stream is set up.
func (l *Set) buildPoll(ctx context.Context, li *Issuer, streamReady <-chan ssf.StreamConfig) (func(context.Context), error) {
	spec := li.spec
	lease, err := l.br.Lease(ctx, "poll."+spec.Name, l.holder, l.s.PollLeaseTTL)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: poll lease: %w", spec.Name, err)
	}
	var auth poller.Auth = poller.BearerToken(spec.Poll.Bearer)
	if spec.Poll.OAuth2 != nil {
		// Token requests under the outbound policy (the default client).
		if auth, err = poller.NewOAuth2(*spec.Poll.OAuth2, poller.OAuth2Options{Logger: l.log.With("issuer", spec.Name)}); err != nil {
			return nil, fmt.Errorf("issuer %q: poll.oauth2: %w", spec.Name, err)
		}
	}
	newLoop := func(endpoint string, streamAuth string) (*poller.Loop, error) {
		a := auth
		if streamAuth != "" { // the stream's own poll credential (delivery.authorization_header)
			a = authorizationHeader(streamAuth)
		}
		return poller.New(poller.Config{
			Source:          li.source,
			Endpoint:        endpoint,
			MaxEvents:       spec.Poll.MaxEvents,
			MaxSETBytes:     l.s.MaxBodyBytes, // as for a push
			LongPollTimeout: spec.Poll.LongPollTimeout,
			TimeoutMargin:   pollTimeoutMargin(spec.Poll.LongPollTimeout),
			Auth:            a,
			Lease:           lease,
			ShutdownTimeout: min(5*time.Second, l.s.ShutdownTimeout/2),
			Logger:          l.log, // the loop adds issuer and delivery
		}, l.in)
	}
	runLoop := func(ctx context.Context, loop *poller.Loop) {
		li.loop.Store(loop)
		if err := loop.Run(ctx); err != nil {
			l.log.Warn("poll loop ended", "issuer", spec.Name, "err", err)
		}
	}
	if streamReady == nil {
		loop, err := newLoop(spec.Poll.Endpoint, "")
		if err != nil {
			return nil, fmt.Errorf("issuer %q: poll: %w", spec.Name, err)
		}
		return func(ctx context.Context) { runLoop(ctx, loop) }, nil
	}
	// A managed poll stream: poll the endpoint the transmitter names, with
	// the stream's authorization_header when it returned one, and move to
	// a new loop when the stream is set up again with another of either.
	return func(ctx context.Context) {
		var endpoint, streamAuth string
		stop := func() {}
		defer func() { stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case st := <-streamReady:
				if st.Delivery.EndpointURL == endpoint && st.Delivery.AuthorizationHeader == streamAuth {
					continue
				}
				loop, err := newLoop(st.Delivery.EndpointURL, st.Delivery.AuthorizationHeader)
				if err != nil {
					l.log.Error("poll stream endpoint refused", "issuer", spec.Name, "endpoint", st.Delivery.EndpointURL, "err", err)
					continue
				}
				if endpoint != "" {
					l.log.Info("poll stream endpoint changed", "issuer", spec.Name, "endpoint", st.Delivery.EndpointURL)
				}
				stop() // the old loop acknowledges what it stored, then returns
				endpoint, streamAuth = st.Delivery.EndpointURL, st.Delivery.AuthorizationHeader
				stop = startLoop(ctx, func(ctx context.Context) { runLoop(ctx, loop) })
			}
		}
	}, nil
}

// minPollWait is the least time setgate waits for a poll answer.
const minPollWait = time.Minute

// pollTimeoutMargin is the poll loop's TimeoutMargin for a configured
// long_poll_timeout (0: the default): setgate waits for a poll answer up
// to 2 × long_poll_timeout + 10 s, and at least minPollWait, since
// transmitters hold a poll as long as they choose (README "Poll").
func pollTimeoutMargin(longPoll time.Duration) time.Duration {
	if longPoll == 0 {
		longPoll = poller.DefaultLongPollTimeout
	}
	return max(poller.DefaultTimeoutMargin, minPollWait-2*longPoll)
}

// authorizationHeader is a poller.Auth that sends a fixed Authorization
// header value: a poll stream's delivery.authorization_header (SSF 1.0
// §8.1.1), which the transmitter chose and setgate sends as it is.
type authorizationHeader string

func (h authorizationHeader) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", string(h))
	return nil
}

// startLoop runs run in a goroutine under a child of ctx; the returned
// function cancels it and waits until it returned.
func startLoop(ctx context.Context, run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	return func() { cancel(); <-done }
}

// pending returns an issuer whose SSF metadata could not be read: its
// pushes are answered 503 (nothing is lost: the transmitter retries) while
// discovery is retried with backoff; once it succeeds the issuer is
// rebuilt in full.
func (l *Set) pending(ctx context.Context, spec config.Issuer, cause error) *Issuer {
	li := &Issuer{spec: spec, source: &intake.Source{Name: spec.Name, Overrides: spec.Overrides,
		Verifier: pendingVerifier{name: spec.Name}}}
	li.discoveryErr.Store(cause.Error())
	li.start(ctx, []func(context.Context){func(ctx context.Context) {
		for wait := time.Second; ; wait = min(2*wait, maxDiscoveryWait) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
			_, err := ssf.Discover(dctx, l.httpClient, spec.Verify.Issuer, spec.DiscoverOptions())
			cancel()
			if err == nil && l.rebuild(ctx, li) {
				return
			}
			if err == nil {
				continue // the rebuild failed and was logged; try again later
			}
			li.discoveryErr.Store(err.Error())
			l.log.Warn("ssf discovery failed again", "issuer", spec.Name, "err", err, "retry_in", min(2*wait, maxDiscoveryWait))
		}
	}})
	return li
}

// maxDiscoveryWait caps the wait between a pending issuer's discovery
// attempts (1 s, doubling).
const maxDiscoveryWait = 5 * time.Minute

// pendingVerifier answers for an issuer whose metadata is not known yet.
type pendingVerifier struct{ name string }

func (p pendingVerifier) Verify(context.Context, []byte) (*verify.SET, error) {
	return nil, fmt.Errorf("%w: issuer %s: the transmitter's SSF metadata could not be read yet", bridge.ErrUnavailable, p.name)
}

// metadataRefresh is how often an issuer's SSF metadata is read again.
const metadataRefresh = time.Hour

// refreshMetadata reads li's SSF metadata every metadataRefresh. A failure
// is logged and shown on /issuers while the cached metadata keeps
// working; changed metadata (new jwks_uri or endpoints) rebuilds the
// issuer.
func (l *Set) refreshMetadata(ctx context.Context, li *Issuer) {
	t := time.NewTicker(metadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
		m, err := ssf.Discover(dctx, l.httpClient, li.spec.Verify.Issuer, li.spec.DiscoverOptions())
		cancel()
		if err != nil {
			li.discoveryErr.Store(err.Error())
			l.log.Warn("ssf metadata refresh failed; the cached metadata stays in use", "issuer", li.spec.Name, "err", err)
			continue
		}
		li.discoveryErr.Store("")
		if !reflect.DeepEqual(m, li.meta) {
			l.log.Info("ssf metadata changed; rebuilding the issuer", "issuer", li.spec.Name)
			if l.rebuild(ctx, li) {
				return
			}
		}
	}
}

// rebuild replaces old, if it still runs, with a freshly built issuer of
// the same configuration (new discovery, verifier, stream manager and
// poll loop), as a reload would. The build runs outside every lock; if a
// reload replaced or removed old meanwhile, the build is discarded. It
// reports whether old is done with: replaced, or no longer running.
func (l *Set) rebuild(ctx context.Context, old *Issuer) bool {
	name := old.spec.Name
	li, err := l.buildBounded(ctx, old.spec)
	if err != nil {
		if ctx.Err() != nil {
			return true // old was retired meanwhile: its context is done
		}
		l.log.Error("issuer rebuild failed; the previous one stays", "issuer", name, "err", err)
		return false
	}
	l.swapMu.Lock()
	cur := l.cur.Load()
	if l.closed || cur.byName[name] != old {
		l.swapMu.Unlock()
		li.discard()
		return true
	}
	next := maps.Clone(cur.byName)
	next[name] = li
	l.swap(next)
	l.swapMu.Unlock()
	go l.handOver(old, li)
	return true
}

// discoveryTimeout bounds reading an issuer's SSF metadata.
const discoveryTimeout = 15 * time.Second

// buildManager sets up the SSF stream manager of li. The returned channel
// yields the stream configuration once it is set up (for poll streams).
func (l *Set) buildManager(ctx context.Context, li *Issuer) (chan ssf.StreamConfig, error) {
	spec := li.spec
	log := l.log.With("issuer", spec.Name)
	cfg, err := StreamManagerConfig(spec, li.meta, l.s.PublicURL, l.httpClient, log)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", spec.Name, err)
	}
	cfg.States = li.verifier.States()
	rctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	rec, err := l.br.StreamRecord(rctx, spec.Name)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("issuer %q: stream record: %w", spec.Name, err)
	}
	cfg.Memory = rec
	ready := make(chan ssf.StreamConfig, 1)
	cfg.OnStream = func(sc ssf.StreamConfig) {
		select {
		case ready <- sc:
		default:
		}
	}
	mgr, err := ssf.NewManager(cfg)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: stream: %w", spec.Name, err)
	}
	li.mgr = mgr
	li.source.Observer = streamObserver{mgr} // before the source is handed to push or poll
	if spec.Stream.Delivery == ssf.DeliveryPoll {
		return ready, nil
	}
	return nil, nil
}

// StreamManagerConfig is the SSF stream manager configuration of spec, as
// a running issuer uses it, without States, Memory and OnStream, which
// belong to a running gateway (setgate stream uses it as it is). It
// returns the configuration and an error when delivery is push and
// publicURL is empty; the client is set either way, so get, delete and
// verify still work.
func StreamManagerConfig(spec config.Issuer, meta *ssf.Metadata, publicURL string, hc *http.Client, log *slog.Logger) (ssf.ManagerConfig, error) {
	st := spec.Stream
	var auth poller.Auth = poller.BearerToken(st.Bearer)
	if st.OAuth2 != nil {
		// Token requests under the outbound policy (the default client).
		a, err := poller.NewOAuth2(*st.OAuth2, poller.OAuth2Options{Logger: log})
		if err != nil {
			return ssf.ManagerConfig{}, fmt.Errorf("stream.oauth2: %w", err)
		}
		auth = a
	}
	cfg := ssf.ManagerConfig{
		AllowedOrigins:       st.AllowedOrigins,
		Issuer:               spec.Verify.Issuer,
		Delivery:             st.Delivery,
		EventsRequested:      st.EventsRequested,
		Description:          st.Description,
		VerificationInterval: st.VerificationInterval,
		VerificationTimeout:  st.VerificationTimeout,
		StreamID:             st.StreamID,
		Client:               ssf.New(meta, auth, hc, log),
		Logger:               log,
	}
	if st.Delivery == ssf.DeliveryPush {
		if publicURL == "" {
			return cfg, errors.New("stream.delivery push needs SETGATE_PUBLIC_URL (the URL the transmitter pushes to)")
		}
		cfg.PushEndpoint = StreamPushEndpoint(publicURL, spec.Name)
		cfg.PushAuthorization = st.PushAuthorization
	}
	return cfg, nil
}

// StreamPushEndpoint is where a transmitter pushes the SETs of issuer
// name, the push endpoint a managed push stream is set up with.
func StreamPushEndpoint(publicURL, name string) string {
	return strings.TrimRight(publicURL, "/") + "/events/" + name
}

// streamObserver tells an issuer's SSF stream manager about every
// verification and stream-updated event stored from that issuer (push or
// poll, duplicates included), so requested verifications are confirmed
// and status changes recorded. It is the intake.Source observer of every
// issuer with a stream block.
type streamObserver struct{ mgr *ssf.Manager }

func (o streamObserver) Observe(_ context.Context, ev intake.Event) {
	if !ev.Outcome.Stored() || ev.Result.SET == nil {
		return
	}
	for _, e := range ev.Result.SET.Events {
		o.mgr.Observe(e.Type, e.Payload)
	}
}
