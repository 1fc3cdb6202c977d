package transmitter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newSSF(tb testing.TB, path string) *SSFTransmitter {
	tb.Helper()
	s, err := NewSSFTransmitter(SSFOptions{Path: path, Bearer: "mgmt", PollBearer: "tok", PollHold: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// call sends one management request with the bearer and decodes a JSON
// answer into out (if not nil).
func call(tb testing.TB, method, url, bearer string, body any, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = strings.NewReader(string(data))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// claimsOf decodes a compact JWT's claims without verifying it.
func claimsOf(tb testing.TB, token string) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a compact JWS: %q", token)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestSSFDiscoveryLocation(t *testing.T) {
	tests := []struct{ path, wellKnown, issuerSuffix string }{
		{path: "", wellKnown: ".well-known/ssf-configuration", issuerSuffix: "/"},
		{path: "tenant1", wellKnown: ".well-known/ssf-configuration/tenant1", issuerSuffix: "/tenant1"},
	}
	for _, tt := range tests {
		t.Run("path="+tt.path, func(t *testing.T) {
			s := newSSF(t, tt.path)
			if !strings.HasSuffix(s.Issuer(), tt.issuerSuffix) {
				t.Fatalf("issuer: want suffix %q, got %q", tt.issuerSuffix, s.Issuer())
			}
			var meta map[string]any
			if code := call(t, http.MethodGet, s.base+tt.wellKnown, "", nil, &meta); code != http.StatusOK {
				t.Fatalf("discovery: want 200, got %d", code)
			}
			if meta["issuer"] != s.Issuer() || meta["jwks_uri"] != s.JWKSURL() {
				t.Fatalf("metadata: got %v", meta)
			}
		})
	}
}

func TestSSFStreamManagement(t *testing.T) {
	s := newSSF(t, "")
	url := s.ConfigurationEndpoint()
	if code := call(t, http.MethodGet, url, "wrong", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: want 401, got %d", code)
	}
	var created SSFStream
	code := call(t, http.MethodPost, url, "mgmt", map[string]any{"events_requested": []string{SessionRevoked, "urn:x"}}, &created)
	if code != http.StatusCreated || created.Delivery.Method != MethodPoll || created.Delivery.EndpointURL != s.PollServer().URL() {
		t.Fatalf("create without delivery: want 201 poll at the poll server, got %d %+v", code, created)
	}
	if created.Iss != s.Issuer() || created.Aud == "" || len(created.EventsDelivered) != 1 {
		t.Fatalf("transmitter fields: got %+v", created)
	}
	var list []SSFStream
	if code := call(t, http.MethodGet, url, "mgmt", nil, &list); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("list: want one stream, got %d %+v", code, list)
	}
	var patched SSFStream
	code = call(t, http.MethodPatch, url, "mgmt", map[string]any{"stream_id": created.StreamID,
		"delivery": map[string]string{"method": MethodPush, "endpoint_url": "http://127.0.0.1:1/x", "authorization_header": "Bearer p"}}, &patched)
	if code != http.StatusOK || patched.Delivery.Method != MethodPush || patched.Delivery.AuthorizationHeader != "Bearer p" || len(patched.EventsRequested) != 2 {
		t.Fatalf("patch: got %d %+v", code, patched)
	}
	if code := call(t, http.MethodPost, url, "mgmt", map[string]any{"delivery": map[string]string{"method": MethodPush}}, nil); code != http.StatusBadRequest {
		t.Fatalf("push without endpoint_url: want 400, got %d", code)
	}
	if code := call(t, http.MethodDelete, url+"?stream_id="+created.StreamID, "mgmt", nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: want 204, got %d", code)
	}
	if code := call(t, http.MethodGet, url+"?stream_id="+created.StreamID, "mgmt", nil, nil); code != http.StatusNotFound {
		t.Fatalf("read after delete: want 404, got %d", code)
	}
}

// receiver records pushed SETs.
type receiver struct {
	mu    sync.Mutex
	auth  []string
	sets  []string
	srv   *httptest.Server
	gotIt chan struct{}
}

func newReceiver(tb testing.TB) *receiver {
	r := &receiver{gotIt: make(chan struct{}, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.sets = append(r.sets, string(body))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		r.gotIt <- struct{}{}
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) wait(tb testing.TB) (auth, set string) {
	tb.Helper()
	select {
	case <-r.gotIt:
	case <-time.After(30 * time.Second):
		tb.Fatal("nothing pushed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auth[len(r.auth)-1], r.sets[len(r.sets)-1]
}

func TestSSFVerification(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		faults    SSFFaults
		wantState string // "" when no event is expected
		wantCode  int
	}{
		{name: "push", method: MethodPush, wantState: "abc", wantCode: http.StatusNoContent},
		{name: "poll", method: MethodPoll, wantState: "abc", wantCode: http.StatusNoContent},
		{name: "wrong state", method: MethodPush, faults: SSFFaults{WrongState: true}, wantState: "not-abc", wantCode: http.StatusNoContent},
		{name: "rate limited", method: MethodPush, faults: SSFFaults{VerifyRetryAfter: 3 * time.Second}, wantCode: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSSF(t, "")
			r := newReceiver(t)
			id := s.AddStream(SSFDelivery{Method: tt.method, EndpointURL: r.srv.URL, AuthorizationHeader: "Bearer push"}, nil)
			s.SetFaults(tt.faults)
			code := call(t, http.MethodPost, s.base+"ssf/verify", "mgmt", map[string]string{"stream_id": id, "state": "abc"}, nil)
			if code != tt.wantCode {
				t.Fatalf("want %d, got %d", tt.wantCode, code)
			}
			if tt.wantState == "" {
				return
			}
			var token string
			if tt.method == MethodPush {
				var auth string
				auth, token = r.wait(t)
				if auth != "Bearer push" {
					t.Fatalf("authorization: want the stream's header, got %q", auth)
				}
			} else {
				deadline := time.Now().Add(30 * time.Second)
				for s.PollServer().Pending() == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				a := mustPost(t, s.PollServer(), map[string]any{"returnImmediately": true})
				for _, tok := range a.Sets {
					token = tok
				}
			}
			c := claimsOf(t, token)
			ev, _ := c["events"].(map[string]any)[Verification].(map[string]any)
			sub, _ := c["sub_id"].(map[string]any)
			if ev["state"] != tt.wantState || sub["format"] != "opaque" || sub["id"] != id || c["iss"] != s.Issuer() {
				t.Fatalf("verification SET: want state %q about stream %s from %s, got %v", tt.wantState, id, s.Issuer(), c)
			}
		})
	}
}

func TestSSFStreamUpdatedAndPush(t *testing.T) {
	s := newSSF(t, "")
	r := newReceiver(t)
	id := s.AddStream(SSFDelivery{Method: MethodPush, EndpointURL: r.srv.URL}, nil)
	ctx := context.Background()
	if err := s.SendStreamUpdated(ctx, "paused", "maintenance"); err != nil {
		t.Fatal(err)
	}
	_, token := r.wait(t)
	ev := claimsOf(t, token)["events"].(map[string]any)[StreamUpdated].(map[string]any)
	if ev["status"] != "paused" || ev["reason"] != "maintenance" {
		t.Fatalf("stream-updated: got %v", ev)
	}
	var st map[string]string
	if code := call(t, http.MethodGet, s.base+"ssf/status?stream_id="+id, "mgmt", nil, &st); code != http.StatusOK || st["status"] != "paused" {
		t.Fatalf("status: want paused, got %d %v", code, st)
	}
	if err := s.Push(ctx, SessionRevoked, nil, "alice@acme.example"); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Delivered()); n != 1 {
		t.Fatalf("paused stream: want nothing pushed, got %d deliveries", n)
	}
	if err := s.SendStreamUpdated(ctx, "enabled", ""); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if err := s.Push(ctx, SessionRevoked, nil, "alice@acme.example"); err != nil {
		t.Fatal(err)
	}
	_, token = r.wait(t)
	sub := claimsOf(t, token)["sub_id"].(map[string]any)
	if sub["email"] != "alice@acme.example" {
		t.Fatalf("pushed SET subject: got %v", sub)
	}
	if d := s.Delivered(); len(d) != 3 || d[2].Status != http.StatusAccepted {
		t.Fatalf("deliveries: want 3, the last answered 202, got %+v", d)
	}
}
