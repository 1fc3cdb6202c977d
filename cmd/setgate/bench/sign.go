package bench

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one signing key of a transmitter.
type Key struct {
	// ID is the kid put in the JWS header.
	ID string
	// Alg is the JWS algorithm (ES256, RS256, EdDSA, …).
	Alg    string
	Signer crypto.Signer
}

// Sign returns claims as a compact SET signed with k (typ secevent+jwt).
func (k Key) Sign(claims map[string]any) ([]byte, error) {
	m := jwt.GetSigningMethod(k.Alg)
	if m == nil {
		return nil, fmt.Errorf("bench: unknown algorithm %q", k.Alg)
	}
	tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("bench: sign with %s key %s: %w", k.Alg, k.ID, err)
	}
	return []byte(s), nil
}

// SignAll calls sign for 0 … n-1 from one goroutine per CPU and returns
// the results in order. Runs longer than a second print a progress line
// to progress (if not nil) every second.
func SignAll(ctx context.Context, n int, progress io.Writer, label string, sign func(i int) ([]byte, error)) ([][]byte, error) {
	out := make([][]byte, n)
	var next, done atomic.Int64
	var errOnce sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := signProgress(ctx, progress, label, n, &done)
	var wg sync.WaitGroup
	for range workers() {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				b, err := sign(i)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
				out[i] = b
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	if firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return out, nil
}

// workers is the number of goroutines that keep every CPU busy.
func workers() int { return runtime.GOMAXPROCS(0) }

// signProgress prints "label: done/n" every second until stopped.
func signProgress(ctx context.Context, w io.Writer, label string, n int, done *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				fmt.Fprintf(w, "%s: %d/%d\n", label, done.Load(), n)
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// JWKSServer serves one JWKS on a loopback address, as a transmitter
// publishes its keys, and counts the fetches.
type JWKSServer struct {
	srv  *http.Server
	base string
	hits atomic.Int64
}

// ServeJWKS serves jwks (a JSON JWK Set) at [JWKSServer.JWKSURL].
func ServeJWKS(jwks []byte) (*JWKSServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: jwks listener: %w", err)
	}
	s := &JWKSServer{base: "http://" + ln.Addr().String() + "/"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Base is the server's base URL, used as the transmitter's iss.
func (s *JWKSServer) Base() string { return s.base }

// JWKSURL is where the key set is served.
func (s *JWKSServer) JWKSURL() string { return s.base + "jwks" }

// Hits counts the key set fetches served so far.
func (s *JWKSServer) Hits() int64 { return s.hits.Load() }

// Close stops the server.
func (s *JWKSServer) Close() error { return s.srv.Close() }
