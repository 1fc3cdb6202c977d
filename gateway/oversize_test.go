package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// TestPushTooLargeForNATS: a pushed SET within SETGATE_MAX_BODY_BYTES
// whose message exceeds the NATS server's max_payload (8 KiB here, a body
// limit of 64 KiB: what the startup check of serve refuses, so only
// reachable when the server's limit shrinks after the start, or for SETs
// beyond the size bound) is answered 413 invalid_request like an
// oversized body, never 503: the rejection is announced on
// setgate.rejected.acme and counted as rejected, nothing is stored, and
// the next normal SET gets 202.
func TestPushTooLargeForNATS(t *testing.T) {
	const maxPayload = 8 << 10
	ctx := context.Background()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	br, err := bridge.Open(ctx, bridge.Config{
		URL: srv.ClientURL(), Stream: "SECEVENTS", SubjectPrefix: "secevent", StreamManage: true, StreamReplicas: 1,
		DuplicateWindow: time.Hour, PublishTimeout: 5 * time.Second,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close(context.Background()) })
	announced, err := br.Conn().SubscribeSync(bridge.RejectionSubject("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	tx, err := transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	v, err := verify.New(ctx, verify.Config{
		Name: "acme", Issuer: tx.Issuer(), Audience: []string{tx.Audience()}, JWKSURI: tx.JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	metrics := gateway.NewMetrics()
	in := intake.New(intake.Config{Publisher: br, Logger: slog.New(slog.DiscardHandler), Observers: []intake.Observer{metrics}})
	gw := gateway.New(gateway.Config{Intake: in, Ready: br.Ready, Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 64 << 10, Metrics: metrics})
	gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme", Verifier: v}, Push: gateway.NewCredential("tok")}})
	hs := httptest.NewServer(gw.Handler())
	t.Cleanup(hs.Close)

	bigJTI, big, err := tx.SET("urn:example:event:big", map[string]any{"blob": strings.Repeat("b", maxPayload)}, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(big) > 64<<10 || len(big) < maxPayload {
		t.Fatalf("the big SET is %d bytes: want it over max_payload and within the body limit", len(big))
	}
	resp := push(t, hs.URL+"/events/acme", "tok", "application/secevent+jwt", big)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var eb struct{ Err, Description string }
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || eb.Err != "invalid_request" ||
		!strings.HasPrefix(eb.Description, "The SET is too large to store (") || !strings.Contains(eb.Description, "the NATS server takes at most 8192") {
		t.Fatalf("want 413 invalid_request naming the max payload, got %d %s", resp.StatusCode, body)
	}
	t.Logf("SET of %d bytes: %d %s", len(big), resp.StatusCode, eb.Description)
	if resp.Header.Get("Retry-After") != "" {
		t.Errorf("want no Retry-After on a refusal, got %q", resp.Header.Get("Retry-After"))
	}
	m, err := announced.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no rejection announced: %v", err)
	}
	var rej bridge.Rejection
	if err := json.Unmarshal(m.Data, &rej); err != nil || rej.JTI != bigJTI || rej.Code != "invalid_request" || rej.Description != eb.Description || rej.Delivery != intake.DeliveryPush {
		t.Fatalf("want the rejection of %s announced, got %+v (%v)", bigJTI, rej, err)
	}
	if c := metrics.Counters("acme"); c.Rejected[verify.CodeInvalidRequest] != 1 || c.Unavailable != 0 {
		t.Errorf("want one rejection counted and nothing unavailable, got %+v", c)
	}
	st, err := br.JetStream().Stream(ctx, "SECEVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("want nothing stored, got %v (%v)", info, err)
	}

	_, small, err := tx.SET(transmitter.SessionRevoked, nil, "bob@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	resp = push(t, hs.URL+"/events/acme", "tok", "application/secevent+jwt", small)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the next SET: want 202, got %d", resp.StatusCode)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("want the next SET stored, got %v (%v)", info, err)
	}
}
