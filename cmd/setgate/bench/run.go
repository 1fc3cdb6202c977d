package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// Bench defaults; --short replaces the run lengths with CI-sized ones.
const (
	audience       = "https://setgate.bench/"
	pollMaxEvents  = 1000
	pollHold       = 2 * time.Second  // the transmitter's hold = the long-poll timeout: no early empty answers, no backoff
	pollWindow     = 5 * time.Second  // poll drains about this much push traffic
	pollStall      = 30 * time.Second // poll gives up after this long without an ack
	firstChunk     = 1000             // SETs signed before ceiling (b) knows its rate
	seedSETs       = 1024             // SETs ceiling (a) verifies over and over
	poolHeadroom   = 1.1              // push pool: SETs expected at ceiling (b) × this
	shortSETs      = 500
	shortCeiling   = time.Second
	warmUpDuration = time.Second     // --url: first run that sizes the pool
	metricsTimeout = 5 * time.Second // --metrics-url: bound on one reading
)

// Options are the flags of "setgate bench".
type Options struct {
	// Mode is push, poll or both ("" before Normalize).
	Mode string
	// Alg is the signing algorithm of the in-process transmitters.
	Alg string
	// Issuers, Keys per issuer and Events per SET shape the load.
	Issuers, Keys, Events int
	// Concurrency is the push connections and ceiling (b) goroutines.
	Concurrency int
	// Duration is the push run's length, unless Count is set.
	Duration time.Duration
	// Count pushes (and polls) exactly this many SETs.
	Count int
	// Rate is the open-loop push rate; 0 pushes as fast as possible.
	Rate float64
	// Ceiling is the length of each ceiling measurement.
	Ceiling time.Duration
	// CeilingSETs stops ceiling (b) after this many SETs (0: after
	// Ceiling).
	CeilingSETs int
	// Short is the CI size; JSON prints one JSON object.
	Short, JSON bool

	// URL, KeyFile, KID, Iss, Aud and TokenFile name a remote gateway and
	// its issuer (--url); NATSURL its NATS, for the check.
	URL, KeyFile, KID, Iss, Aud, TokenFile, NATSURL string
	// Check reads the remote stream afterwards.
	Check bool
	// NATSPasswordFile logs the check in as user consumer
	// (--password-file).
	NATSPasswordFile string

	// MetricsURL is the remote gateway's admin /metrics, read every
	// MetricsEvery during the push run for its resident set.
	MetricsURL   string
	MetricsEvery time.Duration

	// Floor is the address of the floor server to run instead of a
	// measurement (--floor, with KeyFile unless FloorNoVerify); FloorCPU
	// is the CPU it spends per SET on top of verification ([Floor]).
	Floor         string
	FloorCPU      time.Duration
	FloorNoVerify bool
}

// Normalize fills in mode-dependent defaults and checks the options.
func (o *Options) Normalize() error {
	if o.Mode == "" {
		o.Mode = "both"
		if o.URL != "" {
			o.Mode = "push"
		}
	}
	if o.Alg == "" && o.URL == "" && o.Floor == "" {
		o.Alg = "ES256"
	}
	if o.Short {
		o.Count, o.Ceiling, o.CeilingSETs = shortSETs, shortCeiling, shortSETs
	}
	switch {
	case o.Mode != "push" && o.Mode != "poll" && o.Mode != "both":
		return fmt.Errorf("bench: --mode %q: want push, poll or both", o.Mode)
	case o.Floor != "" && o.URL != "":
		return errors.New("bench: --floor runs the floor server; measure it from another shell with --url")
	case o.Floor != "" && o.KeyFile == "" && !o.FloorNoVerify:
		return errors.New("bench: --floor needs --key (the floor verifies with its public half), or --floor-verify=false")
	case o.FloorNoVerify && o.KeyFile != "":
		return errors.New("bench: --floor-verify=false verifies nothing; drop --key")
	case o.Floor == "" && (o.FloorCPU != 0 || o.FloorNoVerify):
		return errors.New("bench: --floor-cpu and --floor-verify go with --floor")
	case o.FloorCPU < 0:
		return errors.New("bench: --floor-cpu must not be negative")
	case o.URL == "" && o.Floor == "" && o.Alg != "ES256" && o.Alg != "RS256" && o.Alg != "EdDSA":
		return fmt.Errorf("bench: --alg %q: want ES256, RS256 or EdDSA", o.Alg)
	case o.Issuers < 1 || o.Keys < 1 || o.Concurrency < 1 || o.Count < 0 || o.Rate < 0:
		return errors.New("bench: --issuers, --keys and --concurrency must be positive, --count and --rate not negative")
	case o.Events < 1 || o.Events > len(eventTypes()):
		return fmt.Errorf("bench: --events must be 1 to %d", len(eventTypes()))
	case o.Count == 0 && o.Duration <= 0, o.Ceiling <= 0:
		return errors.New("bench: --duration and --ceiling-duration must be positive")
	case o.URL != "" && o.Mode != "push":
		return errors.New("bench: --url measures push only (the poll mode needs the in-process gateway and transmitter)")
	case o.URL != "" && (o.KeyFile == "" || o.Iss == ""):
		return errors.New("bench: --url needs --key and --iss (and usually --aud and --token-file), as setgate send")
	case o.URL == "" && ((o.KeyFile != "" && o.Floor == "") || o.Iss != "" || o.Aud != "" || o.KID != "" || o.TokenFile != "" || o.NATSURL != "" || o.NATSPasswordFile != "" || o.MetricsURL != ""):
		return errors.New("bench: --key, --iss, --aud, --kid, --token-file, --nats, --password-file and --metrics-url go with --url")
	case o.MetricsEvery <= 0:
		return errors.New("bench: --metrics-every must be positive")
	}
	if o.MetricsURL != "" {
		if u, err := url.Parse(o.MetricsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bench: --metrics-url %q is not an http(s) URL", o.MetricsURL)
		}
	}
	return nil
}

// issuer is one transmitter of the bench: its issuer name in the
// gateway, iss, signing keys and push credential.
type issuer struct {
	name   string
	iss    string
	aud    string
	keys   []Key
	bearer string
	jwks   *JWKSServer // nil for a remote gateway's issuer
}

// runState is one bench invocation's state: the SETs signed so far (by
// number; the jti is prefix + number) and what their transmitter was
// told.
type runState struct {
	o        Options
	stderr   io.Writer
	prefix   string
	outcomes []Outcome
	push     []*issuer
	targets  []Target
	arenas   []*Arena
	rep      *Report
}

// newRunState starts the bookkeeping of one run.
func newRunState(o Options, stderr io.Writer, target, alg string) *runState {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	issuers, keys := o.Issuers, o.Keys
	if o.URL != "" {
		issuers, keys = 1, 1
	}
	return &runState{
		o: o, stderr: stderr, prefix: "bench-" + hex.EncodeToString(b) + "-",
		rep: &Report{
			Target: target, Mode: o.Mode, Alg: alg, Issuers: issuers, KeysPerIssuer: keys, EventsPerSET: o.Events,
			Concurrency: o.Concurrency, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAverage: LoadAverage(),
		},
	}
}

// sign pre-signs n SETs from the issuers iss (SET i from iss[i mod
// len(iss)], rotating over its keys) and returns them as items for the
// targets of the same index, with the number of the first SET.
func (r *runState) sign(ctx context.Context, iss []*issuer, n int, what string) (first int, items []Item, err error) {
	first = len(r.outcomes)
	r.outcomes = append(r.outcomes, make([]Outcome, n)...)
	now := time.Now().Unix()
	label := fmt.Sprintf("signing %d %s SETs for %s", n, iss[0].keys[0].Alg, what)
	bodies, err := SignAll(ctx, n, r.stderr, label, func(i int) ([]byte, error) {
		is := iss[i%len(iss)]
		key := is.keys[(i/len(iss))%len(is.keys)]
		return key.Sign(setClaims(is, r.prefix, first+i, r.o.Events, now))
	})
	if err != nil {
		return 0, nil, err
	}
	items = make([]Item, n)
	for i, body := range bodies {
		items[i] = Item{Target: i % len(iss), Body: body}
	}
	return first, items, nil
}

// pack moves the items' SETs into an arena outside the Go heap (see
// [Arena]), released by [runState.release].
func (r *runState) pack(items []Item) (*Arena, error) {
	bodies := make([][]byte, len(items))
	for i, it := range items {
		bodies[i] = it.Body
	}
	a, packed, err := NewArena(bodies)
	if err != nil {
		return nil, err
	}
	r.arenas = append(r.arenas, a)
	for i := range items {
		items[i].Body = packed[i]
	}
	return a, nil
}

// release frees the arenas; call it once no request can read them.
func (r *runState) release() {
	for _, a := range r.arenas {
		_ = a.Close()
	}
	r.arenas = nil
}

// record stores the outcomes of the SETs numbered from first on.
func (r *runState) record(first int, outcomes []Outcome) {
	copy(r.outcomes[first:], outcomes)
}

// setClaims are the claims of SET number n from is: SSF-style, an email
// subject and the first events of eventTypes.
func setClaims(is *issuer, prefix string, n, events int, iat int64) map[string]any {
	evs := make(map[string]any, events)
	for _, e := range eventTypes()[:events] {
		evs[e.uri] = e.payload
	}
	c := map[string]any{
		"iss":    is.iss,
		"jti":    prefix + strconv.Itoa(n),
		"iat":    iat,
		"txn":    "bench-txn-" + strconv.Itoa(n),
		"sub_id": map[string]any{"format": "email", "email": "user" + strconv.Itoa(n%10000) + "@example"},
		"events": evs,
	}
	if is.aud != "" {
		c["aud"] = is.aud
	}
	return c
}

// event is one event type with a payload valid under strict
// validation.
type event struct {
	uri     string
	payload map[string]any
}

// eventTypes are the event types a bench SET carries, in order.
func eventTypes() []event {
	return []event{
		{transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}},
		{transmitter.CredentialChange, map[string]any{"credential_type": "password", "change_type": "update"}},
		{transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}},
		{transmitter.DeviceCompliance, map[string]any{"previous_status": "compliant", "current_status": "not-compliant"}},
	}
}

// newIssuer makes a transmitter with keys fresh keys for alg and
// serves their JWKS on loopback.
func newIssuer(name, alg string, keys int) (*issuer, error) {
	is := &issuer{name: name, aud: audience, bearer: newToken()}
	set := jwkset.JWKSMarshal{}
	for range keys {
		k, err := transmitter.NewKey(alg)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		jwk, kid, err := transmitter.PublicJWK(k.Public(), alg, "")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		set.Keys = append(set.Keys, jwk)
		is.keys = append(is.keys, Key{ID: kid, Alg: alg, Signer: k})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("bench: jwks: %w", err)
	}
	if is.jwks, err = ServeJWKS(body); err != nil {
		return nil, err
	}
	is.iss = is.jwks.Base()
	return is, nil
}

// jwksHits sums the JWKS fetches served for the push issuers.
func (r *runState) jwksHits() int64 {
	var n int64
	for _, is := range r.push {
		if is.jwks != nil {
			n += is.jwks.Hits()
		}
	}
	return n
}

// pushPoolSize is how many SETs to sign for a push run expected to go at
// rate SETs/s.
func (r *runState) pushPoolSize(rate float64) int {
	if r.o.Count > 0 {
		return r.o.Count
	}
	if r.o.Rate > 0 {
		rate = r.o.Rate
	}
	return max(int(rate*r.o.Duration.Seconds()*poolHeadroom)+r.o.Concurrency, 1000)
}

// runPush pre-signs the pool, drives the push endpoint and fills
// rep.Push. scope says whose CPU and memory the process readings are.
func (r *runState) runPush(ctx context.Context, expectRate float64, scope string, jwksKnown bool) (*LoadResult, error) {
	first, items, err := r.sign(ctx, r.push, r.pushPoolSize(expectRate), "push")
	if err != nil {
		return nil, err
	}
	pool, err := r.pack(items)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	debug.FreeOSMemory() // the signing garbage is not the gateway's
	_ = ResetPeakRSS()
	before, hits := ReadUsage(), r.jwksHits()
	watch := StartCPUWatch()
	duration := r.o.Duration
	if r.o.Count > 0 {
		duration = 0
	}
	var rss *RSSSampler
	if r.o.MetricsURL != "" {
		rss = StartRSSSampler(ctx, &http.Client{Timeout: metricsTimeout}, r.o.MetricsURL, r.o.MetricsEvery)
	}
	res, err := Push(ctx, LoadConfig{
		Targets: r.targets, Concurrency: r.o.Concurrency, Duration: duration, Rate: r.o.Rate, Progress: r.stderr, Label: "push",
	}, items)
	after := ReadUsage()
	others, _ := watch.Others()
	if rss != nil {
		r.rep.GatewayRSS = rss.Stop(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: push: %w", err)
	}
	r.record(first, res.Outcomes)
	r.rep.Push = pushReport(res, before, after, pool.Size(), r.o.Events, scope)
	r.rep.Push.OfferedRate = r.o.Rate
	r.rep.Push.OtherCPUCores = others
	r.rep.Push.MachineCPUCores = others + r.rep.Push.CPUCores
	r.rep.Push.JWKSFetches = -1
	if jwksKnown {
		r.rep.Push.JWKSFetches = r.jwksHits() - hits
	}
	return res, nil
}

// pushReport summarises a push run and the process readings around it.
func pushReport(res *LoadResult, before, after Usage, pool int64, events int, scope string) *PushReport {
	cpu := after.CPU - before.CPU
	p := &PushReport{
		SETs: res.Accepted, Sent: res.Sent, Seconds: res.Elapsed.Seconds(),
		SETsPerSec: res.Rate(), EventsPerSec: res.Rate() * float64(events), PoolExhausted: res.Exhausted,
		Latency: NewLatencyReport(Summarize(res.Latencies)), Errors: res.Errors,
		UsageScope: scope, CPUSeconds: cpu.Seconds(), CPUCores: cpu.Seconds() / max(res.Elapsed.Seconds(), 1e-9),
		PeakRSSMB: MB(after.PeakRSS), RSSBeforeMB: MB(before.RSS), PoolMB: MB(pool),
	}
	if len(res.Lags) > 0 {
		lag := NewLatencyReport(Summarize(res.Lags))
		p.Lag = &lag
	}
	if res.Sent > 0 {
		p.CPUPerSET = float64(cpu.Microseconds()) / float64(res.Sent)
	}
	return p
}

// ratios fills rep.Ratios from the rates measured.
func (r *runState) ratios() {
	rep := r.rep
	var push, poll, plain, a, b float64
	if rep.Push != nil {
		push = rep.Push.SETsPerSec
	}
	if rep.Poll != nil {
		poll = rep.Poll.SETsPerSec
	}
	if rep.PlainCeiling != nil {
		plain = rep.PlainCeiling.SETsPerSec
	}
	if rep.VerifyCeiling != nil {
		a = rep.VerifyCeiling.SETsPerSec
	}
	if rep.PublishCeiling != nil {
		b = rep.PublishCeiling.SETsPerSec
	}
	rep.Ratios = Ratios{
		PushToPlain: Ratio(push, plain), VerifyToPlain: Ratio(a, plain),
		PushToVerify: Ratio(push, a), PushToPublish: Ratio(push, b),
		PollToPush: Ratio(poll, push), PollToPublish: Ratio(poll, b),
	}
}

// check reads the run's messages from the stream and compares them with
// the outcomes; strict: the stream holds nothing but this run.
func (r *runState) check(ctx context.Context, js jetstream.JetStream, stream string, from uint64, strict bool) error {
	st, err := ReadStream(ctx, js, stream, from, r.prefix, len(r.outcomes))
	if err != nil {
		return fmt.Errorf("bench: check: %w", err)
	}
	v := Check(r.outcomes, r.o.Events, st, strict)
	r.rep.Check = &v
	return nil
}

// fleet is the transmitters of an in-process run: one per push
// issuer and, unless the mode is push, a poll transmitter (RFC 8936).
type fleet struct {
	push  []*issuer
	pollI *issuer
	poll  *transmitter.PollServer
}

// newFleet makes the transmitters and serves their JWKS.
func newFleet(o Options) (f *fleet, err error) {
	f = &fleet{}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	for i := range o.Issuers {
		is, err := newIssuer(fmt.Sprintf("bench-%d", i+1), o.Alg, o.Keys)
		if err != nil {
			return nil, err
		}
		f.push = append(f.push, is)
	}
	if o.Mode == "push" {
		return f, nil
	}
	if f.pollI, err = newIssuer("bench-poll", o.Alg, o.Keys); err != nil {
		return nil, err
	}
	if f.poll, err = transmitter.NewPollServer(transmitter.PollOptions{Bearer: f.pollI.bearer, Hold: pollHold}); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return f, nil
}

// close stops the transmitters' servers.
func (f *fleet) close() {
	for _, is := range f.push {
		_ = is.jwks.Close()
	}
	if f.pollI != nil {
		_ = f.pollI.jwks.Close()
	}
	if f.poll != nil {
		_ = f.poll.Close()
	}
}

// Gateway is the in-process gateway a local run measures.
type Gateway interface {
	// PushURL is the base URL of the push listener.
	PushURL() string
	// JetStream and Stream are where the gateway stores SETs.
	JetStream() jetstream.JetStream
	Stream() string
	// Sync is the embedded NATS server's sync mode (SETGATE_EMBEDDED_SYNC).
	Sync() string
	// Publisher is the gateway's publisher, and Logger its logger, for
	// the pipeline of ceiling (b).
	Publisher() intake.Publisher
	Logger() *slog.Logger
	// Source returns the intake source of the running issuer called
	// name, or nil.
	Source(name string) *intake.Source
	// Issuers is how many issuers run.
	Issuers() int
	// Stop shuts the gateway down and returns how it ended; later calls
	// return the same.
	Stop() error
}

// StartFunc starts a gateway with issuers, each of whose verifiers has
// fetched its JWKS when it returns.
type StartFunc func(ctx context.Context, issuers []config.Issuer) (Gateway, error)

// RunLocal runs the bench against an in-process gateway started by start
// with one issuer per transmitter of the run; progress lines go to
// stderr.
func RunLocal(ctx context.Context, o Options, start StartFunc, stderr io.Writer) (*Report, error) {
	r := newRunState(o, stderr, "in-process gateway, embedded NATS", o.Alg)

	defer r.release() // last: after the gateway and the clients are gone
	f, err := newFleet(o)
	if err != nil {
		return nil, err
	}
	defer f.close()
	memBefore := ReadMemory()
	gw, err := start(ctx, gatewayIssuers(f.push, f.pollI, f.poll, o.Events))
	if err != nil {
		return nil, err
	}
	defer gw.Stop() // on an early return; nothing left to do after the stop below
	// Started means every issuer's verifier fetched its JWKS.
	r.rep.Memory = NewMemoryReport(gw.Issuers(), memBefore, ReadMemory())
	r.rep.Target += " (sync " + gw.Sync() + ")"
	r.push = f.push
	for _, is := range f.push {
		r.targets = append(r.targets, Target{URL: gw.PushURL() + "/events/" + is.name, Bearer: is.bearer})
	}
	if err := r.measureLocal(ctx, gw, f); err != nil {
		return nil, err
	}
	if err := gw.Stop(); err != nil {
		return nil, fmt.Errorf("bench: gateway shutdown: %w", err)
	}
	r.ratios()
	return r.rep, nil
}

// measureLocal runs the ceilings, push, poll and the check, in that order.
func (r *runState) measureLocal(ctx context.Context, gw Gateway, f *fleet) error {
	js := gw.JetStream()
	from, err := NextSeq(ctx, js, gw.Stream())
	if err != nil {
		return err
	}
	sources := r.sources(gw)
	if err := r.verifyCeiling(ctx, sources); err != nil {
		return err
	}
	// The ceiling's pipeline publishes with the gateway's bridge, without
	// the gateway's observers (metrics).
	in := intake.New(intake.Config{Publisher: gw.Publisher(), Logger: gw.Logger()})
	if err := r.publishCeiling(ctx, in, sources); err != nil {
		return err
	}
	expect := r.rep.PublishCeiling.SETsPerSec
	if r.o.Mode != "poll" {
		res, err := r.runPush(ctx, expect, "whole process: gateway, embedded NATS and load generator", true)
		if err != nil {
			return err
		}
		expect = res.Rate()
	}
	if r.o.Mode != "push" {
		if err := r.runPoll(ctx, f, expect); err != nil {
			return err
		}
	}
	return r.check(ctx, js, gw.Stream(), from, true)
}

// sources returns the gateway's source of each push issuer, in order.
func (r *runState) sources(gw Gateway) []*intake.Source {
	out := make([]*intake.Source, len(r.push))
	for i, is := range r.push {
		out[i] = gw.Source(is.name)
	}
	return out
}

// verifyCeiling measures ceiling (a): GOMAXPROCS goroutines verifying
// pre-signed SETs over and over, no HTTP, no NATS.
func (r *runState) verifyCeiling(ctx context.Context, sources []*intake.Source) error {
	_, seed, err := r.sign(ctx, r.push, seedSETs, "ceiling (a)")
	if err != nil {
		return err
	}
	if err := r.plainCeiling(ctx, seed); err != nil {
		return err
	}
	workers := runtime.GOMAXPROCS(0)
	watch := StartCPUWatch()
	c := Run(ctx, workers, r.o.Ceiling, 0, func(ctx context.Context, i int) error {
		it := seed[i%len(seed)]
		_, err := sources[it.Target].Verifier.Verify(ctx, it.Body)
		return err
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	others, _ := watch.Others()
	r.rep.VerifyCeiling = NewCeilingReport(c, workers, others)
	return nil
}

// plainCeiling measures ceiling (0): GOMAXPROCS goroutines parsing and
// verifying the items (SET i signed by key (i / issuers) mod keys of
// issuer i mod issuers, as [runState.sign] made them) with golang-jwt's
// jwt.Parse and the signing key's public half, no HTTP, no NATS.
func (r *runState) plainCeiling(ctx context.Context, items []Item) error {
	tokens := make([]string, len(items))
	keys := make([]crypto.PublicKey, len(items))
	for i, it := range items {
		is := r.push[i%len(r.push)]
		tokens[i], keys[i] = string(it.Body), is.keys[(i/len(r.push))%len(is.keys)].Signer.Public()
	}
	workers := runtime.GOMAXPROCS(0)
	watch := StartCPUWatch()
	c := Run(ctx, workers, r.o.Ceiling, 0, PlainJWT(r.rep.Alg, tokens, keys))
	if err := ctx.Err(); err != nil {
		return err
	}
	others, _ := watch.Others()
	r.rep.PlainCeiling = NewCeilingReport(c, workers, others)
	return nil
}

// publishCeiling measures ceiling (b): --concurrency goroutines handing
// pre-signed SETs to the intake pipeline in (verify, publish, PubAck), no
// HTTP. It signs in chunks sized by the rate so far; signing is not timed.
func (r *runState) publishCeiling(ctx context.Context, in *intake.Pipeline, sources []*intake.Source) error {
	var total Ceiling
	var otherCPU float64 // CPU-seconds taken by other processes
	chunk := firstChunk
	if r.o.CeilingSETs > 0 {
		chunk = r.o.CeilingSETs
	}
	for total.Elapsed < r.o.Ceiling {
		first, items, err := r.sign(ctx, r.push, chunk, "ceiling (b)")
		if err != nil {
			return err
		}
		outcomes := make([]Outcome, len(items))
		watch := StartCPUWatch()
		// With a SET count (--short) the count alone bounds the run, so the
		// check's total does not depend on the machine's speed.
		bound := r.o.Ceiling - total.Elapsed
		if r.o.CeilingSETs > 0 {
			bound = 0
		}
		c := Run(ctx, r.o.Concurrency, bound, len(items), func(ctx context.Context, i int) error {
			it := items[i]
			res, err := in.Accept(ctx, sources[it.Target], it.Body, intake.DeliveryPush)
			outcomes[i] = acceptOutcome(res, err)
			return err
		})
		cores, elapsed := watch.Others()
		otherCPU += cores * elapsed.Seconds()
		r.record(first, outcomes)
		total = total.Add(c)
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.o.CeilingSETs > 0 || c.OK == 0 {
			break
		}
		chunk = int(c.Rate()*(r.o.Ceiling-total.Elapsed).Seconds()*1.1) + 100
	}
	r.rep.PublishCeiling = NewCeilingReport(total, r.o.Concurrency, otherCPU/max(total.Elapsed.Seconds(), 1e-9))
	return nil
}

// acceptOutcome is what a transmitter would have been told.
func acceptOutcome(res intake.Result, err error) Outcome {
	switch o := intake.Classify(res, err); {
	case o.Stored():
		return Acked
	case o == intake.Rejected:
		return Rejected
	default:
		return Unknown
	}
}

// runPoll queues pre-signed SETs at the poll transmitter, lets the
// gateway's poll loop drain them and fills rep.Poll.
func (r *runState) runPoll(ctx context.Context, f *fleet, expectRate float64) error {
	n := r.o.Count
	if n == 0 {
		n = max(int(expectRate*min(r.o.Duration, pollWindow).Seconds()), shortSETs)
	}
	first, items, err := r.sign(ctx, []*issuer{f.pollI}, n, "poll")
	if err != nil {
		return err
	}
	jtis := make([]string, n)
	bodies := make([][]byte, n)
	for i, it := range items {
		jtis[i], bodies[i] = r.prefix+strconv.Itoa(first+i), it.Body
	}
	watch := StartCPUWatch()
	res, err := Drain(ctx, f.poll, jtis, bodies, pollStall, r.stderr, "poll")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	others, _ := watch.Others()
	r.record(first, res.Outcomes)
	r.rep.Poll = &PollReport{
		MaxEvents: pollMaxEvents, Queued: n, SETs: res.Acked, Reported: res.Reported,
		Seconds: res.Elapsed.Seconds(), SETsPerSec: res.Rate(), EventsPerSec: res.Rate() * float64(r.o.Events),
		OtherCPUCores: others,
	}
	if err != nil {
		r.rep.Poll.Error = err.Error()
	}
	return nil
}

// gatewayIssuers are the gateway's issuers: one push issuer per push
// transmitter, and the poll issuer when there is one.
func gatewayIssuers(push []*issuer, pollI *issuer, ps *transmitter.PollServer, events int) []config.Issuer {
	var profile verify.Profile
	if events > 1 {
		profile = verify.ProfileRFC8417
	}
	spec := func(is *issuer) config.Issuer {
		return config.Issuer{Name: is.name, Verify: verify.Config{Name: is.name, Issuer: is.iss, Audience: []string{is.aud},
			JWKSURI: is.jwks.JWKSURL(), Algorithms: []string{is.keys[0].Alg}, Profile: profile}}
	}
	var specs []config.Issuer
	for _, is := range push {
		sp := spec(is)
		sp.PushToken = is.bearer
		specs = append(specs, sp)
	}
	if pollI != nil {
		sp := spec(pollI)
		sp.Poll = &config.Poll{Endpoint: ps.URL(), MaxEvents: pollMaxEvents, LongPollTimeout: pollHold, Bearer: pollI.bearer}
		specs = append(specs, sp)
	}
	return specs
}

// ConnectFunc connects to the remote gateway's NATS for the check and
// returns its JetStream, the stream's name and how to close it.
type ConnectFunc func(ctx context.Context) (js jetstream.JetStream, stream string, close func(), err error)

// RunRemote runs the bench against the gateway at --url: ceiling (0) in
// this process, then push; with o.Check, the check reads the stream
// through connect.
func RunRemote(ctx context.Context, o Options, connect ConnectFunc, stderr io.Writer) (*Report, error) {
	target, err := url.Parse(o.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("bench: --url %q is not an http(s) URL", o.URL)
	}
	is, err := remoteIssuer(o)
	if err != nil {
		return nil, err
	}
	r := newRunState(o, stderr, o.URL, is.keys[0].Alg)
	defer r.release()
	r.push = []*issuer{is}
	r.targets = []Target{{URL: target.String(), Bearer: is.bearer}}

	var js jetstream.JetStream
	var stream string
	var from uint64
	if o.Check {
		var closeNATS func()
		js, stream, closeNATS, err = connect(ctx)
		if err != nil {
			return nil, err
		}
		defer closeNATS()
		if from, err = NextSeq(ctx, js, stream); err != nil {
			return nil, fmt.Errorf("%w (--check=false skips the check)", err)
		}
	}
	_, seed, err := r.sign(ctx, r.push, seedSETs, "ceiling (0)")
	if err != nil {
		return nil, err
	}
	if err := r.plainCeiling(ctx, seed); err != nil {
		return nil, err
	}
	expect, err := r.warmUp(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.runPush(ctx, expect, "this process only: the load generator", false); err != nil {
		return nil, err
	}
	r.ratios()
	if !o.Check {
		r.rep.CheckSkipped = "--check=false"
		return r.rep, nil
	}
	return r.rep, r.check(ctx, js, stream, from, false)
}

// warmUp pushes for a second to open the connections and learn the rate
// that sizes the pool (not with --count, which needs no estimate).
func (r *runState) warmUp(ctx context.Context) (float64, error) {
	if r.o.Count > 0 {
		return 0, nil
	}
	first, items, err := r.sign(ctx, r.push, firstChunk*2, "the warm-up")
	if err != nil {
		return 0, err
	}
	res, err := Push(ctx, LoadConfig{Targets: r.targets, Concurrency: r.o.Concurrency, Duration: warmUpDuration}, items)
	if err != nil {
		return 0, fmt.Errorf("bench: warm-up: %w", err)
	}
	r.record(first, res.Outcomes)
	if res.Accepted == 0 {
		return 0, fmt.Errorf("bench: warm-up: no SET accepted by %s (errors: %v)", r.o.URL, res.Errors)
	}
	if res.Exhausted {
		return 2 * res.Rate(), nil // a lower bound: the warm-up SETs ran out first
	}
	return res.Rate(), nil
}

// remoteIssuer loads the signing key and bearer token given with --url.
func remoteIssuer(o Options) (*issuer, error) {
	key, err := transmitter.LoadKey(o.KeyFile)
	if err != nil {
		return nil, err
	}
	alg, err := transmitter.AlgFor(key, o.Alg)
	if err != nil {
		return nil, err
	}
	kid := o.KID
	if kid == "" {
		if _, kid, err = transmitter.PublicJWK(key.Public(), alg, ""); err != nil {
			return nil, err
		}
	}
	is := &issuer{iss: o.Iss, aud: o.Aud, keys: []Key{{ID: kid, Alg: alg, Signer: key}}}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("bench: --token-file: %w", err)
		}
		is.bearer = strings.TrimSpace(string(b))
	}
	return is, nil
}

// newToken returns a random bearer token.
func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
