package ssf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// memory is a StreamMemory in process memory; bridge.StreamRecord is the
// NATS KV one (tested in bridge and end to end in test/).
type memory struct {
	mu sync.Mutex
	id string
}

func (m *memory) Recall(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id, nil
}

func (m *memory) Remember(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id = id
	return nil
}

// TestEnsureToleratesDeviations: against each deviation of transmitters
// that exist, a push and a poll stream are set up, the stream is
// remembered, and a restarted manager (same memory, another description so
// it must update) uses the same stream without listing or creating.
func TestEnsureToleratesDeviations(t *testing.T) {
	tests := []struct {
		name   string
		faults transmitter.SSFFaults
	}{
		{name: "list refused", faults: transmitter.SSFFaults{ListRefused: true}},
		{name: "no aud", faults: transmitter.SSFFaults{NoAud: true}},
		{name: "stream_id in query only", faults: transmitter.SSFFaults{StreamIDQueryOnly: true}},
		{name: "per-stream poll token", faults: transmitter.SSFFaults{PerStreamPollToken: true}},
		{name: "all at once", faults: transmitter.SSFFaults{ListRefused: true, NoAud: true, StreamIDQueryOnly: true, PerStreamPollToken: true}},
	}
	for _, tt := range tests {
		for _, delivery := range []string{ssf.DeliveryPush, ssf.DeliveryPoll} {
			t.Run(tt.name+"/"+delivery, func(t *testing.T) {
				ctx := context.Background()
				mem := &memory{}
				r := newRig(t, delivery, func(c *ssf.ManagerConfig) { c.Memory = mem })
				r.sx.SetFaults(tt.faults)
				first, err := r.mgr.Ensure(ctx)
				if err != nil {
					t.Fatalf("Ensure: %v", err)
				}
				if mem.id != first.StreamID || r.mgr.Status().Found != ssf.FoundCreated {
					t.Fatalf("want stream %s created and remembered, got memory %q, found %q", first.StreamID, mem.id, r.mgr.Status().Found)
				}
				wantWarnings := 0
				if tt.faults.NoAud {
					wantWarnings = 1
				}
				if w := r.mgr.Status().Warnings; len(w) != wantWarnings {
					t.Fatalf("want %d warning(s), got %q", wantWarnings, w)
				}
				if tt.faults.PerStreamPollToken && delivery == ssf.DeliveryPoll && !strings.HasPrefix(first.Delivery.AuthorizationHeader, "Bearer ") {
					t.Fatalf("want the per-stream poll token in the stream, got %+v", first.Delivery)
				}

				lists := r.sx.Lists()
				again := r.manager(t, delivery, func(c *ssf.ManagerConfig) { c.Memory, c.Description = mem, "setgate: renamed" })
				second, err := again.Ensure(ctx)
				if err != nil {
					t.Fatalf("Ensure after restart: %v", err)
				}
				if second.StreamID != first.StreamID || len(r.sx.Streams()) != 1 {
					t.Fatalf("want the same stream %s reused, got %s (%d streams)", first.StreamID, second.StreamID, len(r.sx.Streams()))
				}
				if n := r.sx.Lists() - lists; n != 0 {
					t.Fatalf("the remembered stream was found by listing (%d lists)", n)
				}
				if got := r.sx.Streams()[0].Description; got != "setgate: renamed" {
					t.Fatalf("update not applied: description %q", got)
				}
				if again.Status().Found != ssf.FoundRemembered {
					t.Fatalf("found: want remembered, got %q", again.Status().Found)
				}
			})
		}
	}
}

// TestEnsureRemembersVanishedStream: a remembered stream the transmitter
// no longer has is forgotten and a new one created and remembered.
func TestEnsureRemembersVanishedStream(t *testing.T) {
	ctx := context.Background()
	mem := &memory{id: "gone"}
	r := newRig(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) { c.Memory = mem })
	r.sx.SetFaults(transmitter.SSFFaults{ListRefused: true})
	cfg, err := r.mgr.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mem.id != cfg.StreamID || cfg.StreamID == "gone" {
		t.Fatalf("want the new stream remembered, got %q (stream %q)", mem.id, cfg.StreamID)
	}
}

// TestEnsurePinned: stream.stream_id is used as it is, never listed
// around; a pinned stream the transmitter lacks is an error, not a new
// stream.
func TestEnsurePinned(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, ssf.DeliveryPoll, nil)
	other := r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{supported1})
	pinned := r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{supported1})
	r.sx.SetFaults(transmitter.SSFFaults{StreamIDQueryOnly: true})
	m := r.manager(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) { c.StreamID = pinned })
	cfg, err := m.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StreamID != pinned || m.Status().Found != ssf.FoundPinned || r.sx.Lists() != 0 {
		t.Fatalf("want pinned %s without listing (not %s), got %s found %q after %d lists", pinned, other, cfg.StreamID, m.Status().Found, r.sx.Lists())
	}

	missing := r.manager(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) { c.StreamID = "no-such-stream" })
	if _, err := missing.Ensure(ctx); ssf.StatusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "stream.stream_id") {
		t.Fatalf("want a 404 naming stream.stream_id, got %v", err)
	}
	if n := len(r.sx.Streams()); n != 2 {
		t.Fatalf("a missing pinned stream made setgate create one: %d streams", n)
	}
}

// TestEnsureNeverUsesOtherIssuer: a stream whose configuration names
// another iss is never used, whether created, remembered, pinned or
// listed; and setgate creates at most one such stream.
func TestEnsureNeverUsesOtherIssuer(t *testing.T) {
	ctx := context.Background()
	const evil = "https://evil.example/"
	t.Run("created", func(t *testing.T) {
		mem := &memory{}
		r := newRig(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) { c.Memory = mem })
		r.sx.SetFaults(transmitter.SSFFaults{WrongIss: evil})
		for i := range 3 {
			if _, err := r.mgr.Ensure(ctx); !errors.Is(err, ssf.ErrIssuerMismatch) {
				t.Fatalf("Ensure #%d: want an issuer mismatch, got %v", i+1, err)
			}
		}
		if n := len(r.sx.Streams()); n != 1 {
			t.Fatalf("want exactly one stream created, got %d", n)
		}
		if st := r.mgr.Status(); st.StreamID != "" || mem.id != "" || r.v.States().Stream() != "" {
			t.Fatalf("the refused stream is in use: status %q, memory %q", st.StreamID, mem.id)
		}
		if _, err := r.mgr.Verify(ctx); !errors.Is(err, ssf.ErrNoStream) {
			t.Fatalf("Verify: want ErrNoStream, got %v", err)
		}
	})
	for _, how := range []string{"remembered", "pinned", "listed"} {
		t.Run(how, func(t *testing.T) {
			r := newRig(t, ssf.DeliveryPoll, nil)
			id := r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{supported1})
			r.sx.SetFaults(transmitter.SSFFaults{WrongIss: evil, SingleStream: true})
			m := r.manager(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) {
				switch how {
				case "remembered":
					c.Memory = &memory{id: id}
				case "pinned":
					c.StreamID = id
				}
			})
			_, err := m.Ensure(ctx)
			if err == nil {
				t.Fatalf("the stream of another issuer was used: %+v", m.Status())
			}
			if m.Status().StreamID != "" {
				t.Fatalf("status names the stream: %+v", m.Status())
			}
			if n := count(r.sx.Calls(), "POST /ssf/verify") + count(r.sx.Calls(), "GET /ssf/status"); n != 0 {
				t.Fatalf("the stream was used: %v", r.sx.Calls())
			}
		})
	}
}

// TestVerificationOfAnotherStream: a verification event whose sub_id names
// another stream is refused (invalid_request), by push and by poll, and
// confirms nothing.
func TestVerificationOfAnotherStream(t *testing.T) {
	for _, delivery := range []string{ssf.DeliveryPush, ssf.DeliveryPoll} {
		t.Run(delivery, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, delivery, nil)
			if _, err := r.mgr.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			r.sx.SetFaults(transmitter.SSFFaults{VerifyOtherStream: true})
			if _, err := r.mgr.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			var o outcome
			if delivery == ssf.DeliveryPush {
				o = r.gw.waitOutcome(t, rejected)
			} else {
				o = r.gw.pollUntil(t, r.sx.PollServer().URL(), rejected)
			}
			if o.Code != verify.CodeInvalidRequest {
				t.Fatalf("want invalid_request, got %q", o.Code)
			}
			if st := r.mgr.Status(); st.Verification != ssf.VerificationPending {
				t.Fatalf("want the verification still pending, got %q", st.Verification)
			}
			// The same request about the right stream confirms it.
			r.sx.SetFaults(transmitter.SSFFaults{})
			if _, err := r.mgr.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			if delivery == ssf.DeliveryPush {
				r.gw.waitOutcome(t, isType(verify.EventVerification))
			} else {
				r.gw.pollUntil(t, r.sx.PollServer().URL(), isType(verify.EventVerification))
			}
			checkFor(t, func() error {
				if st := r.mgr.Status(); st.Verification != ssf.VerificationConfirmed {
					return fmt.Errorf("verification %q", st.Verification)
				}
				return nil
			})
		})
	}
}

// TestClientRefreshesExpiredToken: an OAuth 2.0 access token that expires
// mid-stream (the transmitter answers 401) is replaced and the call sent
// again, so no call fails and nothing is logged above debug.
func TestClientRefreshesExpiredToken(t *testing.T) {
	var issued atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	t.Cleanup(tokens.Close)
	const iss = "https://tr.example.com/"
	var calls atomic.Int64
	mgmt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the newest token is valid: the first one "expired" at the
		// transmitter before its own expires_in.
		calls.Add(1)
		if r.Header.Get("Authorization") != fmt.Sprintf("Bearer tok-%d", issued.Load()) || issued.Load() < 2 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"stream_id":"s1","status":"enabled"}`))
	}))
	t.Cleanup(mgmt.Close)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	auth, err := poller.NewOAuth2(poller.OAuth2Config{ClientID: "c", ClientSecret: "s", TokenURL: tokens.URL}, poller.OAuth2Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := ssf.New(&ssf.Metadata{Issuer: iss, StatusEndpoint: mgmt.URL + "/status"}, auth, nil, log)
	st, err := c.Status(context.Background(), "s1")
	if err != nil {
		t.Fatalf("want the call to succeed with a new token, got %v", err)
	}
	if st.Status != ssf.StatusEnabled || issued.Load() != 2 || calls.Load() != 2 {
		t.Fatalf("want enabled after 2 tokens and 2 calls, got %+v, %d tokens, %d calls", st, issued.Load(), calls.Load())
	}
	if logs.Len() != 0 {
		t.Fatalf("want nothing logged at info or above, got %s", logs.String())
	}

	// A credential that stays refused is an error after one retry.
	issued.Store(-10)
	if _, err := c.Status(context.Background(), "s1"); ssf.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("want 401 when the new token is refused too, got %v", err)
	}
}

// TestClientSendsStreamIDInQuery: updates and replaces carry stream_id in
// the body and as a query parameter; reads in the query.
func TestClientSendsStreamIDInQuery(t *testing.T) {
	const iss = "https://tr.example.com/"
	type seen struct{ method, query, body string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			StreamID string `json:"stream_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Query().Get("stream_id"), b.StreamID})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"stream_id":"s1","iss":"` + iss + `","status":"paused"}`))
	}))
	t.Cleanup(srv.Close)
	c := ssf.New(&ssf.Metadata{Issuer: iss, ConfigurationEndpoint: srv.URL + "/stream", StatusEndpoint: srv.URL + "/status"}, nil, nil, nil)
	ctx := context.Background()
	if _, err := c.GetStream(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateStream(ctx, ssf.StreamConfig{StreamID: "s1", Description: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReplaceStream(ctx, ssf.StreamConfig{StreamID: "s1", Delivery: ssf.Delivery{Method: ssf.MethodPoll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateStatus(ctx, "s1", ssf.StatusPaused, "maintenance"); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"GET", "s1", ""}, {"PATCH", "s1", "s1"}, {"PUT", "s1", "s1"}, {"POST", "s1", "s1"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("want %v, got %v", want, got)
	}
}

// TestDiscoverRISCConfiguration: a transmitter that publishes its
// metadata only at /.well-known/risc-configuration is discovered there;
// one that publishes neither is a 404 naming the SSF location.
func TestDiscoverRISCConfiguration(t *testing.T) {
	for _, path := range []string{"", "tenant1"} {
		sx := newSSF(t, path)
		sx.SetFaults(transmitter.SSFFaults{RISCOnly: true})
		meta, err := ssf.Discover(context.Background(), nil, sx.Issuer())
		if err != nil {
			t.Fatalf("path %q: %v", path, err)
		}
		if meta.Issuer != sx.Issuer() || meta.ConfigurationEndpoint == "" {
			t.Fatalf("path %q: got %+v", path, meta)
		}
	}
	sx := newSSF(t, "")
	sx.SetFaults(transmitter.SSFFaults{RISCOnly: true, DiscoveryStatus: http.StatusNotFound})
	_, err := ssf.Discover(context.Background(), nil, sx.Issuer())
	if ssf.StatusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "ssf-configuration") {
		t.Fatalf("want a 404 naming ssf-configuration, got %v", err)
	}
}

// TestEnsureKeepsPollToken: a per-stream poll token returned only when
// the stream was created stays in use when the stream is read again.
func TestEnsureKeepsPollToken(t *testing.T) {
	ctx := context.Background()
	mem := &memory{}
	r := newRig(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) { c.Memory = mem })
	r.sx.SetFaults(transmitter.SSFFaults{PerStreamPollToken: true, PollTokenOnCreateOnly: true})
	first, err := r.mgr.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Delivery.AuthorizationHeader == "" {
		t.Fatal("want the token from the create answer")
	}
	again, err := r.mgr.Ensure(ctx) // found remembered: read without the token
	if err != nil {
		t.Fatal(err)
	}
	if again.Delivery.AuthorizationHeader != first.Delivery.AuthorizationHeader {
		t.Fatalf("the poll token was lost on a re-read: got %+v", again.Delivery)
	}
}
