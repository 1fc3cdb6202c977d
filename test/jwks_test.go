package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/internal/transmitter"
)

// jwksMode is what the faulty JWKS server answers.
type jwksMode int32

const (
	jwksServe   jwksMode = iota // the real key set
	jwksSlow                    // hangs until the client gives up
	jwksGarbage                 // 200 with a body that is not JSON
	jwksHuge                    // 200 with a 2 MiB body
)

// faultyJWKS serves a transmitter's real JWKS, or a fault, and counts its
// hits.
type faultyJWKS struct {
	srv     *httptest.Server
	body    []byte
	mode    atomic.Int32
	hits    atomic.Int64
	release chan struct{}

	mu      sync.Mutex
	lastHit time.Time
}

func newFaultyJWKS(t testing.TB, tr *transmitter.Transmitter) *faultyJWKS {
	t.Helper()
	resp, err := httpClient.Get(tr.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("transmitter JWKS: %d %v", resp.StatusCode, err)
	}
	f := &faultyJWKS{body: body, release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	return f
}

func (f *faultyJWKS) handle(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	f.lastHit = time.Now()
	f.mu.Unlock()
	switch jwksMode(f.mode.Load()) {
	case jwksServe:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.body)
	case jwksSlow:
		select {
		case <-r.Context().Done():
		case <-f.release:
		case <-time.After(waitLong):
		}
	case jwksGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "<html>this is not a key set</html>")
	case jwksHuge:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[`))
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for range 32 { // 2 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`]}`))
	}
}

func (f *faultyJWKS) URL() string { return f.srv.URL + "/jwks" }

// waitLimiter sleeps until interval has passed since the last hit, so the
// next unknown kid really causes a fetch.
func (f *faultyJWKS) waitLimiter(interval time.Duration) {
	f.mu.Lock()
	last := f.lastHit
	f.mu.Unlock()
	if d := time.Until(last.Add(interval + 50*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// foreignSET signs an acme SET with a key the JWKS never served, under
// kid.
func foreignSET(t testing.TB, tr *transmitter.Transmitter, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	c := tr.Claims(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "bob@acme.example")
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(c))
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKSFaults: with the issuer's JWKS endpoint slow, serving garbage,
// serving 2 MiB or down, keys cached from the first fetch keep verifying,
// an unknown kid is answered 400 invalid_key (the request returns: bounded
// by SETGATE_JWKS_FETCH_TIMEOUT) and a burst of unknown kids causes at most
// one fetch per SETGATE_JWKS_MIN_REFRESH_INTERVAL.
func TestJWKSFaults(t *testing.T) {
	const (
		fetchTimeout = 500 * time.Millisecond
		minRefresh   = time.Second
		burst        = 50
	)
	acme := newTransmitter(t, "ES256")
	jwks := newFaultyJWKS(t, acme)
	is := acmeOnly(t, acme, jwks.URL(), "")
	g := startGateway(t, gwOptions{Issuers: is, Env: map[string]string{
		"SETGATE_JWKS_FETCH_TIMEOUT":        fetchTimeout.String(),
		"SETGATE_JWKS_MIN_REFRESH_INTERVAL": minRefresh.String(),
		"SETGATE_JWKS_REFRESH_INTERVAL":     "1h",
	}})
	// The cache is filled: a SET under the served kid is accepted.
	if _, r := g.pushAcme(t); r.Status != http.StatusAccepted {
		t.Fatalf("first push: want 202, got %d %s", r.Status, r.Body)
	}
	t.Logf("JWKS hits after start and first push: %d", jwks.hits.Load())

	rogue, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var kidSeq atomic.Int64
	newKid := func() string { return fmt.Sprintf("unknown-%d-%s", kidSeq.Add(1), randomHex(t)[:8]) }

	// unknownKid pushes one SET under an unknown kid and checks the answer.
	unknownKid := func(t *testing.T) (time.Duration, error) {
		set := foreignSET(t, acme, rogue, newKid())
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		start := time.Now()
		r, err := acme.Push(ctx, g.url("/events/acme"), is.acmeToken, set)
		took := time.Since(start)
		if err != nil {
			return took, err
		}
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"invalid_key"`) {
			return took, fmt.Errorf("unknown kid: want 400 invalid_key, got %d %s", r.Status, r.Body)
		}
		return took, nil
	}
	// cachedKey pushes one SET under the cached kid: it must be accepted.
	cachedKey := func(t *testing.T) {
		if _, r := g.pushAcme(t); r.Status != http.StatusAccepted {
			t.Errorf("cached key: want 202, got %d %s", r.Status, r.Body)
		}
	}
	// allowed is the most fetches unknown kids may cause in d.
	allowed := func(d time.Duration) int64 { return 1 + int64(d/minRefresh) }

	// Each phase: a burst of distinct unknown kids (each answered 400
	// invalid_key; together at most one fetch per interval) and, while
	// the fetch they caused is under way, a SET under the cached key.
	phase := func(name string, mode jwksMode, down bool) {
		t.Run(name, func(t *testing.T) {
			jwks.waitLimiter(minRefresh)
			if down {
				// The listener is closed: connections are refused.
				jwks.srv.CloseClientConnections()
				_ = jwks.srv.Listener.Close()
			}
			jwks.mode.Store(int32(mode))
			before := jwks.hits.Load()
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var slowest time.Duration
			for range burst {
				wg.Go(func() {
					took, err := unknownKid(t)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
				})
			}
			if !down {
				checkFor(t, waitShort, time.Millisecond, func() error {
					if jwks.hits.Load() == before {
						return fmt.Errorf("the unknown kids caused no JWKS fetch")
					}
					return nil
				})
			}
			cachedKey(t) // while the fetch is under way (or failed)
			wg.Wait()
			d := time.Since(start)
			hits := jwks.hits.Load() - before
			t.Logf("%s: %d unknown kids answered invalid_key in %v (slowest %v, fetch timeout %v); JWKS fetches %d (allowed %d)",
				name, burst, d.Round(time.Millisecond), slowest.Round(time.Millisecond), fetchTimeout, hits, allowed(d))
			if hits > allowed(d) {
				t.Errorf("%s: %d JWKS fetches in %v, want at most %d (one per %v)", name, hits, d, allowed(d), minRefresh)
			}
			cachedKey(t)
		})
	}
	phase("serving", jwksServe, false)
	phase("slow", jwksSlow, false)
	phase("garbage", jwksGarbage, false)
	phase("2MiB", jwksHuge, false)
	phase("down", jwksServe, true)
	t.Logf("JWKS hits in total: %d", jwks.hits.Load())
}
