package issuers

import (
	"context"

	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/verify"
)

// State reports every running issuer for /issuers and the state metrics,
// sorted by name: its configuration without secrets (what discovery
// filled in included), JWKS cache, SSF discovery error, stream, poll loop
// and counters. It takes no lock a build or a swap holds.
func (l *Set) State(ctx context.Context) []gateway.IssuerState {
	var out []gateway.IssuerState
	for _, li := range l.cur.Load().sorted {
		cfg := li.spec.Verify
		var jwks verify.KeyStatus
		if li.verifier != nil {
			cfg, jwks = li.verifier.Config(), li.verifier.KeyStatus(ctx)
		}
		is := gateway.IssuerState{
			Name: li.spec.Name, Issuer: cfg.Issuer, Audience: cfg.Audience, JWKSURI: cfg.JWKSURI,
			Algorithms: cfg.Algorithms, Profile: cfg.Profile, PayloadValidation: "strict",
			Push: li.spec.PushToken != "", JWKS: jwks,
		}
		if l.counters != nil {
			is.Counters = l.counters(li.spec.Name)
		}
		if e, _ := li.discoveryErr.Load().(string); e != "" {
			is.DiscoveryError = e
		}
		if cfg.Lenient {
			is.PayloadValidation = "lenient"
		}
		if ms, ok := li.Stream(); ok {
			is.Stream = &gateway.StreamState{Healthy: ms.Healthy, Status: ms.Status, Detail: ms}
		}
		if loop := li.loop.Load(); loop != nil {
			p := loop.Status()
			is.Poll = &p
		}
		out = append(out, is)
	}
	return out
}
