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

// TestFloor: the floor server answers 202 to a POST whose SET verifies
// with the key's public half, 400 to any other body, 405 to other
// methods and 413 to a body over 64 KiB, over a real listener.
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
	f, err := NewFloor(path, "", 20*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alg() != "ES256" || f.Spins() < 1 {
		t.Fatalf("want ES256 from the key and some spin for --floor-cpu 20µs, got %s and %d", f.Alg(), f.Spins())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { served <- f.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()

	tests := []struct {
		name   string
		method string
		body   []byte
		want   int
	}{
		{"verifies", http.MethodPost, good, http.StatusAccepted},
		{"signed by another key", http.MethodPost, forged, http.StatusBadRequest},
		{"not a JWT", http.MethodPost, []byte("not a jwt"), http.StatusBadRequest},
		{"empty", http.MethodPost, nil, http.StatusBadRequest},
		{"too big", http.MethodPost, bytes.Repeat([]byte("a"), floorMaxBody+1), http.StatusRequestEntityTooLarge},
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, base+"/events/acme", bytes.NewReader(tt.body))
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
	cancel()
	if err := <-served; err != nil {
		t.Errorf("want a clean shutdown, got %v", err)
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
