package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/cmd/setgate/bench"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/consumer"
)

// benchVerb runs "setgate bench": it measures the push path (and the poll
// path) of an in-process gateway, or of a remote one with --url, and
// checks afterwards that the stream holds exactly the acknowledged SETs.
func benchVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stdout)
	if err != nil {
		return err
	}
	if o.Floor != "" {
		return runFloor(ctx, o, stderr)
	}
	var rep *bench.Report
	if o.URL != "" {
		rep, err = benchRemote(ctx, o, vars, stderr)
	} else {
		rep, err = bench.RunLocal(ctx, o, func(ctx context.Context, specs []config.Issuer) (bench.Gateway, error) {
			return startBenchGateway(ctx, specs, vars, stderr)
		}, stderr)
	}
	if err != nil {
		return err
	}
	if err := writeBenchReport(rep, o.JSON, stdout); err != nil {
		return err
	}
	if rep.Check != nil && !rep.Check.Passed {
		return errors.New("bench: correctness check failed: the stream does not hold exactly the acknowledged SETs")
	}
	return nil
}

// parseBenchFlags parses and checks the flags.
func parseBenchFlags(args []string, stdout io.Writer) (bench.Options, error) {
	var o bench.Options
	fs := newVerbFlagSet("bench", "[flags]", stdout,
		"Measure the push path (RFC 8935) and the poll path (RFC 8936): start an in-process gateway\n"+
			"with embedded NATS and loopback transmitters (or target one with --url), pre-sign SETs\n"+
			"(signing is not measured), drive the gateway, measure ceilings on the same machine and\n"+
			"NATS (ceiling (0), plain golang-jwt parse+verify, also with --url), and check that the stream holds exactly the acknowledged SETs (exit status 1 if not).\n"+
			"In-process, the SETGATE_* tuning variables apply (publish timeout, max concurrent,\n"+
			"embedded sync, …); addresses, data directory, NATS and TLS are the bench's own.",
		"PUBLISH_TIMEOUT", "MAX_CONCURRENT", "DUPLICATE_WINDOW", "EMBEDDED_SYNC", "LOG_LEVEL", "NATS_URL", "STREAM")
	fs.StringVar(&o.Mode, "mode", "", "push, poll or both (default both; push with --url)")
	fs.StringVar(&o.Alg, "alg", "", "ES256, RS256 or EdDSA (default ES256; with --url: from the key)")
	fs.IntVar(&o.Issuers, "issuers", 2, "issuers, each with its own transmitter and JWKS; load is spread over them and the memory line shows what starting with them cost")
	fs.IntVar(&o.Keys, "keys", 1, "signing keys per issuer (all in its JWKS; SETs rotate over them)")
	fs.IntVar(&o.Events, "events", 1, "events per SET, 1 to 4 (more than 1: issuers use the rfc8417 profile)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent keep-alive push connections, and ceiling (b) goroutines")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the push run")
	fs.IntVar(&o.Count, "count", 0, "push (and poll) exactly this many SETs instead of running for --duration")
	fs.Float64Var(&o.Rate, "rate", 0, "push at this many SETs/s, open loop (latency counts from each SET's due time); 0: as fast as possible")
	fs.DurationVar(&o.Ceiling, "ceiling-duration", 3*time.Second, "length of each ceiling measurement")
	fs.BoolVar(&o.Short, "short", false, "CI size: 500 SETs pushed and polled, a 1s verify ceiling and a 500-SET publish ceiling")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object instead of the text report")
	fs.StringVar(&o.URL, "url", "", "push endpoint of a running gateway (e.g. https://setgate.example.com/events/acme)")
	fs.StringVar(&o.KeyFile, "key", "", "with --url: PEM private key the issuer publishes (see setgate send --gen-key)")
	fs.StringVar(&o.KID, "kid", "", "with --url: key id (default: the key's RFC 7638 thumbprint)")
	fs.StringVar(&o.Iss, "iss", "", "with --url: iss claim, as in the gateway's issuers file")
	fs.StringVar(&o.Aud, "aud", "", "with --url: aud claim")
	fs.StringVar(&o.TokenFile, "token-file", "", "with --url: file holding the push bearer token")
	fs.StringVar(&o.NATSURL, "nats", "", "with --url: NATS of the gateway, for the check (default $SETGATE_NATS_URL, else nats://$SETGATE_EMBEDDED_NATS_ADDR)")
	fs.StringVar(&o.NATSPasswordFile, "password-file", "", "with --url: log in to the gateway's embedded NATS as user consumer with this password file (default as setgate tail)")
	fs.StringVar(&o.MetricsURL, "metrics-url", "", "with --url: the gateway's admin /metrics (e.g. http://127.0.0.1:9090/metrics); its process_resident_memory_bytes is read when the push run starts, every --metrics-every and at the end")
	fs.DurationVar(&o.MetricsEvery, "metrics-every", time.Minute, "with --metrics-url: time between two readings of the gateway's RSS")
	fs.StringVar(&o.Floor, "floor", "", "run the floor server at this address instead of measuring (with --key): it answers every POST whose SET verifies like ceiling (0) with 202, nothing stored; measure it with --url --check=false")
	fs.DurationVar(&o.FloorCPU, "floor-cpu", 0, "with --floor: CPU to spend per SET on top of verification (e.g. the gateway's CPU per SET)")
	floorVerify := fs.Bool("floor-verify", true, "with --floor: verify each SET (--floor-verify=false, without --key: answer every POST 202 unverified, what HTTP alone costs)")
	fs.BoolVar(&o.Check, "check", true, "with --url: read the stream afterwards (--check=false skips the correctness check)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return o, err
	}
	if len(pos) > 0 {
		fs.Usage()
		return o, fmt.Errorf("bench: unexpected argument %q", pos[0])
	}
	o.FloorNoVerify = !*floorVerify
	return o, o.Normalize()
}

// runFloor serves the floor server of o.Floor until ctx is done
// ([bench.Floor]), saying on stderr where and what it does.
func runFloor(ctx context.Context, o bench.Options, stderr io.Writer) error {
	f, err := bench.NewFloor(o.KeyFile, o.Alg, o.FloorCPU)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.Floor)
	if err != nil {
		return fmt.Errorf("bench: --floor: %w", err)
	}
	verifies := f.Alg() + " verification with golang-jwt"
	if f.Alg() == "" {
		verifies = "no verification"
	}
	fmt.Fprintf(stderr, "setgate bench: floor server at http://%s/ (any path): %s, then %d spin units (--floor-cpu %s) per SET; nothing is stored; Ctrl-C stops it\n",
		l.Addr(), verifies, f.Spins(), o.FloorCPU)
	return f.Serve(ctx, l)
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

// benchGateway is the in-process gateway of a bench run: an App on
// loopback ports with its data in a temporary directory.
type benchGateway struct {
	app     *App
	dir     string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

func (g *benchGateway) PushURL() string                { return g.app.PushURL() }
func (g *benchGateway) JetStream() jetstream.JetStream { return g.app.Bridge().JetStream() }
func (g *benchGateway) Stream() string                 { return g.app.Settings().Stream }
func (g *benchGateway) Sync() string                   { return g.app.Settings().EmbeddedSync }
func (g *benchGateway) Publisher() intake.Publisher    { return g.app.Bridge() }
func (g *benchGateway) Logger() *slog.Logger           { return g.app.log }
func (g *benchGateway) Issuers() int                   { return g.app.Issuers().Len() }
func (g *benchGateway) Source(name string) *intake.Source {
	if li := g.app.Issuers().Get(name); li != nil {
		return li.Source()
	}
	return nil
}

// Stop shuts the gateway down (once), removes its data and returns how
// it ended.
func (g *benchGateway) Stop() error {
	if !g.stopped {
		g.stopped = true
		g.cancel()
		g.err = <-g.done
		_ = os.RemoveAll(g.dir)
	}
	return g.err
}

// startBenchGateway starts the gateway for the bench's issuers like demo
// does: embedded NATS in a temporary directory, loopback random ports.
func startBenchGateway(ctx context.Context, specs []config.Issuer, vars map[string]string, stderr io.Writer) (*benchGateway, error) {
	dir, err := os.MkdirTemp("", "setgate-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	s, err := benchSettings(vars, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	app, err := NewApp(ctx, s, specs, newLogger(s, stderr))
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, err
	}
	gw := &benchGateway{app: app, dir: dir, cancel: cancel, done: make(chan error, 1)}
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

// benchRemote runs the bench against the gateway at --url; the check
// logs in to its NATS as setgate tail does.
func benchRemote(ctx context.Context, o bench.Options, vars map[string]string, stderr io.Writer) (*bench.Report, error) {
	s, err := config.Load(vars)
	if err != nil {
		return nil, err
	}
	return bench.RunRemote(ctx, o, func(context.Context) (jetstream.JetStream, string, func(), error) {
		nc, err := benchNATS(s, o.NATSURL, o.NATSPasswordFile)
		if err != nil {
			return nil, "", nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, "", nil, fmt.Errorf("bench: jetstream: %w", err)
		}
		return js, s.Stream, nc.Close, nil
	}, stderr)
}

// benchNATS connects to the remote gateway's NATS for the check.
func benchNATS(s config.Settings, natsURL, passwordFile string) (*nats.Conn, error) {
	cfg, err := bridgeConfig(s)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	auth, err := cfg.AuthOptions()
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
