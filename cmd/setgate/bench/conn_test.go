package bench

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// TestPushConnections: the load generator's own HTTP/1.1 client keeps one
// connection per worker across the targets of one origin, over http and
// https, dials again after Connection: close or an answer it will not read
// to the end, and counts each outcome as net/http's client would.
func TestPushConnections(t *testing.T) {
	tests := []struct {
		name      string
		tls       bool
		bodies    []string // cycled over the items
		wantConns func(int64) bool
		wantErrs  map[string]int
		wantOK    int
	}{
		{"keep-alive", false, []string{"ok"}, func(n int64) bool { return n == 2 }, map[string]int{}, 100},
		{"tls keep-alive", true, []string{"ok"}, func(n int64) bool { return n == 2 }, map[string]int{}, 100},
		{"connection close", false, []string{"ok", "close"}, func(n int64) bool { return n >= 50 }, map[string]int{}, 100},
		{"answer too long", false, []string{"ok", "big"}, func(n int64) bool { return n >= 50 }, map[string]int{"transport other": 50}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := pushServer(t, tt.tls)
			var conf *tls.Config
			if tt.tls {
				conf = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			items := make([]Item, 100)
			for i := range items {
				items[i] = Item{Target: i % 2, Body: []byte(tt.bodies[i%len(tt.bodies)])}
			}
			// Two endpoints of one origin, as two issuers of one gateway.
			targets := []Target{{URL: srv.URL + "/events/a", Bearer: "tok"}, {URL: srv.URL + "/events/b?x=1", Bearer: "tok"}}
			res, err := Push(t.Context(), LoadConfig{Targets: targets, Concurrency: 2, TLS: conf}, items)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 100 || res.Accepted != tt.wantOK || len(res.Errors) != len(tt.wantErrs) {
				t.Fatalf("want 100 sent, %d accepted, errors %v; got %d, %d, %v", tt.wantOK, tt.wantErrs, res.Sent, res.Accepted, res.Errors)
			}
			for k, n := range tt.wantErrs {
				if res.Errors[k] != n {
					t.Errorf("want %d × %q, got %v", n, k, res.Errors)
				}
			}
			if n := conns.Load(); !tt.wantConns(n) {
				t.Errorf("got %d connections opened", n)
			}
		})
	}
}

// TestPushBadURL: a target that is not an http or https URL is an error
// before anything is sent.
func TestPushBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x/events/a", "http:///events/a", "://"} {
		if _, err := Push(t.Context(), LoadConfig{Targets: []Target{{URL: u}}, Concurrency: 1}, []Item{{Body: []byte("ok")}}); err == nil {
			t.Errorf("%s: want an error", u)
		}
	}
}
