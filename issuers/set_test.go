package issuers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// The tests run the set inside a testing/synctest bubble, so the
// discovery backoff and the hourly metadata refresh run on the bubble's
// fake clock: no test sleeps in real time, and every wait is checked
// exactly.
//
// Real sockets do not work in a bubble: a goroutine blocked on a network
// read is not durably blocked, so the fake clock would never advance.
// The transmitter's HTTP handler (SSF metadata and JWKS) is therefore
// served through Options.Transport by handlerTransport, which calls the
// same http.Handler a httptest server would, in memory. The requests go
// through the real outbound policy, ssf.Discover and the verifier's JWKS
// cache; only the socket is left out.

// idp is the issuer every test configures; its URLs exist only in memory.
const idp = "https://idp.example/"

// handlerTransport serves each request with h in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// ssfIssuer is a transmitter's SSF metadata and JWKS endpoints, with
// answers a test changes.
type ssfIssuer struct {
	mu sync.Mutex
	// fail answers the next fail metadata requests with 503.
	fail int
	// jwksPath is the jwks_uri path the metadata names.
	jwksPath string
	// jwks maps a path to the JWKS served there.
	jwks map[string][]byte
	// discoveries are the times (the bubble's clock) metadata was asked for.
	discoveries []time.Time
}

func (s *ssfIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/.well-known/ssf-configuration" {
		s.discoveries = append(s.discoveries, time.Now())
		if s.fail > 0 {
			s.fail--
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp, "jwks_uri": strings.TrimSuffix(idp, "/") + s.jwksPath})
		return
	}
	if body, ok := s.jwks[r.URL.Path]; ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	http.NotFound(w, r)
}

func (s *ssfIssuer) set(f func(s *ssfIssuer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// gaps returns the time between consecutive discoveries.
func (s *ssfIssuer) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.discoveries); i++ {
		out = append(out, s.discoveries[i].Sub(s.discoveries[i-1]))
	}
	return out
}

// signer is a transmitter's key (outside the bubble: it serves its JWKS
// on loopback, read once here) that signs SETs as idp.
type signer struct {
	tx   *transmitter.Transmitter
	jwks []byte
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	tx, err := transmitter.New(transmitter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	resp, err := http.Get(tx.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	jwks, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{tx: tx, jwks: jwks}
}

// set signs a fresh SET as idp, dated by the bubble's clock.
func (s *signer) set(t *testing.T) []byte {
	t.Helper()
	c := s.tx.Claims(transmitter.SessionRevoked, nil, "alice@idp.example")
	c["iss"] = idp
	tok, err := s.tx.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok)
}

// acme is a discovery issuer of idp.
func acme(aud string) config.Issuer {
	return config.Issuer{Name: "acme", Discovery: true, PushToken: "acme-token",
		Verify: verify.Config{Name: "acme", Issuer: idp, Audience: []string{aud}, Algorithms: []string{"ES256"}}}
}

// testSet is a set whose SSF and JWKS calls h answers; registered
// records every list the set registers.
type testSet struct {
	*Set
	mu         sync.Mutex
	registered [][]gateway.Issuer
}

func newTestSet(t *testing.T, h http.Handler) *testSet {
	ts := &testSet{}
	ts.Set = New(Options{
		Settings:  config.DefaultSettings(),
		Transport: handlerTransport{h},
		Register: func(list []gateway.Issuer) {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			ts.registered = append(ts.registered, list)
		},
	})
	t.Cleanup(func() {
		if err := ts.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ts
}

func (ts *testSet) registrations() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.registered)
}

// state returns the State of issuer name.
func (ts *testSet) state(t *testing.T, name string) gateway.IssuerState {
	t.Helper()
	for _, is := range ts.State(t.Context()) {
		if is.Name == name {
			return is
		}
	}
	t.Fatalf("State lists no issuer %s", name)
	return gateway.IssuerState{}
}

// verifyWith verifies body with issuer name's running verifier.
func (ts *testSet) verifyWith(t *testing.T, name string, body []byte) error {
	t.Helper()
	li := ts.Get(name)
	if li == nil {
		t.Fatalf("issuer %s is not running", name)
	}
	_, err := li.Source().Verifier.Verify(t.Context(), body)
	return err
}

// TestPendingDiscoveryBackoff: an issuer whose SSF metadata cannot be read
// runs pending (its SETs are unavailable, State shows why) and discovery
// is retried after 1 s, doubling up to 5 min; once it succeeds the issuer
// is built in full, registered, and verifies.
func TestPendingDiscoveryBackoff(t *testing.T) {
	tests := []struct {
		name     string
		failures int // metadata requests answered 503, the first by Apply
		wantGaps []time.Duration
	}{
		{name: "first retry works", failures: 1, wantGaps: []time.Duration{time.Second}},
		{name: "three retries fail", failures: 4, wantGaps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{name: "capped at 5 min", failures: 12, wantGaps: []time.Duration{
			1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
			64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSigner(t)
			synctest.Test(t, func(t *testing.T) {
				h := &ssfIssuer{fail: tt.failures, jwksPath: "/jwks", jwks: map[string][]byte{"/jwks": key.jwks}}
				ts := newTestSet(t, h)
				spec := acme(key.tx.Audience())
				if err := ts.Apply(t.Context(), []config.Issuer{spec}); err != nil {
					t.Fatalf("apply: %v", err)
				}
				if err := ts.verifyWith(t, "acme", key.set(t)); !errors.Is(err, intake.ErrUnavailable) {
					t.Fatalf("a pending issuer's SET: want an error wrapping intake.ErrUnavailable, got %v", err)
				}
				if is := ts.state(t, "acme"); !strings.Contains(is.DiscoveryError, "503") {
					t.Fatalf("State of the pending issuer: want the discovery error, got %q", is.DiscoveryError)
				}

				var total time.Duration
				for _, g := range tt.wantGaps {
					total += g
				}
				time.Sleep(total - time.Nanosecond)
				synctest.Wait()
				if err := ts.verifyWith(t, "acme", key.set(t)); !errors.Is(err, intake.ErrUnavailable) {
					t.Fatalf("pending until the last retry: want unavailable, got %v", err)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()

				// The retry that worked is followed at once by the full
				// build's own discovery (gap 0).
				wantGaps := append(slices.Clone(tt.wantGaps), 0)
				if got := h.gaps(); !slices.Equal(got, wantGaps) {
					t.Fatalf("time between discoveries: want %v, got %v", wantGaps, got)
				}
				if err := ts.verifyWith(t, "acme", key.set(t)); err != nil {
					t.Fatalf("after discovery worked: %v", err)
				}
				is := ts.state(t, "acme")
				if is.DiscoveryError != "" || is.JWKSURI != "https://idp.example/jwks" || is.JWKS.Keys != 1 {
					t.Fatalf("State after discovery worked: %+v", is)
				}
				if n := ts.registrations(); n != 2 {
					t.Fatalf("registrations: want 2 (pending, built), got %d", n)
				}
				// Nothing more is discovered until the hourly refresh.
				time.Sleep(time.Hour - time.Nanosecond)
				synctest.Wait()
				if n := len(h.gaps()); n != len(wantGaps) {
					t.Fatalf("discoveries after the issuer was built: %d more", n-len(wantGaps))
				}
			})
		})
	}
}

// TestMetadataRefresh: a running discovery issuer reads its metadata
// every hour. Changed metadata (a new jwks_uri) rebuilds the issuer; a
// failed read is shown in State while the cached metadata and keys keep
// working, and the next good read clears it without a rebuild.
func TestMetadataRefresh(t *testing.T) {
	tests := []struct {
		name string
		// change is made to the transmitter before the refresh.
		change func(h *ssfIssuer, next *signer)
		// wantRebuilt: the refresh replaced the issuer.
		wantRebuilt bool
		// wantError is in State's discovery_error after the refresh.
		wantError string
	}{
		{name: "unchanged", change: func(*ssfIssuer, *signer) {}},
		{name: "new jwks_uri", wantRebuilt: true, change: func(h *ssfIssuer, next *signer) {
			h.jwksPath = "/jwks-2"
			h.jwks["/jwks-2"] = next.jwks
		}},
		{name: "refresh fails", wantError: "503", change: func(h *ssfIssuer, _ *signer) { h.fail = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, next := newSigner(t), newSigner(t)
			synctest.Test(t, func(t *testing.T) {
				h := &ssfIssuer{jwksPath: "/jwks", jwks: map[string][]byte{"/jwks": key.jwks}}
				ts := newTestSet(t, h)
				if err := ts.Apply(t.Context(), []config.Issuer{acme(key.tx.Audience())}); err != nil {
					t.Fatalf("apply: %v", err)
				}
				before := ts.Get("acme")
				if err := ts.verifyWith(t, "acme", key.set(t)); err != nil {
					t.Fatalf("before the refresh: %v", err)
				}
				h.set(func(h *ssfIssuer) { tt.change(h, next) })

				time.Sleep(time.Hour - time.Nanosecond)
				synctest.Wait()
				if ts.Get("acme") != before || len(h.gaps()) != 0 {
					t.Fatal("the metadata was read again before an hour passed")
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()

				// A rebuild reads the metadata once more, at once (gap 0).
				wantGaps := []time.Duration{time.Hour}
				if tt.wantRebuilt {
					wantGaps = append(wantGaps, 0)
				}
				if got := h.gaps(); !slices.Equal(got, wantGaps) {
					t.Fatalf("time between metadata reads: want %v, got %v", wantGaps, got)
				}
				after := ts.Get("acme")
				if rebuilt := after != before; rebuilt != tt.wantRebuilt {
					t.Fatalf("rebuilt: want %v, got %v", tt.wantRebuilt, rebuilt)
				}
				is := ts.state(t, "acme")
				if !strings.Contains(is.DiscoveryError, tt.wantError) || (tt.wantError == "") != (is.DiscoveryError == "") {
					t.Fatalf("State discovery_error: want %q, got %q", tt.wantError, is.DiscoveryError)
				}
				wantRegs := 1
				if tt.wantRebuilt {
					wantRegs = 2
					if is.JWKSURI != "https://idp.example/jwks-2" {
						t.Fatalf("State jwks_uri after the rebuild: %s", is.JWKSURI)
					}
					if err := ts.verifyWith(t, "acme", next.set(t)); err != nil {
						t.Fatalf("the new jwks_uri's key after the rebuild: %v", err)
					}
				} else if err := ts.verifyWith(t, "acme", key.set(t)); err != nil {
					t.Fatalf("the cached metadata's key after the refresh: %v", err)
				}
				if n := ts.registrations(); n != wantRegs {
					t.Fatalf("registrations: want %d, got %d", wantRegs, n)
				}

				// The next hour's read works again: no error, no rebuild.
				time.Sleep(time.Hour)
				synctest.Wait()
				if is := ts.state(t, "acme"); is.DiscoveryError != "" {
					t.Fatalf("State after a good read: discovery_error %q", is.DiscoveryError)
				}
				if ts.Get("acme") != after || ts.registrations() != wantRegs {
					t.Fatal("an unchanged read rebuilt the issuer")
				}
			})
		})
	}
}

// TestApplyHeldBuildDoesNotBlockReads: while a new issuer's first JWKS
// fetch is held, Get and State answer on the running set; a cancelled
// Apply changes nothing, and the abandoned build never comes in force.
func TestApplyHeldBuildDoesNotBlockReads(t *testing.T) {
	key := newSigner(t)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		held := make(chan struct{}, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/held-jwks" {
				held <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(key.jwks)
		})
		ts := newTestSet(t, h)
		static := func(name, jwks string) config.Issuer {
			return config.Issuer{Name: name, PushToken: name + "-token", Verify: verify.Config{Name: name, Issuer: idp,
				Audience: []string{name}, JWKSURI: "https://idp.example" + jwks, Algorithms: []string{"ES256"}}}
		}
		globex := static("globex", "/jwks")
		if err := ts.Apply(t.Context(), []config.Issuer{globex}); err != nil {
			t.Fatal(err)
		}
		running := ts.Get("globex")

		ctx, cancel := context.WithCancel(t.Context())
		applied := make(chan error, 1)
		go func() { applied <- ts.Apply(ctx, []config.Issuer{globex, static("initech", "/held-jwks")}) }()
		<-held
		synctest.Wait() // Apply is blocked on the held fetch
		if ts.Get("globex") != running || ts.Get("initech") != nil {
			t.Fatal("Get while a build is held: want the running set")
		}
		if st := ts.State(t.Context()); len(st) != 1 || st[0].Name != "globex" {
			t.Fatalf("State while a build is held: %+v", st)
		}
		select {
		case err := <-applied:
			t.Fatalf("Apply returned while its build was held: %v", err)
		default:
		}

		cancel()
		if err := <-applied; !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled Apply: want context.Canceled, got %v", err)
		}
		close(release)
		synctest.Wait()
		if ts.Get("globex") != running || ts.Get("initech") != nil || ts.registrations() != 1 {
			t.Fatal("a cancelled Apply changed the running set")
		}
	})
}

// TestApplySwapsChangedIssuersOnly: an Apply keeps an unchanged issuer's
// running instance, replaces a changed one, adds new ones and drops
// removed ones; the gateway is told the whole set, sorted by name.
func TestApplySwapsChangedIssuersOnly(t *testing.T) {
	key := newSigner(t)
	synctest.Test(t, func(t *testing.T) {
		h := &ssfIssuer{jwks: map[string][]byte{"/jwks": key.jwks}}
		aud := key.tx.Audience()
		ts := newTestSet(t, h)
		spec := func(name, aud string) config.Issuer {
			return config.Issuer{Name: name, PushToken: name + "-token", Verify: verify.Config{Name: name, Issuer: idp,
				Audience: []string{aud}, JWKSURI: "https://idp.example/jwks", Algorithms: []string{"ES256"}}}
		}
		registered := func() []string {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			var names []string
			for _, is := range ts.registered[len(ts.registered)-1] {
				names = append(names, is.Source.Name)
			}
			return names
		}
		if err := ts.Apply(t.Context(), []config.Issuer{spec("globex", "a"), spec("acme", aud)}); err != nil {
			t.Fatal(err)
		}
		acme, globex := ts.Get("acme"), ts.Get("globex")
		if got := registered(); !slices.Equal(got, []string{"acme", "globex"}) {
			t.Fatalf("registered: %v", got)
		}

		if err := ts.Apply(t.Context(), []config.Issuer{spec("acme", aud), spec("globex", "b"), spec("initech", "a")}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ts.Get("acme") != acme {
			t.Error("the unchanged issuer was rebuilt")
		}
		if ts.Get("globex") == globex || ts.Get("globex").Spec().Verify.Audience[0] != "b" {
			t.Error("the changed issuer was not replaced")
		}
		if ts.Get("initech") == nil || ts.Len() != 3 {
			t.Errorf("the new issuer is not running: %d issuers", ts.Len())
		}
		if got := registered(); !slices.Equal(got, []string{"acme", "globex", "initech"}) {
			t.Fatalf("registered: %v", got)
		}

		if err := ts.Apply(t.Context(), []config.Issuer{spec("acme", aud)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ts.Get("globex") != nil || ts.Get("initech") != nil || ts.Get("acme") != acme {
			t.Error("removed issuers still run, or the kept one was rebuilt")
		}
		if got := registered(); !slices.Equal(got, []string{"acme"}) {
			t.Fatalf("registered: %v", got)
		}
		if err := ts.verifyWith(t, "acme", key.set(t)); err != nil {
			t.Fatalf("the kept issuer's verifier: %v", err)
		}
	})
}
