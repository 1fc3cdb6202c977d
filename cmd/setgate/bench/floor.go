package bench

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/internal/transmitter"
)

// floorMaxBody bounds the body the floor server reads, as a gateway's
// SETGATE_MAX_BODY_BYTES would.
const floorMaxBody = 64 << 10

// Floor is the server of "setgate bench --floor": the least a push
// receiver can do, to learn which latency and CPU the machine itself
// allows at a rate (README "Performance"). Every POST is read, parsed and
// verified like ceiling (0) (golang-jwt v5 jwt.Parse, one algorithm, one
// public key fixed in advance) and answered 202, after spending extra CPU
// when asked (--floor-cpu); a token that does not verify gets 400. Without
// a key (--floor-verify=false) nothing is verified: every POST is read and
// answered 202, which is what HTTP alone costs. Nothing is stored or
// published, no SET profile is checked, and every request is handled
// start to end by its connection's goroutine, so its latency has no
// hand-offs in it: only HTTP, verification, the spent CPU and the
// machine's scheduling.
type Floor struct {
	alg   string           // "" when nothing is verified
	key   crypto.PublicKey // nil when nothing is verified
	spins int
	only  jwt.ParserOption
}

// NewFloor returns the floor server for the public half of the signing
// key in keyFile (PEM, as --key), with alg (or the key's own algorithm
// when alg is ""), spending about cpu of extra CPU per SET. With keyFile
// "" it verifies nothing.
func NewFloor(keyFile, alg string, cpu time.Duration) (*Floor, error) {
	if cpu < 0 {
		return nil, errors.New("bench: --floor-cpu must not be negative")
	}
	f := &Floor{}
	if keyFile != "" {
		key, err := transmitter.LoadKey(keyFile)
		if err != nil {
			return nil, err
		}
		if alg, err = transmitter.AlgFor(key, alg); err != nil {
			return nil, err
		}
		f.alg, f.key, f.only = alg, key.Public(), jwt.WithValidMethods([]string{alg})
	}
	if cpu > 0 {
		f.spins = max(1, int(cpu/spinCost()))
	}
	return f, nil
}

// Alg is the one algorithm the floor accepts, "" when it verifies
// nothing.
func (f *Floor) Alg() string { return f.alg }

// Spins is the number of spin units a SET costs on top of its
// verification (each about 64 bytes of SHA-256).
func (f *Floor) Spins() int { return f.spins }

// ServeHTTP answers one push: 202 when the body verifies (or nothing is
// verified), else 400; 405
// for anything but POST, 413 for a body over 64 KiB.
func (f *Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, floorMaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if f.key != nil {
		_, err = jwt.Parse(string(body), func(*jwt.Token) (any, error) { return f.key, nil }, f.only)
	}
	spin(f.spins)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// Serve answers pushes on l until ctx is done, then shuts the server
// down, waiting up to 5 s for requests under way.
func (f *Floor) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("bench: floor server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}

// spin spends n units of CPU, each a SHA-256 of the previous one's sum
// (a chain the compiler cannot drop), and returns the last sum.
func spin(n int) [sha256.Size]byte {
	var b [64]byte
	var sum [sha256.Size]byte
	for range n {
		sum = sha256.Sum256(b[:])
		copy(b[:], sum[:])
	}
	return sum
}

// spinCost is the fastest of five timings of one spin unit: the least
// it costs on this machine, so --floor-cpu is a lower bound on the CPU
// spent.
func spinCost() time.Duration {
	const units = 20000
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		spin(units)
		best = min(best, time.Since(start))
	}
	return max(best/units, time.Nanosecond)
}
