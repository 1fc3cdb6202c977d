package gateway_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/verify"
)

// TestStateCollectorSkippedKeys: setgate_jwks_keys_skipped_total has a
// series for every issuer and reason, zero when nothing was skipped.
func TestStateCollectorSkippedKeys(t *testing.T) {
	state := func(context.Context) gateway.State {
		return gateway.State{Issuers: []gateway.IssuerState{
			{Name: "acme", JWKS: verify.KeyStatus{SkippedTotal: map[verify.SkipReason]int64{
				verify.SkipPrivateMember: 2, verify.SkipUnparsable: 1,
			}}},
			{Name: "globex"},
		}}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(gateway.NewStateCollector(state))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "setgate_jwks_keys_skipped_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var issuer, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "issuer":
					issuer = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			got[issuer+"/"+reason] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{}
	for _, issuer := range []string{"acme", "globex"} {
		for _, r := range verify.SkipReasons() {
			want[issuer+"/"+string(r)] = 0
		}
	}
	want["acme/private_member"], want["acme/unparsable"] = 2, 1
	if len(got) != len(want) {
		t.Errorf("want %d series, got %d: %v", len(want), len(got), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: want %v, got %v (present %v)", k, v, g, ok)
		}
	}
}
