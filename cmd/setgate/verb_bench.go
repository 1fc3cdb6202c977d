package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/cmd/setgate/bench"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/consumer"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// Bench defaults; --short replaces the run lengths with CI-sized ones.
const (
	benchAudience       = "https://setgate.bench/"
	benchPollMaxEvents  = 1000
	benchPollHold       = 2 * time.Second  // the transmitter's hold = the long-poll timeout: no early empty answers, no backoff
	benchPollWindow     = 5 * time.Second  // poll drains about this much push traffic
	benchPollStall      = 30 * time.Second // poll gives up after this long without an ack
	benchFirstChunk     = 1000             // SETs signed before ceiling (b) knows its rate
	benchSeedSETs       = 1024             // SETs ceiling (a) verifies over and over
	benchPoolHeadroom   = 1.1              // push pool: SETs expected at ceiling (b) × this
	benchShortSETs      = 500
	benchShortCeiling   = time.Second
	benchWarmUpDuration = time.Second     // --url: first run that sizes the pool
	benchMetricsTimeout = 5 * time.Second // --metrics-url: bound on one reading
)

// benchOptions are the flags of "setgate bench".
type benchOptions struct {
	mode        string
	alg         string
	issuers     int
	keys        int
	events      int
	concurrency int
	duration    time.Duration
	count       int
	rate        float64
	ceiling     time.Duration
	ceilingSETs int // ceiling (b) stops after this many SETs (0: after ceiling)
	short       bool
	json        bool

	// Remote gateway (--url).
	url, keyFile, kid, iss, aud, tokenFile, natsURL string
	check                                           bool

	// natsPasswordFile logs the check in as user consumer (--password-file).
	natsPasswordFile string

	// metricsURL is the remote gateway's admin /metrics, read every
	// metricsEvery during the push run for its resident set.
	metricsURL   string
	metricsEvery time.Duration
}

// benchVerb runs "setgate bench": it measures the push path (and the poll
// path) of an in-process gateway, or of a remote one with --url, and
// checks afterwards that the stream holds exactly the acknowledged SETs.
func benchVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stdout)
	if err != nil {
		return err
	}
	var rep *bench.Report
	if o.url != "" {
		rep, err = benchRemote(ctx, o, vars, stderr)
	} else {
		rep, err = benchLocal(ctx, o, vars, stderr)
	}
	if err != nil {
		return err
	}
	if err := writeBenchReport(rep, o.json, stdout); err != nil {
		return err
	}
	if rep.Check != nil && !rep.Check.Passed {
		return errors.New("bench: correctness check failed: the stream does not hold exactly the acknowledged SETs")
	}
	return nil
}

// parseBenchFlags parses and checks the flags.
func parseBenchFlags(args []string, stdout io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := newVerbFlagSet("bench", "[flags]", stdout,
		"Measure the push path (RFC 8935) and the poll path (RFC 8936): start an in-process gateway\n"+
			"with embedded NATS and loopback transmitters (or target one with --url), pre-sign SETs\n"+
			"(signing is not measured), drive the gateway, measure ceilings on the same machine and\n"+
			"NATS (ceiling (0), plain golang-jwt parse+verify, also with --url), and check that the stream holds exactly the acknowledged SETs (exit status 1 if not).\n"+
			"In-process, the SETGATE_* tuning variables apply (publish timeout, max concurrent,\n"+
			"embedded sync, …); addresses, data directory, NATS and TLS are the bench's own.",
		"PUBLISH_TIMEOUT", "MAX_CONCURRENT", "DUPLICATE_WINDOW", "EMBEDDED_SYNC", "LOG_LEVEL", "NATS_URL", "STREAM")
	fs.StringVar(&o.mode, "mode", "", "push, poll or both (default both; push with --url)")
	fs.StringVar(&o.alg, "alg", "", "ES256, RS256 or EdDSA (default ES256; with --url: from the key)")
	fs.IntVar(&o.issuers, "issuers", 2, "issuers, each with its own transmitter and JWKS; load is spread over them and the memory line shows what starting with them cost")
	fs.IntVar(&o.keys, "keys", 1, "signing keys per issuer (all in its JWKS; SETs rotate over them)")
	fs.IntVar(&o.events, "events", 1, "events per SET, 1 to 4 (more than 1: issuers use the rfc8417 profile)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent keep-alive push connections, and ceiling (b) goroutines")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the push run")
	fs.IntVar(&o.count, "count", 0, "push (and poll) exactly this many SETs instead of running for --duration")
	fs.Float64Var(&o.rate, "rate", 0, "push at this many SETs/s, open loop (latency counts from each SET's due time); 0: as fast as possible")
	fs.DurationVar(&o.ceiling, "ceiling-duration", 3*time.Second, "length of each ceiling measurement")
	fs.BoolVar(&o.short, "short", false, "CI size: 500 SETs pushed and polled, a 1s verify ceiling and a 500-SET publish ceiling")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the text report")
	fs.StringVar(&o.url, "url", "", "push endpoint of a running gateway (e.g. https://setgate.example.com/events/acme)")
	fs.StringVar(&o.keyFile, "key", "", "with --url: PEM private key the issuer publishes (see setgate send --gen-key)")
	fs.StringVar(&o.kid, "kid", "", "with --url: key id (default: the key's RFC 7638 thumbprint)")
	fs.StringVar(&o.iss, "iss", "", "with --url: iss claim, as in the gateway's issuers file")
	fs.StringVar(&o.aud, "aud", "", "with --url: aud claim")
	fs.StringVar(&o.tokenFile, "token-file", "", "with --url: file holding the push bearer token")
	fs.StringVar(&o.natsURL, "nats", "", "with --url: NATS of the gateway, for the check (default $SETGATE_NATS_URL, else nats://$SETGATE_EMBEDDED_NATS_ADDR)")
	fs.StringVar(&o.natsPasswordFile, "password-file", "", "with --url: log in to the gateway's embedded NATS as user consumer with this password file (default as setgate tail)")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "with --url: the gateway's admin /metrics (e.g. http://127.0.0.1:9090/metrics); its process_resident_memory_bytes is read when the push run starts, every --metrics-every and at the end")
	fs.DurationVar(&o.metricsEvery, "metrics-every", time.Minute, "with --metrics-url: time between two readings of the gateway's RSS")
	fs.BoolVar(&o.check, "check", true, "with --url: read the stream afterwards (--check=false skips the correctness check)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return o, err
	}
	if len(pos) > 0 {
		fs.Usage()
		return o, fmt.Errorf("bench: unexpected argument %q", pos[0])
	}
	return o, o.normalize()
}

// normalize fills in mode-dependent defaults and checks the options.
func (o *benchOptions) normalize() error {
	if o.mode == "" {
		o.mode = "both"
		if o.url != "" {
			o.mode = "push"
		}
	}
	if o.alg == "" && o.url == "" {
		o.alg = "ES256"
	}
	if o.short {
		o.count, o.ceiling, o.ceilingSETs = benchShortSETs, benchShortCeiling, benchShortSETs
	}
	switch {
	case o.mode != "push" && o.mode != "poll" && o.mode != "both":
		return fmt.Errorf("bench: --mode %q: want push, poll or both", o.mode)
	case o.url == "" && o.alg != "ES256" && o.alg != "RS256" && o.alg != "EdDSA":
		return fmt.Errorf("bench: --alg %q: want ES256, RS256 or EdDSA", o.alg)
	case o.issuers < 1 || o.keys < 1 || o.concurrency < 1 || o.count < 0 || o.rate < 0:
		return errors.New("bench: --issuers, --keys and --concurrency must be positive, --count and --rate not negative")
	case o.events < 1 || o.events > len(benchEventTypes()):
		return fmt.Errorf("bench: --events must be 1 to %d", len(benchEventTypes()))
	case o.count == 0 && o.duration <= 0, o.ceiling <= 0:
		return errors.New("bench: --duration and --ceiling-duration must be positive")
	case o.url != "" && o.mode != "push":
		return errors.New("bench: --url measures push only (the poll mode needs the in-process gateway and transmitter)")
	case o.url != "" && (o.keyFile == "" || o.iss == ""):
		return errors.New("bench: --url needs --key and --iss (and usually --aud and --token-file), as setgate send")
	case o.url == "" && (o.keyFile != "" || o.iss != "" || o.aud != "" || o.kid != "" || o.tokenFile != "" || o.natsURL != "" || o.natsPasswordFile != "" || o.metricsURL != ""):
		return errors.New("bench: --key, --iss, --aud, --kid, --token-file, --nats, --password-file and --metrics-url go with --url")
	case o.metricsEvery <= 0:
		return errors.New("bench: --metrics-every must be positive")
	}
	if o.metricsURL != "" {
		if u, err := url.Parse(o.metricsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bench: --metrics-url %q is not an http(s) URL", o.metricsURL)
		}
	}
	return nil
}

// writeBenchReport prints rep as text or as one JSON object.
func writeBenchReport(rep *bench.Report, asJSON bool, w io.Writer) error {
	if !asJSON {
		return rep.WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// benchIssuer is one transmitter of the bench: its issuer name in the
// gateway, iss, signing keys and push credential.
type benchIssuer struct {
	name   string
	iss    string
	aud    string
	keys   []bench.Key
	bearer string
	jwks   *bench.JWKSServer // nil for a remote gateway's issuer
}

// benchRun is one bench invocation's state: the SETs signed so far (by
// number; the jti is prefix + number) and what their transmitter was
// told.
type benchRun struct {
	o        benchOptions
	stderr   io.Writer
	prefix   string
	outcomes []bench.Outcome
	push     []*benchIssuer
	targets  []bench.Target
	arenas   []*bench.Arena
	rep      *bench.Report
}

// newBenchRun starts the bookkeeping of one run.
func newBenchRun(o benchOptions, stderr io.Writer, target, alg string) *benchRun {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	issuers, keys := o.issuers, o.keys
	if o.url != "" {
		issuers, keys = 1, 1
	}
	return &benchRun{
		o: o, stderr: stderr, prefix: "bench-" + hex.EncodeToString(b) + "-",
		rep: &bench.Report{
			Target: target, Mode: o.mode, Alg: alg, Issuers: issuers, KeysPerIssuer: keys, EventsPerSET: o.events,
			Concurrency: o.concurrency, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAverage: bench.LoadAverage(),
		},
	}
}

// sign pre-signs n SETs from the issuers iss (SET i from iss[i mod
// len(iss)], rotating over its keys) and returns them as items for the
// targets of the same index, with the number of the first SET.
func (r *benchRun) sign(ctx context.Context, iss []*benchIssuer, n int, what string) (first int, items []bench.Item, err error) {
	first = len(r.outcomes)
	r.outcomes = append(r.outcomes, make([]bench.Outcome, n)...)
	now := time.Now().Unix()
	label := fmt.Sprintf("signing %d %s SETs for %s", n, iss[0].keys[0].Alg, what)
	bodies, err := bench.SignAll(ctx, n, r.stderr, label, func(i int) ([]byte, error) {
		is := iss[i%len(iss)]
		key := is.keys[(i/len(iss))%len(is.keys)]
		return key.Sign(benchClaims(is, r.prefix, first+i, r.o.events, now))
	})
	if err != nil {
		return 0, nil, err
	}
	items = make([]bench.Item, n)
	for i, body := range bodies {
		items[i] = bench.Item{Target: i % len(iss), Body: body}
	}
	return first, items, nil
}

// pack moves the items' SETs into an arena outside the Go heap (see
// [bench.Arena]), released by [benchRun.release].
func (r *benchRun) pack(items []bench.Item) (*bench.Arena, error) {
	bodies := make([][]byte, len(items))
	for i, it := range items {
		bodies[i] = it.Body
	}
	a, packed, err := bench.NewArena(bodies)
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
func (r *benchRun) release() {
	for _, a := range r.arenas {
		_ = a.Close()
	}
	r.arenas = nil
}

// record stores the outcomes of the SETs numbered from first on.
func (r *benchRun) record(first int, outcomes []bench.Outcome) {
	copy(r.outcomes[first:], outcomes)
}

// benchClaims are the claims of SET number n from is: SSF-style, an email
// subject and the first events of benchEventTypes.
func benchClaims(is *benchIssuer, prefix string, n, events int, iat int64) map[string]any {
	evs := make(map[string]any, events)
	for _, e := range benchEventTypes()[:events] {
		evs[e.uri] = e.payload
	}
	c := map[string]any{
		"iss":    is.iss,
		"jti":    prefix + strconv.Itoa(n),
		"iat":    iat,
		"txn":    "bench-txn-" + strconv.Itoa(n),
		"sub_id": map[string]any{"format": "email", "email": "user" + strconv.Itoa(n%10000) + "@bench.example"},
		"events": evs,
	}
	if is.aud != "" {
		c["aud"] = is.aud
	}
	return c
}

// benchEvent is one event type with a payload valid under strict
// validation.
type benchEvent struct {
	uri     string
	payload map[string]any
}

// benchEventTypes are the event types a bench SET carries, in order.
func benchEventTypes() []benchEvent {
	return []benchEvent{
		{transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}},
		{transmitter.CredentialChange, map[string]any{"credential_type": "password", "change_type": "update"}},
		{transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}},
		{transmitter.DeviceCompliance, map[string]any{"previous_status": "compliant", "current_status": "not-compliant"}},
	}
}

// newBenchIssuer makes a transmitter with keys fresh keys for alg and
// serves their JWKS on loopback.
func newBenchIssuer(name, alg string, keys int) (*benchIssuer, error) {
	is := &benchIssuer{name: name, aud: benchAudience, bearer: randomToken()}
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
		is.keys = append(is.keys, bench.Key{ID: kid, Alg: alg, Signer: k})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("bench: jwks: %w", err)
	}
	if is.jwks, err = bench.ServeJWKS(body); err != nil {
		return nil, err
	}
	is.iss = is.jwks.Base()
	return is, nil
}

// jwksHits sums the JWKS fetches served for the push issuers.
func (r *benchRun) jwksHits() int64 {
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
func (r *benchRun) pushPoolSize(rate float64) int {
	if r.o.count > 0 {
		return r.o.count
	}
	if r.o.rate > 0 {
		rate = r.o.rate
	}
	return max(int(rate*r.o.duration.Seconds()*benchPoolHeadroom)+r.o.concurrency, 1000)
}

// runPush pre-signs the pool, drives the push endpoint and fills
// rep.Push. scope says whose CPU and memory the process readings are.
func (r *benchRun) runPush(ctx context.Context, expectRate float64, scope string, jwksKnown bool) (*bench.LoadResult, error) {
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
	_ = bench.ResetPeakRSS()
	before, hits := bench.ReadUsage(), r.jwksHits()
	watch := bench.StartCPUWatch()
	duration := r.o.duration
	if r.o.count > 0 {
		duration = 0
	}
	var rss *bench.RSSSampler
	if r.o.metricsURL != "" {
		rss = bench.StartRSSSampler(ctx, &http.Client{Timeout: benchMetricsTimeout}, r.o.metricsURL, r.o.metricsEvery)
	}
	res, err := bench.Push(ctx, bench.LoadConfig{
		Targets: r.targets, Concurrency: r.o.concurrency, Duration: duration, Rate: r.o.rate, Progress: r.stderr, Label: "push",
	}, items)
	after := bench.ReadUsage()
	others, _ := watch.Others()
	if rss != nil {
		r.rep.GatewayRSS = rss.Stop(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: push: %w", err)
	}
	r.record(first, res.Outcomes)
	r.rep.Push = pushReport(res, before, after, pool.Size(), r.o.events, scope)
	r.rep.Push.OfferedRate = r.o.rate
	r.rep.Push.OtherCPUCores = others
	r.rep.Push.MachineCPUCores = others + r.rep.Push.CPUCores
	r.rep.Push.JWKSFetches = -1
	if jwksKnown {
		r.rep.Push.JWKSFetches = r.jwksHits() - hits
	}
	return res, nil
}

// pushReport summarises a push run and the process readings around it.
func pushReport(res *bench.LoadResult, before, after bench.Usage, pool int64, events int, scope string) *bench.PushReport {
	cpu := after.CPU - before.CPU
	p := &bench.PushReport{
		SETs: res.Accepted, Sent: res.Sent, Seconds: res.Elapsed.Seconds(),
		SETsPerSec: res.Rate(), EventsPerSec: res.Rate() * float64(events), PoolExhausted: res.Exhausted,
		Latency: bench.NewLatencyReport(bench.Summarize(res.Latencies)), Errors: res.Errors,
		UsageScope: scope, CPUSeconds: cpu.Seconds(), CPUCores: cpu.Seconds() / max(res.Elapsed.Seconds(), 1e-9),
		PeakRSSMB: bench.MB(after.PeakRSS), RSSBeforeMB: bench.MB(before.RSS), PoolMB: bench.MB(pool),
	}
	if res.Sent > 0 {
		p.CPUPerSET = float64(cpu.Microseconds()) / float64(res.Sent)
	}
	return p
}

// ratios fills rep.Ratios from the rates measured.
func (r *benchRun) ratios() {
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
	rep.Ratios = bench.Ratios{
		PushToPlain: bench.Ratio(push, plain), VerifyToPlain: bench.Ratio(a, plain),
		PushToVerify: bench.Ratio(push, a), PushToPublish: bench.Ratio(push, b),
		PollToPush: bench.Ratio(poll, push), PollToPublish: bench.Ratio(poll, b),
	}
}

// check reads the run's messages from the stream and compares them with
// the outcomes; strict: the stream holds nothing but this run.
func (r *benchRun) check(ctx context.Context, js jetstream.JetStream, stream string, from uint64, strict bool) error {
	st, err := bench.ReadStream(ctx, js, stream, from, r.prefix, len(r.outcomes))
	if err != nil {
		return fmt.Errorf("bench: check: %w", err)
	}
	v := bench.Check(r.outcomes, r.o.events, st, strict)
	r.rep.Check = &v
	return nil
}

// benchFleet is the transmitters of an in-process run: one per push
// issuer and, unless the mode is push, a poll transmitter (RFC 8936).
type benchFleet struct {
	push  []*benchIssuer
	pollI *benchIssuer
	poll  *transmitter.PollServer
}

// newBenchFleet makes the transmitters and serves their JWKS.
func newBenchFleet(o benchOptions) (f *benchFleet, err error) {
	f = &benchFleet{}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	for i := range o.issuers {
		is, err := newBenchIssuer(fmt.Sprintf("bench-%d", i+1), o.alg, o.keys)
		if err != nil {
			return nil, err
		}
		f.push = append(f.push, is)
	}
	if o.mode == "push" {
		return f, nil
	}
	if f.pollI, err = newBenchIssuer("bench-poll", o.alg, o.keys); err != nil {
		return nil, err
	}
	if f.poll, err = transmitter.NewPollServer(transmitter.PollOptions{Bearer: f.pollI.bearer, Hold: benchPollHold}); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return f, nil
}

// close stops the transmitters' servers.
func (f *benchFleet) close() {
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

// localGateway is the in-process gateway of a bench run.
type localGateway struct {
	app     *App
	s       config.Settings
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// stop shuts the gateway down (once) and returns how serve ended.
func (g *localGateway) stop() error {
	if !g.stopped {
		g.stopped = true
		g.cancel()
		g.err = <-g.done
	}
	return g.err
}

// benchLocal runs the bench against an in-process gateway.
func benchLocal(ctx context.Context, o benchOptions, vars map[string]string, stderr io.Writer) (*bench.Report, error) {
	r := newBenchRun(o, stderr, "in-process gateway, embedded NATS", o.alg)

	defer r.release() // last: after the gateway and the clients are gone
	dir, err := os.MkdirTemp("", "setgate-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	f, err := newBenchFleet(o)
	if err != nil {
		return nil, err
	}
	defer f.close()
	memBefore := bench.ReadMemory()
	gw, err := startBenchGateway(ctx, f, o.events, dir, vars, stderr)
	if err != nil {
		return nil, err
	}
	defer gw.stop() // on an early return; nothing left to do after the stop below
	// Started means every issuer's verifier fetched its JWKS.
	r.rep.Memory = bench.NewMemoryReport(gw.app.Issuers().Len(), memBefore, bench.ReadMemory())
	r.rep.Target += " (sync " + gw.s.EmbeddedSync + ")"
	r.push = f.push
	for _, is := range f.push {
		r.targets = append(r.targets, bench.Target{URL: gw.app.PushURL() + "/events/" + is.name, Bearer: is.bearer})
	}
	if err := r.measureLocal(ctx, gw, f); err != nil {
		return nil, err
	}
	if err := gw.stop(); err != nil {
		return nil, fmt.Errorf("bench: gateway shutdown: %w", err)
	}
	r.ratios()
	return r.rep, nil
}

// measureLocal runs the ceilings, push, poll and the check, in that order.
func (r *benchRun) measureLocal(ctx context.Context, gw *localGateway, f *benchFleet) error {
	js := gw.app.Bridge().JetStream()
	from, err := bench.NextSeq(ctx, js, gw.s.Stream)
	if err != nil {
		return err
	}
	sources := r.sources(gw)
	if err := r.verifyCeiling(ctx, sources); err != nil {
		return err
	}
	// The ceiling's pipeline publishes with the gateway's bridge, without
	// the gateway's observers (metrics).
	in := intake.New(intake.Config{Publisher: gw.app.Bridge(), Logger: gw.app.log})
	if err := r.publishCeiling(ctx, in, sources); err != nil {
		return err
	}
	expect := r.rep.PublishCeiling.SETsPerSec
	if r.o.mode != "poll" {
		res, err := r.runPush(ctx, expect, "whole process: gateway, embedded NATS and load generator", true)
		if err != nil {
			return err
		}
		expect = res.Rate()
	}
	if r.o.mode != "push" {
		if err := r.runPoll(ctx, f, expect); err != nil {
			return err
		}
	}
	return r.check(ctx, js, gw.s.Stream, from, true)
}

// sources returns the gateway's source of each push issuer, in order.
func (r *benchRun) sources(gw *localGateway) []*intake.Source {
	out := make([]*intake.Source, len(r.push))
	for i, is := range r.push {
		if li := gw.app.Issuers().Get(is.name); li != nil {
			out[i] = li.Source()
		}
	}
	return out
}

// verifyCeiling measures ceiling (a): GOMAXPROCS goroutines verifying
// pre-signed SETs over and over, no HTTP, no NATS.
func (r *benchRun) verifyCeiling(ctx context.Context, sources []*intake.Source) error {
	_, seed, err := r.sign(ctx, r.push, benchSeedSETs, "ceiling (a)")
	if err != nil {
		return err
	}
	if err := r.plainCeiling(ctx, seed); err != nil {
		return err
	}
	workers := runtime.GOMAXPROCS(0)
	watch := bench.StartCPUWatch()
	c := bench.Run(ctx, workers, r.o.ceiling, 0, func(ctx context.Context, i int) error {
		it := seed[i%len(seed)]
		_, err := sources[it.Target].Verifier.Verify(ctx, it.Body)
		return err
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	others, _ := watch.Others()
	r.rep.VerifyCeiling = bench.NewCeilingReport(c, workers, others)
	return nil
}

// plainCeiling measures ceiling (0): GOMAXPROCS goroutines parsing and
// verifying the items (SET i signed by key (i / issuers) mod keys of
// issuer i mod issuers, as [benchRun.sign] made them) with golang-jwt's
// jwt.Parse and the signing key's public half, no HTTP, no NATS.
func (r *benchRun) plainCeiling(ctx context.Context, items []bench.Item) error {
	tokens := make([]string, len(items))
	keys := make([]crypto.PublicKey, len(items))
	for i, it := range items {
		is := r.push[i%len(r.push)]
		tokens[i], keys[i] = string(it.Body), is.keys[(i/len(r.push))%len(is.keys)].Signer.Public()
	}
	workers := runtime.GOMAXPROCS(0)
	watch := bench.StartCPUWatch()
	c := bench.Run(ctx, workers, r.o.ceiling, 0, bench.PlainJWT(r.rep.Alg, tokens, keys))
	if err := ctx.Err(); err != nil {
		return err
	}
	others, _ := watch.Others()
	r.rep.PlainCeiling = bench.NewCeilingReport(c, workers, others)
	return nil
}

// publishCeiling measures ceiling (b): --concurrency goroutines handing
// pre-signed SETs to the intake pipeline in (verify, publish, PubAck), no
// HTTP. It signs in chunks sized by the rate so far; signing is not timed.
func (r *benchRun) publishCeiling(ctx context.Context, in *intake.Pipeline, sources []*intake.Source) error {
	var total bench.Ceiling
	var otherCPU float64 // CPU-seconds taken by other processes
	chunk := benchFirstChunk
	if r.o.ceilingSETs > 0 {
		chunk = r.o.ceilingSETs
	}
	for total.Elapsed < r.o.ceiling {
		first, items, err := r.sign(ctx, r.push, chunk, "ceiling (b)")
		if err != nil {
			return err
		}
		outcomes := make([]bench.Outcome, len(items))
		watch := bench.StartCPUWatch()
		// With a SET count (--short) the count alone bounds the run, so the
		// check's total does not depend on the machine's speed.
		bound := r.o.ceiling - total.Elapsed
		if r.o.ceilingSETs > 0 {
			bound = 0
		}
		c := bench.Run(ctx, r.o.concurrency, bound, len(items), func(ctx context.Context, i int) error {
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
		if r.o.ceilingSETs > 0 || c.OK == 0 {
			break
		}
		chunk = int(c.Rate()*(r.o.ceiling-total.Elapsed).Seconds()*1.1) + 100
	}
	r.rep.PublishCeiling = bench.NewCeilingReport(total, r.o.concurrency, otherCPU/max(total.Elapsed.Seconds(), 1e-9))
	return nil
}

// acceptOutcome is what a transmitter would have been told.
func acceptOutcome(res intake.Result, err error) bench.Outcome {
	switch o := intake.Classify(res, err); {
	case o.Stored():
		return bench.Acked
	case o == intake.Rejected:
		return bench.Rejected
	default:
		return bench.Unknown
	}
}

// runPoll queues pre-signed SETs at the poll transmitter, lets the
// gateway's poll loop drain them and fills rep.Poll.
func (r *benchRun) runPoll(ctx context.Context, f *benchFleet, expectRate float64) error {
	n := r.o.count
	if n == 0 {
		n = max(int(expectRate*min(r.o.duration, benchPollWindow).Seconds()), benchShortSETs)
	}
	first, items, err := r.sign(ctx, []*benchIssuer{f.pollI}, n, "poll")
	if err != nil {
		return err
	}
	jtis := make([]string, n)
	bodies := make([][]byte, n)
	for i, it := range items {
		jtis[i], bodies[i] = r.prefix+strconv.Itoa(first+i), it.Body
	}
	watch := bench.StartCPUWatch()
	res, err := bench.Drain(ctx, f.poll, jtis, bodies, benchPollStall, r.stderr, "poll")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	others, _ := watch.Others()
	r.record(first, res.Outcomes)
	r.rep.Poll = &bench.PollReport{
		MaxEvents: benchPollMaxEvents, Queued: n, SETs: res.Acked, Reported: res.Reported,
		Seconds: res.Elapsed.Seconds(), SETsPerSec: res.Rate(), EventsPerSec: res.Rate() * float64(r.o.events),
		OtherCPUCores: others,
	}
	if err != nil {
		r.rep.Poll.Error = err.Error()
	}
	return nil
}

// startBenchGateway starts the gateway for the fleet like demo does:
// embedded NATS in dir, loopback random ports, one issuer per transmitter.
func startBenchGateway(ctx context.Context, f *benchFleet, events int, dir string, vars map[string]string, stderr io.Writer) (*localGateway, error) {
	s, err := benchSettings(vars, dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	app, err := NewApp(ctx, s, benchIssuers(f.push, f.pollI, f.poll, events), newLogger(s, stderr))
	if err != nil {
		cancel()
		return nil, err
	}
	gw := &localGateway{app: app, s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { gw.done <- app.Run(ctx) }()
	return gw, nil
}

// benchSettings are the gateway's settings: the caller's tuning
// variables, with the bench's own addresses, data directory, embedded
// NATS, no issuers file and no TLS, text logs (at warn unless set).
func benchSettings(vars map[string]string, dir string) (config.Settings, error) {
	s, err := config.Load(vars)
	if err != nil {
		return s, err
	}
	if _, set := vars[config.EnvPrefix+"LOG_LEVEL"]; !set {
		s.LogLevel = "warn"
	}
	s.HTTPAddr, s.AdminAddr, s.EmbeddedNATSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	s.DataDir = filepath.Join(dir, "data")
	s.IssuersFile, s.NATSURL, s.LogFormat = "", "", "text"
	s.TLSCertFile, s.TLSKeyFile, s.TLSClientCAFile = "", "", ""
	return s, s.Validate()
}

// benchIssuers are the gateway's issuers: one push issuer per push
// transmitter, and the poll issuer when there is one.
func benchIssuers(push []*benchIssuer, pollI *benchIssuer, ps *transmitter.PollServer, events int) []config.Issuer {
	var profile verify.Profile
	if events > 1 {
		profile = verify.ProfileRFC8417
	}
	spec := func(is *benchIssuer) config.Issuer {
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
		sp.Poll = &config.Poll{Endpoint: ps.URL(), MaxEvents: benchPollMaxEvents, LongPollTimeout: benchPollHold, Bearer: pollI.bearer}
		specs = append(specs, sp)
	}
	return specs
}

// benchRemote runs the bench against the gateway at --url: ceiling (0) in
// this process, then push; the check reads the stream when NATS is reachable.
func benchRemote(ctx context.Context, o benchOptions, vars map[string]string, stderr io.Writer) (*bench.Report, error) {
	target, err := url.Parse(o.url)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("bench: --url %q is not an http(s) URL", o.url)
	}
	is, err := remoteIssuer(o)
	if err != nil {
		return nil, err
	}
	r := newBenchRun(o, stderr, o.url, is.keys[0].Alg)
	defer r.release()
	r.push = []*benchIssuer{is}
	r.targets = []bench.Target{{URL: target.String(), Bearer: is.bearer}}

	s, err := config.Load(vars)
	if err != nil {
		return nil, err
	}
	var js jetstream.JetStream
	var from uint64
	if o.check {
		nc, err := benchNATS(s, o.natsURL, o.natsPasswordFile)
		if err != nil {
			return nil, err
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return nil, fmt.Errorf("bench: jetstream: %w", err)
		}
		if from, err = bench.NextSeq(ctx, js, s.Stream); err != nil {
			return nil, fmt.Errorf("%w (--check=false skips the check)", err)
		}
	}
	_, seed, err := r.sign(ctx, r.push, benchSeedSETs, "ceiling (0)")
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
	if !o.check {
		r.rep.CheckSkipped = "--check=false"
		return r.rep, nil
	}
	return r.rep, r.check(ctx, js, s.Stream, from, false)
}

// warmUp pushes for a second to open the connections and learn the rate
// that sizes the pool (not with --count, which needs no estimate).
func (r *benchRun) warmUp(ctx context.Context) (float64, error) {
	if r.o.count > 0 {
		return 0, nil
	}
	first, items, err := r.sign(ctx, r.push, benchFirstChunk*2, "the warm-up")
	if err != nil {
		return 0, err
	}
	res, err := bench.Push(ctx, bench.LoadConfig{Targets: r.targets, Concurrency: r.o.concurrency, Duration: benchWarmUpDuration}, items)
	if err != nil {
		return 0, fmt.Errorf("bench: warm-up: %w", err)
	}
	r.record(first, res.Outcomes)
	if res.Accepted == 0 {
		return 0, fmt.Errorf("bench: warm-up: no SET accepted by %s (errors: %v)", r.o.url, res.Errors)
	}
	if res.Exhausted {
		return 2 * res.Rate(), nil // a lower bound: the warm-up SETs ran out first
	}
	return res.Rate(), nil
}

// remoteIssuer loads the signing key and bearer token given with --url.
func remoteIssuer(o benchOptions) (*benchIssuer, error) {
	key, err := transmitter.LoadKey(o.keyFile)
	if err != nil {
		return nil, err
	}
	alg, err := transmitter.AlgFor(key, o.alg)
	if err != nil {
		return nil, err
	}
	kid := o.kid
	if kid == "" {
		if _, kid, err = transmitter.PublicJWK(key.Public(), alg, ""); err != nil {
			return nil, err
		}
	}
	is := &benchIssuer{iss: o.iss, aud: o.aud, keys: []bench.Key{{ID: kid, Alg: alg, Signer: key}}}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("bench: --token-file: %w", err)
		}
		is.bearer = strings.TrimSpace(string(b))
	}
	return is, nil
}

// benchNATS connects to the remote gateway's NATS for the check.
func benchNATS(s config.Settings, natsURL, passwordFile string) (*nats.Conn, error) {
	auth, err := bridgeConfig(s).AuthOptions()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	nc, err := consumer.Connect(consumer.Options{Settings: s, URL: natsURL, PasswordFile: passwordFile, Options: append(auth, nats.Name("setgate-bench"))})
	if ce := (*consumer.ConnectError)(nil); errors.As(err, &ce) {
		return nil, fmt.Errorf("bench: connect to NATS at %s for the check: %w%s (--check=false skips it)", ce.URL, ce.Err, ce.Hint)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return nc, nil
}
