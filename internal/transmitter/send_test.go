package transmitter

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestPushOnceShowsRedirect: a push is answered, never redirected, so
// PushOnce returns the redirect as the answer and sends nothing to where
// it points.
func TestPushOnceShowsRedirect(t *testing.T) {
	var followed atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { followed.Store(true) }))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/secevent+jwt" || r.Header.Get("Authorization") != "Bearer b" {
			t.Errorf("want the SET's content type and the bearer, got %v", r.Header)
		}
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	resp, err := PushOnce(t.Context(), srv.URL, "b", "a.b.c")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusTemporaryRedirect || resp.StatusLine != "307 Temporary Redirect" || resp.Proto != "HTTP/1.1" || followed.Load() {
		t.Errorf("want the 307 as the answer, not followed; got %d %q %q followed=%v", resp.Status, resp.Proto, resp.StatusLine, followed.Load())
	}
}
