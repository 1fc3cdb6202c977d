package gateway_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// TestStreamCollector: the stream metrics are what the stats function
// read at scrape time, and absent when it fails. (The stats of a real
// stream are checked in bridge and, through /metrics, in test/.)
func TestStreamCollector(t *testing.T) {
	stats := gateway.StreamStats{
		Bytes: 123456, Messages: 80, MaxBytes: 262144, FirstAge: 90 * time.Second, Discarded: 7,
	}
	var fail error
	reads := 0
	c := gateway.NewStreamCollector(func(context.Context) (gateway.StreamStats, error) {
		reads++
		return stats, fail
	})
	want := map[string]float64{
		"setgate_stream_bytes":                  123456,
		"setgate_stream_messages":               80,
		"setgate_stream_max_bytes":              262144,
		"setgate_stream_first_seq_age_seconds":  90,
		"setgate_stream_discarded_events_total": 7,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if got := gather(t, reg); !maps.Equal(got, want) {
		t.Fatalf("want %v, got %v", want, got)
	}
	if reads != 1 {
		t.Fatalf("want one read per scrape, got %d", reads)
	}

	fail = errors.New("stream info timed out")
	if got := gather(t, reg); len(got) != 0 {
		t.Fatalf("want no stream series when the read fails, got %v", got)
	}

	m := gateway.NewMetrics()
	if err := m.Register(c); err != nil {
		t.Fatalf("register with the gateway's registry: %v", err)
	}
	if err := m.Register(gateway.NewStreamCollector(nil)); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("want a second stream collector refused as already registered, got %v", err)
	}
}

// gather scrapes reg and returns each series' value by family name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.Gauge != nil:
				out[f.GetName()] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[f.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestMetricsObserve: the metrics are an intake observer; each outcome of
// push and poll lands in its series (names and labels as the README
// lists them) and in the issuer's /issuers counters, and a SET refused
// before verification counts like any rejection.
func TestMetricsObserve(t *testing.T) {
	m := gateway.NewMetrics()
	src := &intake.Source{Name: "acme"}
	set := &verify.SET{JTI: "j1", Warnings: []string{"lenient"}}
	stored := intake.Result{Subjects: []string{"secevent.caep.session-revoked.acme", "secevent.risc.account-disabled.acme"}, SET: set, PublishTime: time.Millisecond}
	badKey := &verify.Error{Code: verify.CodeInvalidKey, Description: "Bad key.", JTI: "j2"}
	badKeyAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mismatch := &verify.Error{Code: verify.CodeInvalidRequest, Description: "The map key of this SET does not match its jti claim.", JTI: "j3"}
	for _, ev := range []intake.Event{
		{Source: src, Delivery: intake.DeliveryPush, Outcome: intake.Accepted, Result: stored, SET: set, Elapsed: 2 * time.Millisecond},
		{Source: src, Delivery: intake.DeliveryPoll, Outcome: intake.Duplicate, Result: intake.Result{Duplicate: true, SET: set}, SET: set, Elapsed: time.Millisecond},
		{Source: src, Delivery: intake.DeliveryPush, Outcome: intake.Rejected, Err: badKey, Rejection: badKey, ReceivedAt: badKeyAt.Add(-time.Hour)},
		{Source: src, Delivery: intake.DeliveryPoll, Outcome: intake.Rejected, Err: mismatch, Rejection: mismatch, ReceivedAt: badKeyAt},
		{Source: src, Delivery: intake.DeliveryPush, Outcome: intake.Unavailable, Err: intake.ErrUnavailable, SET: set},
		{Source: src, Delivery: intake.DeliveryPush, Outcome: intake.Failed, Err: errors.New("boom"), SET: set},
	} {
		m.Observe(context.Background(), ev)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`setgate_sets_received_total{delivery="push",issuer="acme"} 4`,
		`setgate_sets_received_total{delivery="poll",issuer="acme"} 2`,
		`setgate_sets_accepted_total{delivery="push",issuer="acme"} 1`,
		`setgate_sets_accepted_total{delivery="poll",issuer="acme"} 1`,
		`setgate_sets_duplicate_total{delivery="poll",issuer="acme"} 1`,
		`setgate_sets_rejected_total{code="invalid_key",delivery="push",issuer="acme"} 1`,
		`setgate_sets_rejected_total{code="invalid_request",delivery="poll",issuer="acme"} 1`,
		`setgate_sets_not_persisted_total{delivery="push",issuer="acme"} 2`,
		`setgate_sets_payload_warnings_total{delivery="push",issuer="acme"} 1`,
		`setgate_sets_payload_warnings_total{delivery="poll",issuer="acme"} 1`,
		`setgate_events_published_total{family="caep",issuer="acme"} 1`,
		`setgate_events_published_total{family="risc",issuer="acme"} 1`,
		`setgate_accept_duration_seconds_count{delivery="push"} 1`,
		`setgate_accept_duration_seconds_count{delivery="poll"} 1`,
		`setgate_publish_duration_seconds_count{delivery="push"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("want series %s", want)
		}
	}

	c := m.Counters("acme")
	want := gateway.IssuerCounters{
		Received:    map[intake.Delivery]uint64{intake.DeliveryPush: 4, intake.DeliveryPoll: 2},
		Accepted:    map[intake.Delivery]uint64{intake.DeliveryPush: 1, intake.DeliveryPoll: 1},
		Duplicates:  map[intake.Delivery]uint64{intake.DeliveryPoll: 1},
		Rejected:    map[verify.Code]uint64{verify.CodeInvalidKey: 1, verify.CodeInvalidRequest: 1},
		Unavailable: 2,
		LastRejection: &gateway.Rejection{
			Code: verify.CodeInvalidRequest, Description: mismatch.Description, JTI: "j3", Delivery: intake.DeliveryPoll, At: badKeyAt,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("want counters %+v, got %+v", want, c)
	}
}
