package verify_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

// TestTimeClaims: nbf in the future beyond max_clock_skew and, when
// max_age is set, an iat older than it are invalid_request (RFC 7519
// §4.1.5, README "Keys and time claims"); everything else about time is
// accepted.
func TestTimeClaims(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	now := testNow.Unix()
	skew := int64(verify.DefaultClockSkew / time.Second)
	const day = 24 * 60 * 60
	maxAge := func(d time.Duration) func(*verify.Config) {
		return func(c *verify.Config) { c.MaxAge = d }
	}
	tests := []struct {
		name     string
		cfg      func(*verify.Config)
		claims   []func(map[string]any)
		wantCode verify.Code
		wantDesc string // substring of the description
	}{
		{name: "nbf three years ahead", claims: []func(map[string]any){set("nbf", now+3*365*day)},
			wantCode: verify.CodeInvalidRequest, wantDesc: "nbf is more than 5m0s in the future"},
		{name: "nbf just beyond the skew", claims: []func(map[string]any){set("nbf", now+skew+1)},
			wantCode: verify.CodeInvalidRequest, wantDesc: "not valid yet"},
		{name: "nbf beyond a configured skew", cfg: func(c *verify.Config) { c.MaxClockSkew = 10 * time.Second },
			claims: []func(map[string]any){set("nbf", now+30)}, wantCode: verify.CodeInvalidRequest, wantDesc: "10s"},
		{name: "nbf within the skew", claims: []func(map[string]any){set("nbf", now+skew)}},
		{name: "nbf now", claims: []func(map[string]any){set("nbf", now)}},
		{name: "nbf in the past", claims: []func(map[string]any){set("nbf", now-day)}},
		{name: "nbf with a fraction", claims: []func(map[string]any){set("nbf", json.Number("1749999999.5"))}},
		{name: "nbf not a number", claims: []func(map[string]any){set("nbf", "soon")},
			wantCode: verify.CodeInvalidRequest, wantDesc: "nbf claim is not a number"},
		{name: "nbf far beyond int64 seconds", claims: []func(map[string]any){set("nbf", json.Number("1e19"))},
			wantCode: verify.CodeInvalidRequest, wantDesc: "not valid yet"},
		{name: "nbf under rfc8417", cfg: rfc8417, claims: []func(map[string]any){set("nbf", now+day), set("sub", "s")},
			wantCode: verify.CodeInvalidRequest, wantDesc: "not valid yet"},

		{name: "iat ten years old, max_age off", claims: []func(map[string]any){set("iat", now-10*365*day)}},
		{name: "iat older than max_age", cfg: maxAge(24 * time.Hour), claims: []func(map[string]any){set("iat", now-day-1)},
			wantCode: verify.CodeInvalidRequest, wantDesc: "more than 24h0m0s in the past"},
		{name: "iat ten years old, max_age 1h", cfg: maxAge(time.Hour), claims: []func(map[string]any){set("iat", now-10*365*day)},
			wantCode: verify.CodeInvalidRequest, wantDesc: "too old"},
		{name: "iat exactly max_age old", cfg: maxAge(24 * time.Hour), claims: []func(map[string]any){set("iat", now-day)}},
		{name: "iat within max_age", cfg: maxAge(24 * time.Hour), claims: []func(map[string]any){set("iat", now-60)}},
		{name: "iat slightly in the future with max_age", cfg: maxAge(time.Minute), claims: []func(map[string]any){set("iat", now+30)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, srv.URL, func(c *verify.Config, _ *verify.Options) {
				if tt.cfg != nil {
					tt.cfg(c)
				}
			})
			_, e := wantCode(t, v, tokClaims(tt.claims...)(t), tt.wantCode)
			if e == nil {
				return
			}
			if !strings.Contains(e.Description, tt.wantDesc) {
				t.Errorf("want description containing %q, got %q", tt.wantDesc, e.Description)
			}
			if e.JTI != testJTI {
				t.Errorf("want jti %q on the error, got %q", testJTI, e.JTI)
			}
		})
	}
}

// TestMaxAgeValidate: a negative max_age is a configuration error naming
// the key.
func TestMaxAgeValidate(t *testing.T) {
	t.Parallel()
	c := verify.Config{Issuer: testIssuer, Audience: []string{testAudience}, JWKSURI: "https://idp.example.com/jwks",
		Algorithms: []string{"ES256"}, MaxAge: -time.Second}
	err := c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "max_age: ") {
		t.Fatalf("want a max_age error, got %v", err)
	}
}
