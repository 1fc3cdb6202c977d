package ssf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller/ssf"
)

func TestWellKnownURL(t *testing.T) {
	tests := []struct {
		name, issuer, want string
		wantErr            bool
	}{
		{name: "host only", issuer: "https://tr.example.com", want: "https://tr.example.com/.well-known/ssf-configuration"},
		{name: "host and slash", issuer: "https://tr.example.com/", want: "https://tr.example.com/.well-known/ssf-configuration"},
		{name: "path", issuer: "https://tr.example.com/issuer1", want: "https://tr.example.com/.well-known/ssf-configuration/issuer1"},
		{name: "path and slash", issuer: "https://tr.example.com/issuer1/", want: "https://tr.example.com/.well-known/ssf-configuration/issuer1"},
		{name: "deep path and port", issuer: "https://tr.example.com:8443/a/b", want: "https://tr.example.com:8443/.well-known/ssf-configuration/a/b"},
		{name: "loopback http", issuer: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080/.well-known/ssf-configuration"},
		{name: "query", issuer: "https://tr.example.com/?a=b", wantErr: true},
		{name: "fragment", issuer: "https://tr.example.com/#x", wantErr: true},
		{name: "relative", issuer: "/issuer1", wantErr: true},
		{name: "plain http", issuer: "http://tr.example.com/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ssf.WellKnownURL(tt.issuer)
			if (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, got %v", tt.wantErr, err)
			}
			if got != tt.want {
				t.Fatalf("want %q, got %q", tt.want, got)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	for _, path := range []string{"", "tenants/acme"} {
		t.Run("path="+path, func(t *testing.T) {
			sx := newSSF(t, path)
			meta, err := ssf.Discover(context.Background(), nil, sx.Issuer())
			if err != nil {
				t.Fatal(err)
			}
			if path != "" && !strings.HasSuffix(sx.Issuer(), "/"+path) {
				t.Fatalf("issuer %q does not end with the path", sx.Issuer())
			}
			if meta.Issuer != sx.Issuer() {
				t.Errorf("issuer: want %q, got %q", sx.Issuer(), meta.Issuer)
			}
			if meta.JWKSURI != sx.JWKSURL() {
				t.Errorf("jwks_uri: want %q, got %q", sx.JWKSURL(), meta.JWKSURI)
			}
			if meta.ConfigurationEndpoint != sx.ConfigurationEndpoint() {
				t.Errorf("configuration_endpoint: want %q, got %q", sx.ConfigurationEndpoint(), meta.ConfigurationEndpoint)
			}
			if meta.StatusEndpoint == "" || meta.VerificationEndpoint == "" {
				t.Errorf("status and verification endpoints: want both, got %q and %q", meta.StatusEndpoint, meta.VerificationEndpoint)
			}
			if meta.SpecVersion != "1_0" || meta.DefaultSubjects != "ALL" {
				t.Errorf("spec_version, default_subjects: want 1_0, ALL, got %q, %q", meta.SpecVersion, meta.DefaultSubjects)
			}
			if !meta.SupportsDelivery(ssf.MethodPush) || !meta.SupportsDelivery(ssf.MethodPoll) || meta.SupportsDelivery("urn:example:other") {
				t.Errorf("delivery methods: got %v", meta.DeliveryMethodsSupported)
			}
			if len(meta.AuthorizationSchemes) != 1 || meta.AuthorizationSchemes[0].SpecURN != "urn:ietf:rfc:6749" {
				t.Errorf("authorization_schemes: got %+v", meta.AuthorizationSchemes)
			}
		})
	}
}

func TestDiscoverFailures(t *testing.T) {
	tests := []struct {
		name     string
		faults   transmitter.SSFFaults
		issuer   func(sx *transmitter.SSFTransmitter) string // default sx.Issuer()
		wantErr  error
		wantCode int
		wantMsg  string
	}{
		{name: "issuer mismatch", faults: transmitter.SSFFaults{DiscoveryIssuer: "https://other.example/"},
			wantErr: ssf.ErrIssuerMismatch, wantMsg: `issuer mismatch: metadata says "https://other.example/"`},
		{name: "issuer differs by a trailing slash", issuer: func(sx *transmitter.SSFTransmitter) string { return strings.TrimSuffix(sx.Issuer(), "/") },
			wantErr: ssf.ErrIssuerMismatch, wantMsg: "metadata says"},
		{name: "missing jwks_uri", faults: transmitter.SSFFaults{NoJWKSURI: true}, wantErr: ssf.ErrNoJWKSURI, wantMsg: "jwks_uri is missing"},
		{name: "404", faults: transmitter.SSFFaults{DiscoveryStatus: http.StatusNotFound}, wantCode: http.StatusNotFound, wantMsg: "404 Not Found"},
		{name: "500", faults: transmitter.SSFFaults{DiscoveryStatus: http.StatusInternalServerError}, wantCode: http.StatusInternalServerError},
		{name: "bad JSON", faults: transmitter.SSFFaults{DiscoveryBadJSON: true}, wantErr: ssf.ErrBadMetadata},
		{name: "http endpoint on a non-loopback host", faults: transmitter.SSFFaults{InsecureEndpoint: true},
			wantErr: ssf.ErrInsecureEndpoint, wantMsg: `configuration_endpoint "http://ssf.example.com/ssf/stream" must use https`},
		{name: "issuer path not served", issuer: func(sx *transmitter.SSFTransmitter) string { return sx.Issuer() + "elsewhere" },
			wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sx := newSSF(t, "")
			sx.SetFaults(tt.faults)
			issuer := sx.Issuer()
			if tt.issuer != nil {
				issuer = tt.issuer(sx)
			}
			meta, err := ssf.Discover(context.Background(), nil, issuer)
			if err == nil {
				t.Fatalf("want an error, got metadata %+v", meta)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("want %v, got %v", tt.wantErr, err)
			}
			if tt.wantCode != 0 {
				var he *ssf.HTTPError
				if !errors.As(err, &he) || he.Status != tt.wantCode {
					t.Errorf("want an HTTPError with status %d, got %v", tt.wantCode, err)
				}
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("want the message to contain %q, got %q", tt.wantMsg, err)
			}
			if !strings.HasPrefix(err.Error(), "ssf: ") {
				t.Errorf("want the package prefix, got %q", err)
			}
		})
	}
}

// TestDiscoverLimits covers answers the test transmitter cannot give: too
// large, not an object, a redirect.
func TestDiscoverLimits(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
		wantMsg string
	}{
		{name: "larger than 1 MiB", handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("a", ssf.MaxBodyBytes) + `"}`))
		}, wantErr: ssf.ErrBadMetadata, wantMsg: "larger than"},
		{name: "array", handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[]`)) }, wantErr: ssf.ErrBadMetadata},
		{name: "wrong member type", handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"issuer": 7}`))
		}, wantErr: ssf.ErrBadMetadata},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		}, wantMsg: "redirect refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			_, err := ssf.Discover(context.Background(), nil, srv.URL+"/")
			if err == nil {
				t.Fatal("want an error, got none")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("want %v, got %v", tt.wantErr, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("want the message to contain %q, got %q", tt.wantMsg, err)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error message not truncated: %d bytes", len(err.Error()))
			}
		})
	}
}
