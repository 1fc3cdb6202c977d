package bench

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// floorKey writes a new key for alg and returns its path and the key.
func floorKey(t *testing.T, alg string) (string, Key) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := transmitter.WriteKey(path, alg, "k", io.Discard); err != nil {
		t.Fatal(err)
	}
	signer, err := transmitter.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, Key{ID: "k", Alg: alg, Signer: signer}
}

// startFloor serves f on a loopback port until the test ends, checking
// that it then shuts down cleanly, and returns its base URL.
func startFloor(t *testing.T, f *Floor) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { served <- f.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("want a clean shutdown, got %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// TestFloor: the floor server answers 202 to a POST whose SET verifies
// with the key's public half, 400 to any other body, 405 to other
// methods and 413 to a body over 64 KiB, over a real listener; without a
// key it answers every POST 202.
func TestFloor(t *testing.T) {
	path, key := floorKey(t, "ES256")
	_, other := floorKey(t, "ES256")
	claims := map[string]any{"iss": "https://tx.example/", "jti": "1", "iat": time.Now().Unix()}
	good, err := key.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	verifying, err := NewFloor(path, "", 20*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if verifying.Alg() != "ES256" || verifying.Spins() < 1 {
		t.Fatalf("want ES256 from the key and some spin for --floor-cpu 20µs, got %s and %d", verifying.Alg(), verifying.Spins())
	}
	bare, err := NewFloor("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if bare.Alg() != "" || bare.Spins() != 0 {
		t.Fatalf("want no algorithm and no spin without a key and CPU, got %q and %d", bare.Alg(), bare.Spins())
	}
	urls := map[*Floor]string{verifying: startFloor(t, verifying), bare: startFloor(t, bare)}

	tests := []struct {
		name   string
		floor  *Floor
		method string
		body   []byte
		want   int
	}{
		{"verifies", verifying, http.MethodPost, good, http.StatusAccepted},
		{"signed by another key", verifying, http.MethodPost, forged, http.StatusBadRequest},
		{"not a JWT", verifying, http.MethodPost, []byte("not a jwt"), http.StatusBadRequest},
		{"empty", verifying, http.MethodPost, nil, http.StatusBadRequest},
		{"too big", verifying, http.MethodPost, bytes.Repeat([]byte("a"), floorMaxBody+1), http.StatusRequestEntityTooLarge},
		{"GET", verifying, http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"unverified: forged", bare, http.MethodPost, forged, http.StatusAccepted},
		{"unverified: not a JWT", bare, http.MethodPost, []byte("not a jwt"), http.StatusAccepted},
		{"unverified: too big", bare, http.MethodPost, bytes.Repeat([]byte("a"), floorMaxBody+1), http.StatusRequestEntityTooLarge},
		{"unverified: GET", bare, http.MethodGet, nil, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, urls[tt.floor]+"/events/acme", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("want %d, got %d", tt.want, resp.StatusCode)
			}
		})
	}
}

// TestNewFloorErrors: a floor without a usable key or with negative CPU
// does not start, and says why.
func TestNewFloorErrors(t *testing.T) {
	path, _ := floorKey(t, "ES256")
	tests := []struct {
		name string
		path string
		alg  string
		cpu  time.Duration
		want string
	}{
		{"no key file", filepath.Join(t.TempDir(), "missing.pem"), "", 0, "missing.pem"},
		{"algorithm of another key type", path, "RS256", 0, "RS256"},
		{"negative CPU", path, "", -time.Microsecond, "--floor-cpu must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFloor(tt.path, tt.alg, tt.cpu)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
