package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

func newECKey(tb testing.TB, kid string) testKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return testKey{kid: kid, priv: k}
}

func signES256(tb testing.TB, k testKey) string {
	tb.Helper()
	return sign(tb, k, baseHeader("ES256", k), baseClaims())
}

func wantHits(tb testing.TB, s *jwksServer, want int64) {
	tb.Helper()
	if got := s.hits.Load(); got != want {
		tb.Fatalf("want %d JWKS fetches, got %d", want, got)
	}
}

// TestKeyRotation: an unknown kid causes exactly one refetch, and a second
// unknown kid right after is refused by the rate limit without a fetch.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	a, b, c := newECKey(t, "key-a"), newECKey(t, "key-b"), newECKey(t, "key-c")
	srv := newJWKSServer(t, pubJWK(a))
	v := newVerifier(t, srv.URL, nil)
	wantHits(t, srv, 1) // New fetches at once

	wantCode(t, v, signES256(t, a), "")
	wantHits(t, srv, 1)

	srv.set(t, pubJWK(b))
	wantCode(t, v, signES256(t, b), "")
	wantHits(t, srv, 2)
	wantCode(t, v, signES256(t, b), "")
	wantHits(t, srv, 2)

	srv.set(t, pubJWK(b), pubJWK(c))
	wantCode(t, v, signES256(t, c), verify.CodeInvalidKey)
	wantHits(t, srv, 2)

	// Key A left the JWKS with the refresh: it no longer verifies.
	wantCode(t, v, signES256(t, a), verify.CodeInvalidKey)
	wantHits(t, srv, 2)

	st := v.KeyStatus(context.Background())
	if st.URI != srv.URL || st.Keys != 1 || st.Fetches != 2 || st.Failures != 0 || st.LastError != "" || st.LastFetch.IsZero() {
		t.Errorf("want status {uri %s, 1 key, 2 fetches, no failure}, got %+v", srv.URL, st)
	}
}

// TestKeyRotationRefreshAfterInterval: once MinRefreshInterval has passed,
// another unknown kid may refresh again.
func TestKeyRotationRefreshAfterInterval(t *testing.T) {
	t.Parallel()
	a, b := newECKey(t, "key-a"), newECKey(t, "key-b")
	srv := newJWKSServer(t, pubJWK(a))
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) {
		o.MinRefreshInterval = time.Millisecond
	})
	wantCode(t, v, signES256(t, b), verify.CodeInvalidKey) // refresh: B not there yet
	srv.set(t, pubJWK(a), pubJWK(b))
	// The limiter refills within a millisecond and the verifier waits for it.
	wantCode(t, v, signES256(t, b), "")
	if n := srv.hits.Load(); n != 3 {
		t.Errorf("want 3 JWKS fetches, got %d", n)
	}
}

// TestKeyRotationConcurrent: many SETs with one new kid at the same time
// share one refetch, and every one of them is accepted.
func TestKeyRotationConcurrent(t *testing.T) {
	t.Parallel()
	a, b := newECKey(t, "key-a"), newECKey(t, "key-b")
	srv := newJWKSServer(t, pubJWK(a))
	v := newVerifier(t, srv.URL, nil)
	wantHits(t, srv, 1)

	srv.set(t, pubJWK(a), pubJWK(b))
	srv.delay.Store(int64(50 * time.Millisecond)) // keep the refresh in flight while the others arrive
	tok := signES256(t, b)

	const n = 64
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = v.Verify(context.Background(), []byte(tok))
		})
	}
	close(start)
	wg.Wait()

	if got := srv.hits.Load(); got > 2 {
		t.Errorf("want at most one refetch (2 fetches), got %d fetches", got)
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if failed == 1 {
				t.Errorf("want every concurrent SET accepted, got %v", err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent SETs failed", failed, n)
	}
}

// TestJWKSDownKeepsCachedKeys: once fetched, keys keep verifying when the
// JWKS endpoint fails or disappears.
func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	t.Parallel()
	for _, down := range []string{"503", "closed"} {
		t.Run(down, func(t *testing.T) {
			t.Parallel()
			a := newECKey(t, "key-a")
			srv := newJWKSServer(t, pubJWK(a))
			v := newVerifier(t, srv.URL, nil)
			if down == "503" {
				srv.mode.Store(modeFail)
			} else {
				srv.Close()
			}
			// An unknown kid makes the verifier try (and fail) a refresh.
			wantCode(t, v, signES256(t, newECKey(t, "key-x")), verify.CodeInvalidKey)
			wantCode(t, v, signES256(t, a), "")
			st := v.KeyStatus(context.Background())
			if st.Keys != 1 || st.Failures == 0 || st.LastError == "" {
				t.Errorf("want 1 cached key and a recorded failure, got %+v", st)
			}
		})
	}
}

// TestJWKSDownAtStart: New succeeds when the first fetch fails, and the
// first SET fetches again.
func TestJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	srv := newJWKSServer(t, pubJWK(a))
	srv.mode.Store(modeFail)
	v := newVerifier(t, srv.URL, nil)
	st := v.KeyStatus(context.Background())
	if st.Keys != 0 || !strings.Contains(st.LastError, "503") {
		t.Errorf("want no keys and a 503 error, got %+v", st)
	}
	srv.mode.Store(modeServe)
	wantCode(t, v, signES256(t, a), "")
	wantHits(t, srv, 2)
	if st := v.KeyStatus(context.Background()); st.Keys != 1 || st.LastError != "" {
		t.Errorf("want 1 key and no error after recovery, got %+v", st)
	}
}

// TestJWKSHang: an unknown kid while the JWKS endpoint hangs is rejected
// once FetchTimeout expires; known keys keep verifying meanwhile.
func TestJWKSHang(t *testing.T) {
	// Not parallel: the initial fetch must finish within the short
	// FetchTimeout, so this test runs alone.
	a := newECKey(t, "key-a")
	srv := newJWKSServer(t, pubJWK(a))
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.FetchTimeout = 200 * time.Millisecond })
	srv.mode.Store(modeHang)

	wantCode(t, v, signES256(t, a), "")
	wantCode(t, v, signES256(t, newECKey(t, "key-x")), verify.CodeInvalidKey)
	if st := v.KeyStatus(context.Background()); st.LastError == "" {
		t.Errorf("want the timed-out fetch recorded, got %+v", st)
	}
	wantCode(t, v, signES256(t, a), "")
}

// TestJWKSHangCallerContext: the caller's own deadline is honoured too.
func TestJWKSHangCallerContext(t *testing.T) {
	// Not parallel: the initial fetch must finish within the short
	// FetchTimeout, so this test runs alone.
	a := newECKey(t, "key-a")
	srv := newJWKSServer(t, pubJWK(a))
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.FetchTimeout = 200 * time.Millisecond })
	srv.mode.Store(modeHang)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, []byte(signES256(t, newECKey(t, "key-x"))))
	if got := verify.ErrorCode(err); got != verify.CodeInvalidKey {
		t.Errorf("want %q, got %q (%v)", verify.CodeInvalidKey, got, err)
	}
}

// TestJWKSOversized: a JWKS larger than MaxJWKSBytes is not loaded.
func TestJWKSOversized(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.MaxJWKSBytes = 512 })
	st := v.KeyStatus(context.Background())
	if st.Keys != 0 || st.LastError == "" || st.Failures == 0 {
		t.Fatalf("want no keys and a recorded error, got %+v", st)
	}
	if !strings.Contains(st.LastError, "too large") {
		t.Errorf("want LastError to say the JWKS is too large, got %q", st.LastError)
	}
	wantCode(t, v, signDefault(t, baseClaims()), verify.CodeInvalidKey)
}

// TestJWKSAtSizeLimit: a JWKS of exactly MaxJWKSBytes is loaded.
func TestJWKSAtSizeLimit(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	body := jwksJSON(t, pubJWK(a))
	srv := newJWKSServer(t)
	srv.setRaw(body)
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.MaxJWKSBytes = int64(len(body)) })
	if st := v.KeyStatus(context.Background()); st.Keys != 1 || st.LastError != "" {
		t.Fatalf("want 1 key and no error, got %+v", st)
	}
	wantCode(t, v, signES256(t, a), "")
}

// TestJWKSUnsupportedKeySkipped documents how one unusable key affects the set:
// a key of an unsupported type is skipped, the others still load.
func TestJWKSUnsupportedKeySkipped(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	body := strings.Replace(string(jwksJSON(t, pubJWK(a))), `"keys":[`,
		`"keys":[{"kty":"EC","crv":"secp256k1","kid":"k1","x":"AA","y":"AA"},`, 1)
	srv := newJWKSServer(t)
	srv.setRaw([]byte(body))
	v := newVerifier(t, srv.URL, nil)
	wantCode(t, v, signES256(t, a), "")
}
