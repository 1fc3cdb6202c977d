package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/cmd/setgate/bench"
	"github.com/setgate/setgate/config"
)

// lookup follows a dotted path through decoded JSON objects.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestBenchShort is the bench's CI mode: an in-process gateway, 500 SETs
// pushed and 500 polled, short ceilings, and the correctness check. Speed
// is reported, never asserted.
func TestBenchShort(t *testing.T) {
	var out, errOut verbBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"bench", "--short", "--json"}, map[string]string{}, &out, &errOut); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	var raw any
	if err := json.Unmarshal([]byte(out.String()), &raw); err != nil {
		t.Fatalf("want one JSON object, got %v:\n%s", err, out.String())
	}
	for _, f := range []string{
		"alg", "issuers", "concurrency", "gomaxprocs",
		"ceiling_plain_jwt.sets_per_sec", "ceiling_verify.sets_per_sec", "ceiling_verify_publish.sets_per_sec",
		"push.sets", "push.sets_per_sec", "push.events_per_sec",
		"push.latency_ms.p50", "push.latency_ms.p90", "push.latency_ms.p99", "push.latency_ms.max",
		"push.errors", "push.cpu_seconds", "push.peak_rss_mb", "push.jwks_fetches",
		"poll.sets", "poll.sets_per_sec",
		"ratios.push_to_ceiling_plain_jwt", "ratios.ceiling_verify_to_ceiling_plain_jwt",
		"ratios.push_to_ceiling_verify", "ratios.push_to_ceiling_verify_publish", "ratios.poll_to_push",
		"check.passed", "check.acknowledged", "check.messages",
	} {
		if _, ok := lookup(raw, f); !ok {
			t.Errorf("JSON report lacks %s", f)
		}
	}

	var rep bench.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Check == nil || !rep.Check.Passed {
		t.Fatalf("want the correctness check passed, got %+v", rep.Check)
	}
	// 500 pushed + 500 polled + what ceiling (b) accepted, one event each.
	// Ceiling (b) is bounded in time in --short mode, so on a loaded
	// machine it may accept fewer than 500: count what it reported.
	want := 1000
	if rep.PublishCeiling != nil {
		want += rep.PublishCeiling.SETs
	}
	if rep.Check.Acked != want || rep.Check.Messages != want {
		t.Errorf("want %d SETs acknowledged and stored, got %d and %d", want, rep.Check.Acked, rep.Check.Messages)
	}
	if rep.Push == nil || rep.Push.SETs != 500 || rep.Push.Latency.N != 500 || len(rep.Push.Errors) != 0 {
		t.Errorf("want 500 SETs pushed without errors, got %+v", rep.Push)
	}
	if rep.Poll == nil || rep.Poll.SETs != 500 {
		t.Errorf("want 500 SETs polled, got %+v", rep.Poll)
	}
	if rep.Push != nil && rep.Push.JWKSFetches != 0 {
		t.Errorf("want no JWKS fetch during the run, got %d", rep.Push.JWKSFetches)
	}
}

// TestBenchIssuersEvents runs the sizing forms the README shows
// (setgate bench --mode push --short --issuers N, and --events 4): the
// load spread over several issuers, four events per SET, the memory line
// reported and the check passed.
func TestBenchIssuersEvents(t *testing.T) {
	var out, errOut verbBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"bench", "--mode", "push", "--short", "--issuers", "3", "--events", "4", "--json"}
	if err := run(ctx, args, map[string]string{}, &out, &errOut); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("want one JSON object, got %v:\n%s", err, out.String())
	}
	if rep.Issuers != 3 || rep.EventsPerSET != 4 {
		t.Errorf("want 3 issuers and 4 events per SET, got %d and %d", rep.Issuers, rep.EventsPerSET)
	}
	if rep.Memory == nil || rep.Memory.Issuers != 3 || rep.Memory.RSSAfterMB <= 0 {
		t.Errorf("want a memory line for 3 issuers, got %+v", rep.Memory)
	}
	if rep.Check == nil || !rep.Check.Passed {
		t.Fatalf("want the correctness check passed, got %+v", rep.Check)
	}
	if rep.Check.Messages != 4*rep.Check.Acked {
		t.Errorf("want 4 messages per acknowledged SET, got %d for %d", rep.Check.Messages, rep.Check.Acked)
	}
}

// TestBenchRemote drives a gateway started apart, as --url does for a
// deployed one: one key file, an issuer configured for it, and the check
// reading only the messages stored after the bench started.
func TestBenchRemote(t *testing.T) {
	keyPath, tokenFile, issuers := verbKeyIssuer(t)
	app := serveTest(t, nil, map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": issuers,
	})
	pushURL := app.PushURL() + "/events/acme"
	// Something stored before the bench, which its check must leave out.
	if err := sendVerb(t.Context(), []string{"--to", pushURL, "--key", keyPath, "--token-file", tokenFile,
		"--iss", "https://tx.example/", "--aud", verbAudience, "--email", "bob@acme.example"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	var out, errOut verbBuffer
	args := []string{"bench", "--url", pushURL, "--key", keyPath, "--iss", "https://tx.example/", "--aud", verbAudience,
		"--token-file", tokenFile, "--nats", app.NATSURL(), "--password-file", app.ConsumerPasswordFile(), "--count", "300", "--concurrency", "8", "--json"}
	if err := run(t.Context(), args, map[string]string{}, &out, &errOut); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Check == nil || !rep.Check.Passed || rep.Check.Acked != 300 || rep.Check.Messages != 300 {
		t.Fatalf("want the check passed over 300 SETs, got %+v", rep.Check)
	}
	if rep.Push == nil || rep.Push.SETs != 300 || rep.VerifyCeiling != nil || rep.Poll != nil || rep.Mode != "push" {
		t.Errorf("want 300 SETs pushed and nothing else measured, got %+v", rep)
	}
	if c := rep.PlainCeiling; c == nil || c.SETs == 0 || c.Errors != 0 || rep.Ratios.PushToPlain == nil {
		t.Errorf("want ceiling (0) measured without errors and push / ceiling (0) given, got %+v, %+v", c, rep.Ratios)
	}
}

// TestBenchFloor: "bench --floor" serves the floor server (verifying, or
// with --floor-verify=false not) until it is stopped, and "bench --url …
// --check=false" measures it like a gateway: every pushed SET is answered
// 202.
func TestBenchFloor(t *testing.T) {
	keyPath, _ := verbGenKey(t)
	tests := []struct {
		name  string
		flags []string
		says  string
	}{
		{"verifying", []string{"--key", keyPath, "--floor-cpu", "10µs"}, "ES256 verification with golang-jwt"},
		{"unverified", []string{"--floor-verify=false"}, "no verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var errOut verbBuffer
			stopped := make(chan error, 1)
			go func() {
				stopped <- run(ctx, append([]string{"bench", "--floor", "127.0.0.1:0"}, tt.flags...), map[string]string{}, io.Discard, &errOut)
			}()
			addr := regexp.MustCompile(`floor server at (http://[0-9.:]+)/ \(any path\): ([^,]+),`)
			verbWaitUntil(t, "the floor server to start", func() bool {
				select {
				case err := <-stopped:
					t.Fatalf("the floor server stopped early: %v\n%s", err, errOut.String())
				default:
				}
				return addr.MatchString(errOut.String())
			})
			m := addr.FindStringSubmatch(errOut.String())
			if m[2] != tt.says {
				t.Errorf("want the floor to say %q, got %q", tt.says, m[2])
			}

			var out verbBuffer
			args := []string{"bench", "--url", m[1] + "/events/acme", "--key", keyPath, "--iss", "https://tx.example/", "--check=false",
				"--count", "200", "--concurrency", "4", "--ceiling-duration", "100ms", "--json"}
			if err := run(t.Context(), args, map[string]string{}, &out, io.Discard); err != nil {
				t.Fatalf("bench against the floor: %v\n%s", err, out.String())
			}
			var rep bench.Report
			if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Push == nil || rep.Push.SETs != 200 || len(rep.Push.Errors) != 0 {
				t.Errorf("want 200 SETs accepted by the floor, got %+v", rep.Push)
			}
			cancel()
			if err := <-stopped; err != nil {
				t.Errorf("want the floor server to stop cleanly, got %v", err)
			}
		})
	}
}

// TestBenchMetricsURL: with --metrics-url the remote run reads the
// gateway's resident set from its admin /metrics when the push run starts,
// every --metrics-every and at the end, and reports the readings in the
// JSON report and as a table in the text report.
func TestBenchMetricsURL(t *testing.T) {
	keyPath, tokenFile, issuers := verbKeyIssuer(t)
	app := serveTest(t, nil, map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": issuers,
	})
	metricsURL := "http://" + app.adminLn.Addr().String() + "/metrics"
	args := []string{"bench", "--url", app.pushURL + "/events/acme", "--key", keyPath, "--iss", "https://tx.example/", "--aud", verbAudience,
		"--token-file", tokenFile, "--nats", app.br.ClientURL(), "--password-file", app.br.ConsumerPasswordFile(), "--count", "200", "--concurrency", "4",
		"--metrics-url", metricsURL, "--metrics-every", "5ms"}

	for _, asJSON := range []bool{true, false} {
		var out, errOut verbBuffer
		if err := run(t.Context(), append(args, "--json="+strconv.FormatBool(asJSON)), map[string]string{}, &out, &errOut); err != nil {
			t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		}
		if !asJSON {
			for _, want := range []string{"gateway RSS", "process_resident_memory_bytes from " + metricsURL, "minute", "RSS MB"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("want %q in the text report, got:\n%s", want, out.String())
				}
			}
			continue
		}
		var rep bench.Report
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			t.Fatal(err)
		}
		g := rep.GatewayRSS
		// One reading at the start and one at the end at least; how many
		// ticks fall in between depends on the machine's speed.
		if g == nil || len(g.Samples) < 2 || g.URL != metricsURL || g.IntervalSeconds != 0.005 {
			t.Fatalf("want at least two readings of %s every 5ms, got %+v", metricsURL, g)
		}
		var maxMB float64
		for i, x := range g.Samples {
			if x.Error != "" || x.RSSMB <= 0 {
				t.Errorf("reading %d: want a resident set, got %+v", i, x)
			}
			if i > 0 && x.Seconds < g.Samples[i-1].Seconds {
				t.Errorf("reading %d: want readings in order, got %v after %v", i, x.Seconds, g.Samples[i-1].Seconds)
			}
			if math.Abs(x.Minute-x.Seconds/60) > 1e-9 {
				t.Errorf("reading %d: want minute = seconds / 60, got %v and %v", i, x.Minute, x.Seconds)
			}
			maxMB = max(maxMB, x.RSSMB)
		}
		if g.MaxMB != maxMB {
			t.Errorf("want max %v, got %v", maxMB, g.MaxMB)
		}
		if rep.Check == nil || !rep.Check.Passed {
			t.Errorf("want the check passed, got %+v", rep.Check)
		}
	}
}

// serveTest runs serve with vars until the test ends and returns its App
// once started; log nil discards the log.
func serveTest(tb testing.TB, log *slog.Logger, vars map[string]string) *App {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := config.Load(vars)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *App, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, s, vars, log, func(a *App) { ready <- a }) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	select {
	case app := <-ready:
		return app
	case err := <-done:
		tb.Fatalf("serve: %v", err)
		return nil
	}
}

func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown mode", []string{"--mode", "fast"}, `--mode "fast"`},
		{"unknown alg", []string{"--alg", "HS256"}, `--alg "HS256"`},
		{"too many events", []string{"--events", "5"}, "--events must be 1 to 4"},
		{"no issuers", []string{"--issuers", "0"}, "must be positive"},
		{"url without key", []string{"--url", "http://127.0.0.1:1/events/a"}, "--url needs --key and --iss"},
		{"url with poll", []string{"--url", "http://127.0.0.1:1/events/a", "--mode", "both"}, "--url measures push only"},
		{"key without url", []string{"--key", "k.pem"}, "go with --url"},
		{"metrics without url", []string{"--metrics-url", "http://127.0.0.1:9090/metrics"}, "go with --url"},
		{"metrics not http", []string{"--url", "http://127.0.0.1:1/events/a", "--key", "k.pem", "--iss", "x", "--metrics-url", "127.0.0.1:9090"}, "--metrics-url \"127.0.0.1:9090\" is not an http(s) URL"},
		{"metrics every zero", []string{"--metrics-every", "0s"}, "--metrics-every must be positive"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
		{"floor without key", []string{"--floor", "127.0.0.1:0"}, "--floor needs --key"},
		{"floor with url", []string{"--floor", "127.0.0.1:0", "--url", "http://127.0.0.1:1/events/a"}, "--floor runs the floor server"},
		{"floor-cpu without floor", []string{"--floor-cpu", "1ms"}, "--floor-cpu and --floor-verify go with --floor"},
		{"floor-verify without floor", []string{"--floor-verify=false"}, "--floor-cpu and --floor-verify go with --floor"},
		{"unverified floor with key", []string{"--floor", "127.0.0.1:0", "--floor-verify=false", "--key", "k.pem"}, "drop --key"},
		{"negative floor-cpu", []string{"--floor", "127.0.0.1:0", "--key", "k.pem", "--floor-cpu", "-1ms"}, "--floor-cpu must not be negative"},
		{"floor with iss", []string{"--floor", "127.0.0.1:0", "--key", "k.pem", "--iss", "x"}, "go with --url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), append([]string{"bench"}, tt.args...), map[string]string{}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
