package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/setgate/setgate/poller"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
	if err := poller.BearerToken("s3cret").Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("want %q, got %q", "Bearer s3cret", got)
	}
}

// tokenServer is an OAuth 2.0 token endpoint for the client credentials
// grant that issues tok-1, tok-2, … to client "setgate" with secret "pw".
func tokenServer(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	var issued atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok || id != "setgate" || secret != "pw" ||
			r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "ssf.read" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": fmt.Sprintf("tok-%d", issued.Add(1)), "token_type": "Bearer", "expires_in": 3600,
		})
	}))
	tb.Cleanup(srv.Close)
	return srv, &issued
}

func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	ts, issued := tokenServer(t)
	r.ps.SetBearer("tok-1")
	cfg := r.config(t)
	cfg.Auth = poller.OAuth2ClientCredentials(clientcredentials.Config{
		ClientID: "setgate", ClientSecret: "pw", TokenURL: ts.URL, Scopes: []string{"ssf.read"},
	})
	_, stop := start(t, cfg, r.br)

	first := r.enqueue(t, 3)
	allAcked(t, r.ps, first)
	checkFor(t, func() error {
		if n := len(r.ps.Requests()); n < 4 {
			return fmt.Errorf("want 4 requests, got %d", n)
		}
		return nil
	})
	if n := issued.Load(); n != 1 {
		t.Errorf("want one token for every request, got %d fetched", n)
	}

	// The transmitter revokes tok-1: a 401, then a fresh token.
	r.ps.SetBearer("tok-2")
	second := r.enqueue(t, 3)
	allAcked(t, r.ps, second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := issued.Load(); n != 2 {
		t.Errorf("want a second token after the 401, got %d fetched", n)
	}
	saw401 := false
	for _, req := range r.ps.Requests() {
		saw401 = saw401 || req.Status == http.StatusUnauthorized
	}
	if !saw401 {
		t.Error("want the transmitter to have answered 401 to the revoked token")
	}
}

func TestOAuth2TokenFailure(t *testing.T) {
	t.Parallel()
	ts, _ := tokenServer(t)
	auth := poller.OAuth2ClientCredentials(clientcredentials.Config{ClientID: "setgate", ClientSecret: "wrong", TokenURL: ts.URL})
	req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
	if err := auth.Authorize(context.Background(), req); err == nil {
		t.Fatal("want an error from a refused client")
	}
	if got := req.Header.Get("Authorization"); got != "" {
		t.Errorf("want no Authorization header, got %q", got)
	}
}
