package ssf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// elsewhere is a host on another origin that records every request.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{"secret-of-elsewhere": true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func originOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host
}

// TestDiscoverForeignOrigins: endpoints the metadata names on another
// origin than the issuer are refused unless allowed; the refusal names
// the endpoint and stream.allowed_origins, and nothing is sent there.
func TestDiscoverForeignOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		faults   func(other string) transmitter.SSFFaults
		endpoint string
	}{
		{name: "management endpoints", endpoint: "configuration_endpoint",
			faults: func(other string) transmitter.SSFFaults { return transmitter.SSFFaults{EndpointsAt: other + "/"} }},
		{name: "jwks_uri", endpoint: "jwks_uri",
			faults: func(string) transmitter.SSFFaults { return transmitter.SSFFaults{DirectJWKS: true} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sx := newSSF(t, "")
			other, hits := elsewhere(t)
			sx.SetFaults(tt.faults(other.URL))
			_, err := ssf.Discover(context.Background(), nil, sx.Issuer())
			if !errors.Is(err, ssf.ErrForeignOrigin) {
				t.Fatalf("want ErrForeignOrigin, got %v", err)
			}
			for _, want := range []string{tt.endpoint, "stream.allowed_origins"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("want the error to name %q, got %v", want, err)
				}
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("want nothing sent to the other origin, got %d requests", n)
			}

			// The operator allows the origin: discovery works.
			foreign := other.URL
			if tt.endpoint == "jwks_uri" {
				foreign = originOf(sx.Transmitter().JWKSURL())
			}
			allowed, err := ssf.ParseAllowedOrigins([]string{foreign})
			if err != nil {
				t.Fatal(err)
			}
			meta, err := ssf.Discover(context.Background(), nil, sx.Issuer(), ssf.DiscoverOptions{AllowedOrigins: allowed})
			if err != nil {
				t.Fatalf("with allowed_origins: %v", err)
			}
			if tt.endpoint == "jwks_uri" {
				if meta.JWKSURI != sx.Transmitter().JWKSURL() {
					t.Errorf("want jwks_uri %q, got %q", sx.Transmitter().JWKSURL(), meta.JWKSURI)
				}
				// An issuer that sets jwks_uri itself does not use the
				// metadata's, so its origin does not matter.
				if _, err := ssf.Discover(context.Background(), nil, sx.Issuer(), ssf.DiscoverOptions{JWKSConfigured: true}); err != nil {
					t.Errorf("with jwks_uri configured: %v", err)
				}
			}
		})
	}
}

// TestManagerForeignPollEndpoint: a poll stream whose endpoint_url is on
// another origin is refused unless allowed.
func TestManagerForeignPollEndpoint(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "allowed"}[allow], func(t *testing.T) {
			t.Parallel()
			sx := newSSF(t, "")
			sx.SetFaults(transmitter.SSFFaults{DirectPoll: true})
			var allowed []string
			if allow {
				var err error
				if allowed, err = ssf.ParseAllowedOrigins([]string{originOf(sx.DirectPollURL())}); err != nil {
					t.Fatal(err)
				}
			}
			meta, err := ssf.Discover(context.Background(), nil, sx.Issuer())
			if err != nil {
				t.Fatal(err)
			}
			m, err := ssf.NewManager(ssf.ManagerConfig{
				Issuer: sx.Issuer(), Delivery: ssf.DeliveryPoll, EventsRequested: []string{supported1},
				States: verify.NewStates(nil), Client: ssf.New(meta, poller.BearerToken(mgmtToken), nil, nil),
				AllowedOrigins: allowed,
			})
			if err != nil {
				t.Fatal(err)
			}
			st, err := m.Ensure(context.Background())
			if allow {
				if err != nil {
					t.Fatalf("want the stream set up, got %v", err)
				}
				if originOf(st.Delivery.EndpointURL) == originOf(sx.Issuer()) {
					t.Fatalf("want the poll endpoint on the other origin, got %q", st.Delivery.EndpointURL)
				}
				return
			}
			if !errors.Is(err, ssf.ErrForeignOrigin) || !strings.Contains(err.Error(), "poll endpoint_url") {
				t.Fatalf("want ErrForeignOrigin naming the poll endpoint_url, got %v", err)
			}
			if s := m.Status(); s.Healthy || !strings.Contains(s.HealthReason, "stream.allowed_origins") {
				t.Errorf("want the stream unhealthy with the reason, got %+v", s)
			}
		})
	}
}

func TestParseAllowedOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "https://tx.example", want: "https://tx.example:443"},
		{in: "https://TX.example:8443/", want: "https://tx.example:8443"},
		{in: "http://127.0.0.1:9000", want: "http://127.0.0.1:9000"},
		{in: "http://tx.example", wantErr: "must use https"},
		{in: "https://tx.example/ssf", wantErr: "not an origin"},
		{in: "https://user@tx.example", wantErr: "not an origin"},
		{in: "https://tx.example?x=1", wantErr: "not an origin"},
		{in: "tx.example", wantErr: "absolute URL"},
	}
	for _, tt := range tests {
		got, err := ssf.ParseAllowedOrigins([]string{tt.in})
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "[0]: ") {
				t.Errorf("%q: want an error with %q, got %v", tt.in, tt.wantErr, err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case len(got) != 1 || got[0] != tt.want:
			t.Errorf("%q: want %q, got %q", tt.in, tt.want, got)
		}
	}
}
