package verify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/setgate/setgate/verify"
)

// TestJWKSRedirects: a JWKS fetch follows a redirect only within the same
// https origin; a redirect to another host or to a plain-http loopback
// address is refused and that host receives nothing.
func TestJWKSRedirects(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	body := jwksJSON(t, pubJWK(a))
	tests := []struct {
		name     string
		target   string // "other-https", "other-http", "same"
		wantKeys int
	}{
		{name: "to another https host", target: "other-https"},
		{name: "to loopback http", target: "other-http"},
		{name: "within the same https origin", target: "same", wantKeys: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var otherHits atomic.Int64
			serveKeys := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			})
			var other *httptest.Server
			if tt.target == "other-http" {
				other = httptest.NewServer(serveKeys)
			} else {
				other = httptest.NewTLSServer(serveKeys)
			}
			t.Cleanup(other.Close)
			var src *httptest.Server
			src = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/keys":
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(body)
				case tt.target == "same":
					http.Redirect(w, r, src.URL+"/keys", http.StatusFound)
				default:
					http.Redirect(w, r, other.URL+"/jwks", http.StatusFound)
				}
			}))
			t.Cleanup(src.Close)
			tr := src.Client().Transport.(*http.Transport).Clone()
			if c := other.Certificate(); c != nil {
				tr.TLSClientConfig.RootCAs.AddCert(c)
			}
			v := newVerifier(t, src.URL+"/jwks", func(_ *verify.Config, o *verify.Options) { o.Transport = tr })
			st := v.KeyStatus(context.Background())
			if st.Keys != tt.wantKeys {
				t.Fatalf("want %d keys, got %+v", tt.wantKeys, st)
			}
			if n := otherHits.Load(); n != 0 {
				t.Errorf("want nothing fetched from the other host, got %d requests", n)
			}
			if tt.wantKeys == 0 {
				wantCode(t, v, signES256(t, a), verify.CodeInvalidKey)
				if st.Failures == 0 || !strings.Contains(st.LastError, "30") {
					t.Errorf("want the redirect recorded as a failed fetch, got %+v", st)
				}
				return
			}
			if st.Failures != 0 || st.LastError != "" {
				t.Errorf("want a followed redirect not counted as a failure, got %+v", st)
			}
			wantCode(t, v, signES256(t, a), "")
		})
	}
}
