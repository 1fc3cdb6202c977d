package gateway_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setgate/setgate/gateway"
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
