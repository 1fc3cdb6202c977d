package outbound_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/outbound"
)

// counter is a server that counts the requests it received.
func counter(t *testing.T, tls bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte("other host"))
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, &n
}

// redirector answers /start with a redirect to target(srv) and /end with "ok".
func redirector(t *testing.T, tls bool, code int, target func(self *httptest.Server) string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/end" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Location", target(srv))
		w.WriteHeader(code)
	})
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rule      outbound.Redirects
		tls       bool
		sameHost  bool
		code      int
		wantFollo bool
	}{
		{name: "refuse: other host, 307 POST", rule: outbound.RefuseRedirects, tls: true, code: http.StatusTemporaryRedirect},
		{name: "refuse: same origin", rule: outbound.RefuseRedirects, tls: true, sameHost: true, code: http.StatusFound},
		{name: "same origin mode: other host", rule: outbound.SameOrigin, tls: true, code: http.StatusFound},
		{name: "same origin mode: other host, 308", rule: outbound.SameOrigin, tls: true, code: http.StatusPermanentRedirect},
		{name: "same origin mode: same https origin", rule: outbound.SameOrigin, tls: true, sameHost: true, code: http.StatusFound, wantFollo: true},
		{name: "same origin mode: same origin over plain http", rule: outbound.SameOrigin, sameHost: true, code: http.StatusFound},
		{name: "same origin mode: https to loopback http", rule: outbound.SameOrigin, tls: true, code: http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			other, hits := counter(t, tt.tls && !strings.Contains(tt.name, "loopback http"))
			src := redirector(t, tt.tls, tt.code, func(self *httptest.Server) string {
				if tt.sameHost {
					return self.URL + "/end"
				}
				return other.URL + "/steal"
			})
			p := outbound.Policy{Redirects: tt.rule, Transport: src.Client().Transport}
			if tt.tls && !tt.sameHost && other.Certificate() != nil {
				// One TLS config that trusts both test servers.
				tr := src.Client().Transport.(*http.Transport).Clone()
				tr.TLSClientConfig.RootCAs.AddCert(other.Certificate())
				p.Transport = tr
			}
			resp, err := p.Client().Post(src.URL+"/start", "application/x-www-form-urlencoded", strings.NewReader("client_secret=s3cret"))
			if tt.wantFollo {
				if err != nil {
					t.Fatalf("want the redirect followed, got %v", err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if string(body) != "ok" {
					t.Errorf("want %q, got %q", "ok", body)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("want the redirect refused, got status %d", resp.StatusCode)
			}
			if !errors.Is(err, outbound.ErrRedirectRefused) {
				t.Errorf("want ErrRedirectRefused, got %v", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the request body: %v", err)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("want nothing sent to the other host, got %d requests", n)
			}
		})
	}
}

func TestMaxRedirectsSameOrigin(t *testing.T) {
	t.Parallel()
	srv := redirector(t, true, http.StatusFound, func(self *httptest.Server) string { return self.URL + "/again" })
	p := outbound.Policy{Redirects: outbound.SameOrigin, Transport: srv.Client().Transport}
	_, err := p.Client().Get(srv.URL + "/start")
	if !errors.Is(err, outbound.ErrRedirectRefused) {
		t.Fatalf("want ErrRedirectRefused after %d redirects, got %v", outbound.MaxRedirects, err)
	}
}

func TestMaxBytes(t *testing.T) {
	t.Parallel()
	const limit = 1000
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{name: "exactly the limit", size: limit},
		{name: "one byte over", size: limit + 1, wantErr: true},
		{name: "far over", size: 10 * limit, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(bytes.Repeat([]byte("x"), tt.size))
			}))
			t.Cleanup(srv.Close)
			p := outbound.Policy{MaxBytes: limit}
			resp, err := p.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if tt.wantErr {
				if !errors.Is(err, outbound.ErrTooLarge) {
					t.Fatalf("want ErrTooLarge, got %v (%d bytes)", err, len(body))
				}
				if len(body) > limit {
					t.Errorf("want at most %d bytes handed out, got %d", limit, len(body))
				}
				return
			}
			if err != nil || len(body) != tt.size {
				t.Fatalf("want %d bytes, got %d, %v", tt.size, len(body), err)
			}
			// ReadAll applies the same cap to any reader.
			if _, err := p.ReadAll(strings.NewReader(strings.Repeat("y", tt.size))); err != nil {
				t.Errorf("ReadAll: %v", err)
			}
		})
	}
	p := outbound.Policy{MaxBytes: limit}
	if _, err := p.ReadAll(strings.NewReader(strings.Repeat("y", limit+1))); !errors.Is(err, outbound.ErrTooLarge) {
		t.Errorf("ReadAll: want ErrTooLarge, got %v", err)
	}
}

// TestTimeout: a server that never answers is given up by the client's
// own timeout; no deadline on the request context is needed.
func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "no headers", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}},
		{name: "body never ends", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[`))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}},
	}
	t.Cleanup(func() { close(release) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			p := outbound.Policy{Timeout: 50 * time.Millisecond}
			resp, err := p.Client().Get(srv.URL)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("want a timeout, got %v", err)
			}
		})
	}
}

func TestZeroPolicyDefaults(t *testing.T) {
	t.Parallel()
	c := outbound.Policy{}.Client()
	if c.Timeout != outbound.DefaultTimeout {
		t.Errorf("want timeout %v, got %v", outbound.DefaultTimeout, c.Timeout)
	}
	if c.CheckRedirect == nil {
		t.Error("want a redirect check")
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"https://tx.example/a", "https://TX.example:443/b", true},
		{"https://tx.example", "http://tx.example", false},
		{"https://tx.example", "https://tx.example:8443", false},
		{"https://tx.example", "https://evil.example", false},
		{"http://127.0.0.1:80/x", "http://127.0.0.1/y", true},
		{"https://[::1]:8443/", "https://[::1]:8443/z", true},
		{"/relative", "/relative", false},
	}
	for _, tt := range tests {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := outbound.OriginsMatch(a, b); got != tt.same {
			t.Errorf("OriginsMatch(%q, %q): want %v, got %v", tt.a, tt.b, tt.same, got)
		}
	}
}
