package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/setgate/setgate/internal/outbound"
)

// methods is the closed set of algorithms setgate can verify. It never
// holds HMAC or none, whatever an issuer's configuration says.
var methods = map[string]jwt.SigningMethod{
	"RS256": jwt.SigningMethodRS256, "RS384": jwt.SigningMethodRS384, "RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256, "PS384": jwt.SigningMethodPS384, "PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256, "ES384": jwt.SigningMethodES384, "ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

// MinRSABits is the smallest RSA modulus accepted (CAEP Interop Profile).
const MinRSABits = 2048

// KeyStatus describes an issuer's JWKS cache.
type KeyStatus struct {
	URI       string    `json:"uri"`
	Keys      int       `json:"keys"`
	Fetches   int64     `json:"fetches"`
	Failures  int64     `json:"failures"`
	LastFetch time.Time `json:"last_fetch,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// keySet is one issuer's JWKS: fetched by keyfunc from jwks_uri, cached,
// refreshed on a timer and (rate-limited) on an unknown kid.
type keySet struct {
	uri     string
	kf      keyfunc.Keyfunc
	cancel  context.CancelFunc
	group   singleflight.Group
	timeout time.Duration
	log     *slog.Logger

	fetches  atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	last     time.Time
	lastErr  string

	// byKID caches keys found in the storage, so a SET does not copy the
	// whole key set. Every JWKS response clears it once jwkset has
	// replaced the keys (the body is closed after that); gen makes sure a
	// lookup that read the storage before a refresh cannot insert a key
	// after it.
	cacheMu sync.RWMutex
	byKID   map[string]jwkset.JWK
	gen     atomic.Uint64
}

func newKeySet(ctx context.Context, uri string, o *Options) (*keySet, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ks := &keySet{uri: uri, cancel: cancel, timeout: o.FetchTimeout, log: o.Logger}
	// The outbound policy: every fetch bounded by FetchTimeout, bodies
	// capped, redirects followed only within the same https origin.
	client := outbound.Policy{
		Timeout:   o.FetchTimeout,
		MaxBytes:  o.MaxJWKSBytes,
		Redirects: outbound.SameOrigin,
		Transport: &countingTransport{base: o.transport(), ks: ks, max: o.MaxJWKSBytes},
	}.Client()
	noErr := true
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{uri}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               o.FetchTimeout,
		NoErrorReturnFirstHTTPReq: &noErr, // start even when the JWKS is down; cached keys arrive later
		RateLimitWaitMax:          o.FetchTimeout,
		RefreshInterval:           o.RefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(o.MinRefreshInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				ks.log.WarnContext(ctx, "jwks refresh failed", "jwks_uri", u, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("verify: jwks %s: %w", uri, err)
	}
	ks.kf = kf
	return ks, nil
}

func (ks *keySet) close() { ks.cancel() }

// lookup returns the keys that may verify a token with this header: the
// one named by kid (refreshing once, rate-limited, if it is unknown), or
// without kid every key whose type fits alg.
func (ks *keySet) lookup(ctx context.Context, h Header) ([]any, *Error) {
	if h.Kid == "" {
		all, err := ks.kf.Storage().KeyReadAll(ctx)
		if err != nil {
			return nil, &Error{Code: CodeInvalidKey, Description: "The issuer's keys are not available.", Err: err}
		}
		var keys []any
		for _, j := range all {
			if k, e := fit(j, h.Alg); e == nil {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, reject(CodeInvalidKey, "No key of the issuer fits algorithm %s (and the SET has no kid).", h.Alg)
		}
		return keys, nil
	}
	if len(h.Kid) > 256 {
		return nil, reject(CodeInvalidKey, "The kid header is too long.")
	}
	j, err := ks.cached(ctx, h.Kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		// Concurrent misses for one kid share one refresh; the refresh
		// itself is rate-limited inside jwkset and bounded by the timeout.
		// A caller whose context ends stops waiting for it.
		ch := ks.group.DoChan(h.Kid, func() (any, error) {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.timeout)
			defer cancel()
			return ks.kf.Storage().KeyRead(rctx, h.Kid)
		})
		select {
		case res := <-ch:
			if res.Err == nil {
				j, err = res.Val.(jwkset.JWK), nil
			} else {
				err = res.Err
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, &Error{Code: CodeInvalidKey, Description: fmt.Sprintf("Key ID %q is not in the issuer's JWKS.", truncate(h.Kid, 64)), Err: err}
	}
	k, e := fit(j, h.Alg)
	if e != nil {
		return nil, e
	}
	return []any{k}, nil
}

// cached returns the key with kid from the cache, without a fetch; a miss
// is jwkset.ErrKeyNotFound. Storage().KeyRead would refresh on a miss
// itself, outside the singleflight group: concurrent misses would race for
// the rate limiter and all but the first would be rejected.
func (ks *keySet) cached(ctx context.Context, kid string) (jwkset.JWK, error) {
	ks.cacheMu.RLock()
	j, ok := ks.byKID[kid]
	ks.cacheMu.RUnlock()
	if ok {
		return j, nil
	}
	gen := ks.gen.Load()
	all, err := ks.kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return jwkset.JWK{}, err
	}
	for _, j := range all {
		if j.Marshal().KID == kid {
			ks.cacheMu.Lock()
			if ks.gen.Load() == gen {
				if ks.byKID == nil {
					ks.byKID = make(map[string]jwkset.JWK)
				}
				ks.byKID[kid] = j
			}
			ks.cacheMu.Unlock()
			return j, nil
		}
	}
	return jwkset.JWK{}, jwkset.ErrKeyNotFound
}

// invalidate forgets the cached keys; called when a JWKS response is done.
func (ks *keySet) invalidate() {
	ks.cacheMu.Lock()
	ks.gen.Add(1)
	ks.byKID = nil
	ks.cacheMu.Unlock()
}

// fit checks that a JWK may verify alg: its use, key_ops and alg members
// allow it, and its key type and size match the algorithm.
func fit(j jwkset.JWK, alg string) (any, *Error) {
	m := j.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, reject(CodeInvalidKey, "Key %q is not a signature key (use %q).", truncate(m.KID, 64), m.USE)
	}
	if len(m.KEYOPS) > 0 {
		ok := false
		for _, op := range m.KEYOPS {
			ok = ok || op == jwkset.KeyOpsVerify
		}
		if !ok {
			return nil, reject(CodeInvalidKey, "Key %q does not allow verify.", truncate(m.KID, 64))
		}
	}
	if a := m.ALG.String(); a != "" && a != alg {
		return nil, reject(CodeInvalidKey, "Key %q is for %s, not %s.", truncate(m.KID, 64), a, alg)
	}
	key := j.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	bad := reject(CodeInvalidKey, "Key %q does not fit algorithm %s.", truncate(m.KID, 64), alg)
	switch alg[:2] {
	case "RS", "PS":
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, bad
		}
		if k.N.BitLen() < MinRSABits {
			return nil, reject(CodeInvalidKey, "Key %q is RSA with %d bits; at least %d are required.", truncate(m.KID, 64), k.N.BitLen(), MinRSABits)
		}
	case "ES":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k.Curve != curveFor(alg) {
			return nil, bad
		}
	case "Ed":
		if _, ok := key.(ed25519.PublicKey); !ok {
			return nil, bad
		}
	default:
		return nil, bad
	}
	return key, nil
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

func (ks *keySet) status(ctx context.Context) KeyStatus {
	s := KeyStatus{URI: ks.uri, Fetches: ks.fetches.Load(), Failures: ks.failures.Load()}
	if all, err := ks.kf.Storage().KeyReadAll(ctx); err == nil {
		s.Keys = len(all)
	}
	ks.mu.Lock()
	s.LastFetch, s.LastError = ks.last, ks.lastErr
	ks.mu.Unlock()
	return s
}

// record counts one fetch and its outcome.
func (ks *keySet) record(err error) {
	ks.fetches.Add(1)
	ks.mu.Lock()
	ks.last = time.Now()
	ks.lastErr = ""
	ks.mu.Unlock()
	if err != nil {
		ks.fail(err)
	}
}

// fail records a failed fetch (or a fetch whose body turned out bad).
func (ks *keySet) fail(err error) {
	ks.failures.Add(1)
	ks.mu.Lock()
	ks.lastErr = err.Error()
	ks.mu.Unlock()
}

// countingTransport counts JWKS fetches, records failures and caps the
// size of a JWKS response.
type countingTransport struct {
	base http.RoundTripper
	ks   *keySet
	max  int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.ks.record(err)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if sameOriginRedirect(req, resp) {
			return resp, nil // followed; the next answer is counted
		}
		t.ks.record(fmt.Errorf("status %d", resp.StatusCode))
	} else {
		t.ks.record(nil)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, ks: t.ks}
	return resp, nil
}

// sameOriginRedirect reports whether resp is a redirect the outbound
// policy follows for a JWKS: to the same https origin.
func sameOriginRedirect(req *http.Request, resp *http.Response) bool {
	if resp.StatusCode < 300 || resp.StatusCode > 399 || req.URL.Scheme != "https" {
		return false
	}
	loc, err := resp.Location()
	return err == nil && loc.Scheme == "https" && outbound.OriginsMatch(req.URL, loc)
}

// limitedBody fails the read once more than the limit has been read.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	ks   *keySet
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		err := errors.New("jwks response too large")
		b.ks.fail(err)
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		err := errors.New("jwks response too large")
		b.ks.fail(err)
		return 0, err
	}
	return n, err
}

// Close closes the response; jwkset closes it after replacing the key set
// (or failing to), so the key cache is cleared here.
func (b *limitedBody) Close() error {
	b.ks.invalidate()
	return b.rc.Close()
}
