package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/verify"
)

// Defaults applied by [New] to zero-valued [Config] fields.
const (
	DefaultMaxEvents        = 100
	DefaultLongPollTimeout  = 30 * time.Second
	DefaultTimeoutMargin    = 10 * time.Second
	DefaultMinBackoff       = 500 * time.Millisecond
	DefaultMaxBackoff       = time.Minute
	DefaultMaxResponseBytes = 10 << 20
	DefaultMaxSETBytes      = 64 << 10
	DefaultConcurrency      = 32
	DefaultShutdownTimeout  = 5 * time.Second
)

// Lease decides which replica polls an issuer; *bridge.Lease implements
// it. TryAcquire acquires or renews and reports whether the lease is held
// for TTL from the start of the call (false with any error: the loop then
// keeps an earlier term only until it would expire); Release gives it up.
type Lease interface {
	TryAcquire(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
	TTL() time.Duration
}

// Config configures one poll loop.
type Config struct {
	// Source is the issuer: its name, verifier and subject overrides.
	// Required.
	Source *intake.Source
	// Endpoint is the transmitter's poll URL: https, or http for a
	// loopback host. Required.
	Endpoint string
	// MaxEvents is sent as maxEvents in every poll (default 100).
	MaxEvents int
	// Auth authorizes each request; nil sends no Authorization header.
	Auth Auth
	// LongPollTimeout is how long the transmitter is expected to hold a
	// long poll (agreed out of band; default 30s). Each request is given
	// up after [RequestTimeout]: 2 × LongPollTimeout + TimeoutMargin.
	LongPollTimeout time.Duration
	// TimeoutMargin is added to 2 × LongPollTimeout for the request
	// timeout (default 10s).
	TimeoutMargin time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failed poll (defaults 500ms and 1m): the n-th consecutive failure
	// waits a uniformly random time in [0, min(MaxBackoff, MinBackoff·2ⁿ⁻¹)].
	MinBackoff, MaxBackoff time.Duration
	// MaxResponseBytes caps a poll response body (default 10 MiB).
	MaxResponseBytes int64
	// MaxSETBytes caps one SET of a poll response, as SETGATE_MAX_BODY_BYTES
	// caps a pushed one (default 64 KiB): a longer SET is reported in
	// setErrs with invalid_request before verification, so a SET too big
	// to push is too big to poll, and neither reaches NATS.
	MaxSETBytes int64
	// Concurrency is how many SETs of one batch are verified and published
	// at once (default 32).
	Concurrency int
	// ShutdownTimeout bounds the acknowledge-only request sent on shutdown
	// and the lease release (default 5s).
	ShutdownTimeout time.Duration
	// Lease, if set, is held while polling: the loop polls only while it
	// holds the lease. Nil: always poll (one replica).
	Lease Lease
	// HTTPClient sends the polls. Nil: a client with the outbound policy
	// (no redirects: a 3xx is an error; [RequestTimeout]
	// per call; MaxResponseBytes per answer). Each request also carries
	// that deadline in its context.
	HTTPClient *http.Client
	// Logger receives the loop's log; nil discards it.
	Logger *slog.Logger

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() then
	// (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a uniformly random number in [0, n) for n > 0
	// (default math/rand/v2.Int64N).
	Rand func(n int64) int64
}

// withDefaults returns c with defaults filled in, or an error naming the
// first invalid setting.
func (c Config) withDefaults() (Config, error) {
	if c.Source == nil || c.Source.Name == "" || c.Source.Verifier == nil {
		return c, errors.New("poller: a source with a name and a verifier is required")
	}
	if err := verify.CheckEndpointURL(c.Endpoint); err != nil {
		return c, fmt.Errorf("poller: issuer %q: endpoint %q %w", c.Source.Name, c.Endpoint, err)
	}
	if c.MaxEvents < 0 || c.LongPollTimeout < 0 || c.TimeoutMargin < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 ||
		c.MaxResponseBytes < 0 || c.MaxSETBytes < 0 || c.Concurrency < 0 || c.ShutdownTimeout < 0 {
		return c, fmt.Errorf("poller: issuer %q: negative setting", c.Source.Name)
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.LongPollTimeout == 0 {
		c.LongPollTimeout = DefaultLongPollTimeout
	}
	if c.TimeoutMargin == 0 {
		c.TimeoutMargin = DefaultTimeoutMargin
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		return c, fmt.Errorf("poller: issuer %q: max backoff %v is less than min backoff %v", c.Source.Name, c.MaxBackoff, c.MinBackoff)
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxSETBytes == 0 {
		c.MaxSETBytes = DefaultMaxSETBytes
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Lease != nil && c.Lease.TTL() <= 0 {
		return c, fmt.Errorf("poller: issuer %q: lease TTL must be positive", c.Source.Name)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = outbound.Policy{Timeout: RequestTimeout(c.LongPollTimeout, c.TimeoutMargin), MaxBytes: c.MaxResponseBytes}.Client()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = Sleep
	}
	if c.Rand == nil {
		c.Rand = rand.Int64N
	}
	return c, nil
}

// BackoffCeiling is the longest wait before attempt n (1 for the first
// retry): min doubled n-1 times, capped at max. Callers add their jitter.
func BackoffCeiling(min, max time.Duration, n int) time.Duration {
	ceil := max
	if shift := n - 1; shift >= 0 && shift < 40 && min<<shift < ceil {
		ceil = min << shift
	}
	return ceil
}

// Sleep waits d or until ctx is done, returning ctx.Err() in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
