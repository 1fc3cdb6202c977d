package bench

import (
	"context"
	"crypto"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Ceiling is the outcome of one in-process measurement by [Run].
type Ceiling struct {
	// OK and Failed count the calls of op by result.
	OK, Failed int
	// Elapsed is the wall time from the first call to the last return.
	Elapsed time.Duration
	// FirstErr is the first error op returned.
	FirstErr error
}

// Rate is successful calls per second.
func (c Ceiling) Rate() float64 { return rate(c.OK, c.Elapsed) }

// Add sums two measurements of the same work made one after the other.
func (c Ceiling) Add(o Ceiling) Ceiling {
	c.OK += o.OK
	c.Failed += o.Failed
	c.Elapsed += o.Elapsed
	if c.FirstErr == nil {
		c.FirstErr = o.FirstErr
	}
	return c
}

// Run calls op from workers goroutines with the indexes 0, 1, 2, … until
// d has passed (d > 0), limit calls were started (limit > 0) or ctx is
// done. A call under way is always finished and counted.
func Run(ctx context.Context, workers int, d time.Duration, limit int, op func(ctx context.Context, i int) error) Ceiling {
	var next, ok, failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	var deadline time.Time
	if d > 0 {
		deadline = start.Add(d)
	}
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				i := next.Add(1) - 1
				if limit > 0 && i >= int64(limit) {
					return
				}
				if err := op(ctx, int(i)); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return Ceiling{OK: int(ok.Load()), Failed: int(failed.Load()), Elapsed: time.Since(start), FirstErr: firstErr}
}

// PlainJWT returns the operation of ceiling (0) for [Run]: call i parses
// and verifies tokens[i mod len(tokens)] with golang-jwt v5's jwt.Parse
// (default claims validation, only alg allowed) against keys[i mod
// len(keys)], a public key fixed in advance: no key lookup, no SET
// profile checks. It is what a minimal JWT receiver costs on the same
// machine, the yardstick of the whole push path.
func PlainJWT(alg string, tokens []string, keys []crypto.PublicKey) func(ctx context.Context, i int) error {
	only := jwt.WithValidMethods([]string{alg})
	return func(_ context.Context, i int) error {
		key := keys[i%len(keys)]
		_, err := jwt.Parse(tokens[i%len(tokens)], func(*jwt.Token) (any, error) { return key, nil }, only)
		return err
	}
}
