package verify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

func validConfig() verify.Config {
	return verify.Config{
		Name:       "acme",
		Issuer:     "https://idp.acme.example/",
		Audience:   []string{testAudience},
		JWKSURI:    "https://idp.acme.example/jwks",
		Algorithms: []string{"RS256", "ES256"},
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(c *verify.Config)
		wantField string // "" means valid
	}{
		{name: "valid", mutate: func(*verify.Config) {}},
		{name: "every supported algorithm", mutate: func(c *verify.Config) { c.Algorithms = verify.SupportedAlgorithms() }},
		{name: "loopback http issuer and jwks_uri", mutate: func(c *verify.Config) {
			c.Issuer = "http://127.0.0.1:8443/"
			c.JWKSURI = "http://localhost:8443/jwks"
		}},
		{name: "IPv6 loopback http jwks_uri", mutate: func(c *verify.Config) { c.JWKSURI = "http://[::1]:8443/jwks" }},
		{name: "rfc8417 issuer need not be a URL", mutate: func(c *verify.Config) {
			c.Profile = verify.ProfileRFC8417
			c.Issuer = "acme-idp"
		}},
		{name: "explicit ssf profile", mutate: func(c *verify.Config) { c.Profile = verify.ProfileSSF }},
		{name: "lenient with skew", mutate: func(c *verify.Config) { c.Lenient, c.MaxClockSkew = true, time.Minute }},

		{name: "missing issuer", mutate: func(c *verify.Config) { c.Issuer = "" }, wantField: "issuer"},
		{name: "http non-loopback issuer", mutate: func(c *verify.Config) { c.Issuer = "http://idp.acme.example/" }, wantField: "issuer"},
		{name: "relative issuer", mutate: func(c *verify.Config) { c.Issuer = "/idp" }, wantField: "issuer"},
		{name: "ftp issuer", mutate: func(c *verify.Config) { c.Issuer = "ftp://idp.acme.example/" }, wantField: "issuer"},
		{name: "missing audience", mutate: func(c *verify.Config) { c.Audience = nil }, wantField: "audience"},
		{name: "empty audience value", mutate: func(c *verify.Config) { c.Audience = []string{testAudience, ""} }, wantField: "audience"},
		{name: "missing jwks_uri", mutate: func(c *verify.Config) { c.JWKSURI = "" }, wantField: "jwks_uri"},
		{name: "http non-loopback jwks_uri", mutate: func(c *verify.Config) { c.JWKSURI = "http://idp.acme.example/jwks" }, wantField: "jwks_uri"},
		{name: "http jwks_uri on a loopback-looking name", mutate: func(c *verify.Config) { c.JWKSURI = "http://127.0.0.1.evil.example/jwks" }, wantField: "jwks_uri"},
		{name: "jwks_uri not a URL", mutate: func(c *verify.Config) { c.JWKSURI = "://jwks" }, wantField: "jwks_uri"},
		{name: "empty algorithms", mutate: func(c *verify.Config) { c.Algorithms = nil }, wantField: "algorithms"},
		{name: "none", mutate: func(c *verify.Config) { c.Algorithms = []string{"RS256", "none"} }, wantField: "algorithms"},
		{name: "HS256", mutate: func(c *verify.Config) { c.Algorithms = []string{"HS256"} }, wantField: "algorithms"},
		{name: "unknown alg", mutate: func(c *verify.Config) { c.Algorithms = []string{"RS1"} }, wantField: "algorithms"},
		{name: "lower-case alg", mutate: func(c *verify.Config) { c.Algorithms = []string{"rs256"} }, wantField: "algorithms"},
		{name: "bad profile", mutate: func(c *verify.Config) { c.Profile = "caep" }, wantField: "profile"},
		{name: "negative skew", mutate: func(c *verify.Config) { c.MaxClockSkew = -time.Second }, wantField: "max_clock_skew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var fe *verify.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want *FieldError for %q, got %v (%T)", tt.wantField, err, err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("want field %q, got %q (%v)", tt.wantField, fe.Field, fe)
			}
			if fe.Msg == "" {
				t.Errorf("want a message for field %q", fe.Field)
			}

			// New refuses the same configuration, still as a *FieldError.
			_, err = verify.New(context.Background(), c, verify.Options{})
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("New: want *FieldError %q, got %v", tt.wantField, err)
			}
		})
	}
}

// TestNewDefaults: New fills in the profile and clock skew.
func TestNewDefaults(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	v := newVerifier(t, srv.URL, nil)
	c := v.Config()
	if c.Profile != verify.ProfileSSF || c.MaxClockSkew != verify.DefaultClockSkew {
		t.Errorf("want profile %q and skew %s, got %q and %s", verify.ProfileSSF, verify.DefaultClockSkew, c.Profile, c.MaxClockSkew)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	e := &verify.Error{Code: verify.CodeInvalidKey, Description: "Bad key.", Err: errors.New("cause")}
	wrapped := errors.Join(errors.New("context"), e)
	if got := verify.ErrorCode(wrapped); got != verify.CodeInvalidKey {
		t.Errorf("want %q, got %q", verify.CodeInvalidKey, got)
	}
	if got := verify.ErrorCode(errors.New("plain")); got != "" {
		t.Errorf("want no code, got %q", got)
	}
	if got := verify.ErrorCode(nil); got != "" {
		t.Errorf("want no code for nil, got %q", got)
	}
	if !errors.Is(e, e.Err) {
		t.Errorf("want the cause unwrapped")
	}
	if want := "verify: invalid_key: Bad key.: cause"; e.Error() != want {
		t.Errorf("want %q, got %q", want, e.Error())
	}
}
