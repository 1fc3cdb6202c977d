package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/verify"
)

// blockingIntake holds every Accept until release is closed; it stands in
// for the verify→publish path only where a test needs requests to stay in
// flight (the real path is exercised by the push rig and test/).
type blockingIntake struct {
	entered chan struct{}
	release chan struct{}
	err     error
}

func (b *blockingIntake) Accept(ctx context.Context, _ *bridge.Source, _ []byte, _ bridge.Delivery) (bridge.Result, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return bridge.Result{}, b.err
}

func push(t *testing.T, url, token, ctype, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestConcurrencyLimit429(t *testing.T) {
	in := &blockingIntake{entered: make(chan struct{}, 4), release: make(chan struct{})}
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, MaxConcurrent: 2, Logger: slog.New(slog.DiscardHandler)})
	gw.SetIssuers([]gateway.Issuer{{Source: &bridge.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/events/acme", strings.NewReader("x.y.z"))
			req.Header.Set("Content-Type", "application/secevent+jwt")
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-in.entered
	<-in.entered
	resp := push(t, srv.URL+"/events/acme", "tok", "application/secevent+jwt", "x.y.z")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("want 429 with Retry-After, got %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(in.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("want 202 for the requests in the limit, got %d", c)
		}
	}
}

func TestIntakeErrorsMapToStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantErr    string
	}{
		{"verify error", &verify.Error{Code: verify.CodeInvalidKey, Description: "Bad key."}, 400, "invalid_key"},
		{"wrapped verify error", errors.Join(errors.New("x"), &verify.Error{Code: verify.CodeInvalidState, Description: "No."}), 400, "invalid_state"},
		{"nats unavailable", errors.Join(bridge.ErrUnavailable, errors.New("timeout")), 503, ""},
		{"other", errors.New("boom"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &blockingIntake{entered: make(chan struct{}, 1), release: make(chan struct{}), err: tt.err}
			close(in.release)
			gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
			gw.SetIssuers([]gateway.Issuer{{Source: &bridge.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
			srv := httptest.NewServer(gw.Handler())
			defer srv.Close()
			resp := push(t, srv.URL+"/events/acme", "tok", "application/secevent+jwt", "x.y.z")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("want %d, got %d", tt.wantStatus, resp.StatusCode)
			}
			if tt.wantStatus == 503 && resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			var body struct{ Err, Description string }
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", b, err)
			}
			if body.Err != tt.wantErr || body.Description == "" {
				t.Fatalf("want err %q with a description, got %q", tt.wantErr, b)
			}
			if resp.Header.Get("Content-Language") != "en" || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("want JSON in English, got %v", resp.Header)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	var readyErr error
	gw := gateway.New(gateway.Config{Intake: &blockingIntake{}, Ready: func(context.Context) error { return readyErr }, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(gw.AdminHandler())
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/healthz"); got != 200 {
		t.Fatalf("healthz: want 200, got %d", got)
	}
	if got := get("/readyz"); got != 200 {
		t.Fatalf("readyz: want 200, got %d", got)
	}
	readyErr = errors.New("nats down")
	if got := get("/readyz"); got != 503 {
		t.Fatalf("readyz with NATS down: want 503, got %d", got)
	}
	readyErr = nil
	gw.Drain()
	if got := get("/readyz"); got != 503 {
		t.Fatalf("readyz while draining: want 503, got %d", got)
	}
}

func TestBearerParsing(t *testing.T) {
	gw := gateway.New(gateway.Config{Intake: &blockingIntake{}, Ready: func(context.Context) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
	gw.SetIssuers([]gateway.Issuer{{Source: &bridge.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	for _, h := range []string{"", "tok", "Basic tok", "Bearer", "Bearer ", "Bearer tokx", "Bearer to"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/events/acme", strings.NewReader("x"))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: want 401 with WWW-Authenticate, got %d", h, resp.StatusCode)
		}
	}
}
