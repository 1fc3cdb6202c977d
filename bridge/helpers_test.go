package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/verify"
)

const (
	testIss          = "https://idp.acme.example/"
	sessionRevoked   = caepBase + "session-revoked"
	credentialChange = caepBase + "credential-change"
)

// runServer starts a nats-server with JetStream stored in dir on port (-1:
// any free port) and shuts it down at the end of the test.
func runServer(tb testing.TB, port int, dir string) *server.Server {
	tb.Helper()
	return runServerOpts(tb, &server.Options{Port: port, JetStream: true, StoreDir: dir})
}

// runServerOpts starts a nats-server with opts on the loopback address,
// without signal handlers or logging, and shuts it down at the end of the
// test.
func runServerOpts(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	opts.Host, opts.NoSigs, opts.NoLog = "127.0.0.1", true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// testConfig returns a Config for an external server at url.
func testConfig(url string) Config {
	return Config{
		URL:             url,
		Stream:          "SECEVENTS",
		SubjectPrefix:   "secevent",
		StreamManage:    true,
		StreamReplicas:  1,
		StreamMaxAge:    168 * time.Hour,
		DuplicateWindow: time.Hour,
		PublishTimeout:  5 * time.Second,
		Name:            "setgate-test",
	}
}

// testLogger writes to the test log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openBridge opens a Bridge with cfg and closes it at the end of the test.
func openBridge(tb testing.TB, cfg Config) *Bridge {
	tb.Helper()
	b, err := Open(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return b
}

// testSET returns a verified-looking SET with one event per type.
func testSET(jti string, types ...string) *verify.SET {
	toe := json.Number("1700000000")
	set := &verify.SET{
		Raw:    "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiIxIn0.c2ln",
		Header: verify.Header{Alg: "RS256", Kid: "k1", Typ: "secevent+jwt"},
		Iss:    testIss,
		JTI:    jti,
		IAT:    json.Number("1700000001.5"),
		Aud:    []string{"https://setgate.example.com/"},
		TOE:    &toe,
		TXN:    "txn-1",
		SubID:  json.RawMessage(`{"format":"email","email":"user@acme.example"}`),
	}
	for i, typ := range types {
		set.Events = append(set.Events, verify.Event{
			Type:    typ,
			Payload: json.RawMessage(`{"event_timestamp":1700000000,"n":` + string(rune('0'+i%10)) + `}`),
		})
	}
	return set
}

// checkFor calls f every interval until it returns nil, failing the test
// with f's last error when timeout passes.
func checkFor(tb testing.TB, timeout, interval time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// errNotYet marks a condition that has not happened yet.
var errNotYet = errors.New("not yet")

// serverJS connects to the server at url, closed when the test ends, and
// returns its JetStream context: how a test looks at a stream apart from
// the bridge.
func serverJS(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
