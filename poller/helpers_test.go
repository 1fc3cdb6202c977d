package poller_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/verify"
)

// Generous bounds on waiting for something that must happen; they only
// stop a hung test and assert nothing about speed.
const (
	waitLong = 30 * time.Second
	tick     = 10 * time.Millisecond
)

const (
	issuerName  = "acme"
	pollBearer  = "poll-secret"
	streamName  = "SECEVENTS"
	emailDomain = "@acme.example"
)

// rig is one issuer's whole poll path with real parts: a transmitter with
// a JWKS on loopback and a poll endpoint, a verifier, and a bridge to a
// NATS server with JetStream.
type rig struct {
	tx  *transmitter.Transmitter
	ps  *transmitter.PollServer
	br  *bridge.Bridge
	in  *intake.Pipeline // verify → publish with br
	src *intake.Source
}

type rigOptions struct {
	// NATSURL selects an external server; empty embeds one.
	NATSURL string
	// Hold is the poll server's long-poll hold (default 200ms).
	Hold time.Duration
}

func newRig(tb testing.TB, o rigOptions) *rig {
	tb.Helper()
	if o.Hold == 0 {
		o.Hold = 200 * time.Millisecond
	}
	tx, err := transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tx.Close() })
	ps, err := transmitter.NewPollServer(transmitter.PollOptions{Bearer: pollBearer, Hold: o.Hold})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ps.Close() })
	v, err := verify.New(context.Background(), verify.Config{
		Name: issuerName, Issuer: tx.Issuer(), Audience: []string{tx.Audience()}, JWKSURI: tx.JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{MinRefreshInterval: time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	r := &rig{tx: tx, ps: ps, src: &intake.Source{Name: issuerName, Verifier: v}}
	r.br = openBridge(tb, o.NATSURL)
	r.in = newPipeline(tb, r.br)
	return r
}

// newPipeline is the intake pipeline publishing with br, as setgate builds
// it (without metrics).
func newPipeline(tb testing.TB, br *bridge.Bridge) *intake.Pipeline {
	return intake.New(intake.Config{Publisher: br, Logger: testLogger(tb)})
}

// openBridge connects to the server at url, or embeds one when url is
// empty, and closes the bridge at the end of the test.
func openBridge(tb testing.TB, url string) *bridge.Bridge {
	tb.Helper()
	cfg := bridge.Config{
		URL: url, Stream: streamName, SubjectPrefix: "secevent", StreamManage: true, StreamReplicas: 1,
		DuplicateWindow: time.Hour, PublishTimeout: time.Second,
	}
	if url == "" {
		cfg.EmbeddedAddr, cfg.DataDir = "127.0.0.1:0", tb.TempDir()
	}
	br, err := bridge.Open(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = br.Close(ctx)
	})
	return br
}

// runServer starts a nats-server with JetStream stored in dir on port
// (-1: any free port); stop it with shutdownServer.
func runServer(tb testing.TB, port int, dir string) *server.Server {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(func() { shutdownServer(srv) })
	return srv
}

func shutdownServer(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// config returns a poll config for the rig with short durations.
func (r *rig) config(tb testing.TB) poller.Config {
	return poller.Config{
		Source:          r.src,
		Endpoint:        r.ps.URL(),
		MaxEvents:       10,
		Auth:            poller.BearerToken(pollBearer),
		LongPollTimeout: 300 * time.Millisecond,
		TimeoutMargin:   300 * time.Millisecond,
		MinBackoff:      5 * time.Millisecond,
		MaxBackoff:      50 * time.Millisecond,
		Logger:          testLogger(tb),
	}
}

// set is one signed SET.
type set struct {
	jti, token, event string
}

// events cycles through three event types and their subjects.
var events = []struct {
	typ, subject string
	payload      map[string]any
}{
	{transmitter.SessionRevoked, "secevent.caep.session-revoked.acme", map[string]any{"initiating_entity": "policy"}},
	{transmitter.CredentialChange, "secevent.caep.credential-change.acme", map[string]any{"credential_type": "password", "change_type": "update"}},
	{transmitter.AccountDisabled, "secevent.risc.account-disabled.acme", map[string]any{"reason": "hijacking"}},
}

// enqueue signs n valid SETs, queues them at the poll server and returns
// them.
func (r *rig) enqueue(tb testing.TB, n int) []set {
	tb.Helper()
	out := make([]set, n)
	for i := range out {
		ev := events[i%len(events)]
		jti, tok, err := r.tx.SET(ev.typ, ev.payload, fmt.Sprintf("user%d%s", i, emailDomain))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = set{jti: jti, token: tok, event: ev.typ}
		r.ps.Enqueue(jti, tok)
	}
	return out
}

// start runs a loop until the test ends or stop is called; stop returns
// Run's result.
func start(tb testing.TB, cfg poller.Config, in intake.Intake) (l *poller.Loop, stop func() error) {
	tb.Helper()
	l, err := poller.New(cfg, in)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitLong):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	tb.Cleanup(func() { _ = stop() })
	return l, stop
}

// stored reads the whole stream and returns, per jti, the subjects of its
// messages.
func stored(tb testing.TB, js jetstream.JetStream) map[string][]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, streamName)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	out := map[string][]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("get msg %d: %v", seq, err)
		}
		if d := m.Header.Get(bridge.HeaderDelivery); d != string(intake.DeliveryPoll) {
			tb.Errorf("msg %d: want delivery %q, got %q", seq, intake.DeliveryPoll, d)
		}
		jti := m.Header.Get(bridge.HeaderJTI)
		out[jti] = append(out[jti], m.Subject)
	}
	return out
}

// checkFor calls f every tick until it returns nil, failing the test with
// f's last error after waitLong.
func checkFor(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", waitLong, err)
		}
		time.Sleep(tick)
	}
}

// allAcked waits until every SET in sets was acknowledged at least once
// and none is pending.
func allAcked(tb testing.TB, ps *transmitter.PollServer, sets []set) {
	tb.Helper()
	checkFor(tb, func() error {
		acked := ps.Acked()
		for _, s := range sets {
			if acked[s.jti] == 0 {
				return fmt.Errorf("%s not acknowledged (%d of %d acknowledged, %d pending)", s.jti, len(acked), len(sets), ps.Pending())
			}
		}
		return nil
	})
}

// checkStoredOnce fails unless every SET in sets is in the stream exactly
// once, on the subject of its event type.
func checkStoredOnce(tb testing.TB, got map[string][]string, sets []set) {
	tb.Helper()
	for _, s := range sets {
		var want string
		for _, ev := range events {
			if ev.typ == s.event {
				want = ev.subject
			}
		}
		if subs := got[s.jti]; len(subs) != 1 || subs[0] != want {
			tb.Errorf("jti %s: want stored once on %q, got %q", s.jti, want, subs)
		}
	}
}

// testLogger writes warnings and errors to the test log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recorder is an injected Sleep that records every wait and returns at
// once (or ctx.Err()).
type recorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (r *recorder) Sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.sleeps = append(r.sleeps, d)
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	// Yield briefly so a failing transmitter is not hammered by a tight
	// loop; the duration asked for is what the test checks.
	time.Sleep(time.Millisecond)
	return ctx.Err()
}

func (r *recorder) all() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

// bearerWith authorizes with the poll bearer and labels the request with
// the replica that sent it.
type bearerWith struct{ replica string }

func (b bearerWith) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+pollBearer)
	req.Header.Set("X-Replica", b.replica)
	return nil
}
