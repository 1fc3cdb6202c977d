package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// BenchmarkPushHandler is the push receiver's own work per request, as
// setgate serve wires it (router, middleware, metrics, the handler),
// without the network, verification or NATS: the intake answers
// "stored" at once.
func BenchmarkPushHandler(b *testing.B) {
	in := intakeFunc(func(context.Context) (intake.Result, error) { return intake.Result{}, nil })
	metrics := gateway.NewMetrics()
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, Logger: slog.New(slog.DiscardHandler), Metrics: metrics})
	gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("bench-token")}})
	h := gw.Handler()
	body := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 35)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/events/acme", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		req.Header.Set("Authorization", "Bearer bench-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("want 202, got %d", w.Code)
		}
	}
}

// BenchmarkMetricsObserve is the metrics observer's work for one stored
// single-event SET.
func BenchmarkMetricsObserve(b *testing.B) {
	m := gateway.NewMetrics()
	src := &intake.Source{Name: "acme"}
	ev := intake.Event{Source: src, Delivery: intake.DeliveryPush, Outcome: intake.Accepted,
		Result: intake.Result{Subjects: []string{"secevent.caep.session-revoked.acme"}, Sequences: []uint64{1}, SET: &verify.SET{}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(ctx, ev)
	}
}
