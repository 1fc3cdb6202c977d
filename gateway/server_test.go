package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
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

func (b *blockingIntake) Accept(ctx context.Context, _ *intake.Source, _ []byte, _ intake.Delivery) (intake.Result, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return intake.Result{}, b.err
}

// Reject is never called by the push handler.
func (b *blockingIntake) Reject(context.Context, *intake.Source, *verify.Error, intake.Delivery) {}

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

// pushAsync sends the complete push "x.y.z" of acme (bearer tok) to
// srvURL from a goroutine; the channel gets its status (0 on an error,
// reported to t).
func pushAsync(t *testing.T, srvURL string) <-chan int {
	code := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srvURL+"/events/acme", strings.NewReader("x.y.z"))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			code <- 0
			return
		}
		resp.Body.Close()
		code <- resp.StatusCode
	}()
	return code
}

func TestConcurrencyLimit429(t *testing.T) {
	in := &blockingIntake{entered: make(chan struct{}, 4), release: make(chan struct{})}
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, MaxConcurrent: 2, Logger: slog.New(slog.DiscardHandler)})
	gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	codes := []<-chan int{pushAsync(t, srv.URL), pushAsync(t, srv.URL)}
	<-in.entered
	<-in.entered
	resp := push(t, srv.URL+"/events/acme", "tok", "application/secevent+jwt", "x.y.z")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("want 429 with Retry-After, got %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(in.release)
	for _, ch := range codes {
		if c := <-ch; c != http.StatusAccepted {
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
			gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
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
	gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
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

// TestRateLimit429: an issuer with push.rate_limit gets 429 with a
// Retry-After from its limiter once its burst is spent; unauthenticated
// requests spend nothing, and other issuers are not limited.
func TestRateLimit429(t *testing.T) {
	in := &blockingIntake{entered: make(chan struct{}, 16), release: make(chan struct{})}
	close(in.release)
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
	gw.SetIssuers([]gateway.Issuer{
		{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok"), RateLimit: rate.Every(time.Hour), Burst: 2},
		{Source: &intake.Source{Name: "globex"}, Push: gateway.NewCredential("gtok")},
	})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	steps := []struct {
		name, issuer, token string
		want                int
	}{
		{"wrong token spends nothing", "acme", "bad", http.StatusUnauthorized},
		{"other issuer's token spends nothing", "acme", "gtok", http.StatusForbidden},
		{"burst 1", "acme", "tok", http.StatusAccepted},
		{"burst 2", "acme", "tok", http.StatusAccepted},
		{"over the limit", "acme", "tok", http.StatusTooManyRequests},
		{"still over", "acme", "tok", http.StatusTooManyRequests},
		{"unlimited issuer", "globex", "gtok", http.StatusAccepted},
	}
	for _, st := range steps {
		resp := push(t, srv.URL+"/events/"+st.issuer, st.token, "application/secevent+jwt", "x.y.z")
		if resp.StatusCode != st.want {
			t.Fatalf("%s: want %d, got %d", st.name, st.want, resp.StatusCode)
		}
		if st.want != http.StatusTooManyRequests {
			continue
		}
		if !resp.Close {
			t.Errorf("%s: want Connection: close on a 429 answered before the body is read", st.name)
		}
		// One token an hour: the next is 3600 s away, give or take the
		// time this test took so far.
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 3000 || ra > 3600 {
			t.Fatalf("%s: want Retry-After near 3600 seconds, got %q", st.name, resp.Header.Get("Retry-After"))
		}
	}
}
