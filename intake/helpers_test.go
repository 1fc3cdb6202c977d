package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// rig is the intake pipeline on real parts: an in-process nats-server with
// JetStream in a temp dir, the bridge as publisher, a transmitter with a
// real JWKS and a verifier for it.
type rig struct {
	tx   *transmitter.Transmitter
	br   *bridge.Bridge
	src  *intake.Source
	logs *lockedWriter
	log  *slog.Logger
	// announced receives the bodies published on setgate.rejected.acme.
	announced chan bridge.Rejection
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	return newRigMaxPayload(tb, 0)
}

// newRigMaxPayload is newRig with the NATS server's max_payload set to
// maxPayload (0: the server's default, 1 MiB).
func newRigMaxPayload(tb testing.TB, maxPayload int32) *rig {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	r := &rig{logs: &lockedWriter{w: &bytes.Buffer{}}, announced: make(chan bridge.Rejection, 16)}
	r.log = slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.br, err = bridge.Open(context.Background(), bridge.Config{
		URL: srv.ClientURL(), Stream: "SECEVENTS", SubjectPrefix: "secevent", StreamManage: true, StreamReplicas: 1,
		DuplicateWindow: time.Hour, PublishTimeout: 5 * time.Second,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.br.Close(context.Background()) })

	sub, err := r.br.Conn().Subscribe(bridge.RejectionSubject("acme"), func(m *nats.Msg) {
		var rej bridge.Rejection
		if err := json.Unmarshal(m.Data, &rej); err != nil {
			tb.Errorf("rejection body %q: %v", m.Data, err)
			return
		}
		r.announced <- rej
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.br.Conn().Flush(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })

	r.tx, err = transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.tx.Close() })
	v, err := verify.New(context.Background(), verify.Config{
		Name: "acme", Issuer: r.tx.Issuer(), Audience: []string{r.tx.Audience()}, JWKSURI: r.tx.JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	r.src = &intake.Source{Name: "acme", Verifier: v}
	return r
}

// set signs one session-revoked SET and returns its jti and token.
func (r *rig) set(tb testing.TB) (jti string, token []byte) {
	tb.Helper()
	jti, tok, err := r.tx.SET(transmitter.SessionRevoked, nil, "alice@acme.example")
	if err != nil {
		tb.Fatal(err)
	}
	return jti, []byte(tok)
}

// hangGuard only stops a hung test; it asserts nothing about speed.
const hangGuard = 20 * time.Second

// nextAnnounced waits for the next rejection announced on
// setgate.rejected.acme.
func (r *rig) nextAnnounced(tb testing.TB) bridge.Rejection {
	tb.Helper()
	select {
	case rej := <-r.announced:
		return rej
	case <-time.After(hangGuard):
		tb.Fatal("no rejection announced")
		return bridge.Rejection{}
	}
}

// logLines returns the records logged with message msg.
func (r *rig) logLines(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	r.logs.mu.Lock()
	all := bytes.Clone(r.logs.w.Bytes())
	r.logs.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(all, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// recorder is an observer that keeps every event, tagged with its name,
// in the order observers were called.
type recorder struct {
	mu     sync.Mutex
	events []tagged
}

type tagged struct {
	by string
	ev intake.Event
}

func (rec *recorder) as(name string) intake.Observer {
	return intake.ObserverFunc(func(_ context.Context, ev intake.Event) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.events = append(rec.events, tagged{name, ev})
	})
}

func (rec *recorder) take() []tagged {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.events
	rec.events = nil
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
