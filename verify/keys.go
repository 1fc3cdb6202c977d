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
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
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
	// Skipped lists the keys of the last parsed response that are not
	// used, with the reason (the first 16).
	Skipped []SkippedKey `json:"skipped,omitempty"`
	// SkippedTotal counts the skipped keys of every response by reason.
	SkippedTotal map[SkipReason]int64 `json:"skipped_total,omitempty"`
}

// keySet is one issuer's JWKS: fetched from jwks_uri, parsed key by key
// (unusable keys are skipped and counted, see [SkipReason]), cached, and
// refreshed on a timer and (rate-limited) on an unknown kid.
type keySet struct {
	uri     string
	client  *http.Client
	cancel  context.CancelFunc
	group   singleflight.Group
	limiter *rate.Limiter
	timeout time.Duration
	log     *slog.Logger

	// table holds the keys in use and what the last JWKS response
	// skipped; nil before a response. Only refresh stores it, and every
	// refresh after the first runs in the singleflight group.
	table atomic.Pointer[keyTable]

	fetches      atomic.Int64
	failures     atomic.Int64
	mu           sync.Mutex
	last         time.Time
	lastErr      string
	skipped      []SkippedKey
	skippedTotal map[SkipReason]int64
}

// refreshKey is the singleflight key of every refresh: concurrent misses,
// whatever their kid, and the periodic refresh share one fetch.
const refreshKey = "refresh"

func newKeySet(ctx context.Context, uri string, o *Options) (*keySet, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ks := &keySet{uri: uri, cancel: cancel, timeout: o.FetchTimeout, log: o.Logger,
		limiter: rate.NewLimiter(rate.Every(o.MinRefreshInterval), 1)}
	// The outbound policy: every fetch bounded by FetchTimeout, bodies
	// capped, redirects followed only within the same https origin.
	client := outbound.Policy{
		Timeout:   o.FetchTimeout,
		MaxBytes:  o.MaxJWKSBytes,
		Redirects: outbound.SameOrigin,
		Transport: &countingTransport{base: o.transport(), ks: ks, max: o.MaxJWKSBytes},
	}.Client()
	ks.client = client
	// The first fetch is bounded by the fetch timeout, not cancelled with
	// the caller's context (a caller that must not wait bounds New
	// itself). Start even when the JWKS is down: an unknown kid fetches
	// again, and the timer keeps trying.
	fctx, fcancel := context.WithTimeout(ctx, o.FetchTimeout)
	_ = ks.refresh(fctx)
	fcancel()
	go ks.run(ctx, o.RefreshInterval)
	return ks, nil
}

func (ks *keySet) close() { ks.cancel() }

// run refreshes the keys every interval until ctx ends.
func (ks *keySet) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, _ = ks.group.Do(refreshKey, func() (any, error) {
			rctx, cancel := context.WithTimeout(ctx, ks.timeout)
			defer cancel()
			return nil, ks.refresh(rctx)
		})
	}
}

// refresh fetches and parses the JWKS once. Keys replace the cached ones
// only when the response holds at least one usable key; otherwise the
// fetch counts as failed and the cached keys stay (see parseJWKS).
func (ks *keySet) refresh(ctx context.Context) error {
	body, err := ks.get(ctx)
	if err == nil {
		var t *keyTable
		t, err = parseJWKS(body, ks.table.Load())
		if t != nil {
			ks.noteSkipped(ctx, t.skipped)
			ks.table.Store(t)
		}
		if err != nil {
			ks.fail(err)
		}
	}
	if err != nil {
		ks.log.WarnContext(ctx, "jwks refresh failed", "jwks_uri", ks.uri, "err", err)
	}
	return err
}

// get fetches the JWKS body. The transport counts the fetch and records
// network, status and size failures.
func (ks *keySet) get(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.uri, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// maxSkippedListed bounds how many skipped keys of one response are
// logged one by one and listed in [KeyStatus]; the totals count them all.
const maxSkippedListed = 16

// noteSkipped records the keys one response skipped, logs them and adds
// them to the per-reason totals.
func (ks *keySet) noteSkipped(ctx context.Context, skipped []SkippedKey) {
	listed := skipped[:min(len(skipped), maxSkippedListed)]
	for _, s := range listed {
		ks.log.WarnContext(ctx, "jwks key skipped", "jwks_uri", ks.uri, "kid", s.KID, "reason", s.Reason, "detail", s.Detail)
	}
	if more := len(skipped) - len(listed); more > 0 {
		ks.log.WarnContext(ctx, "jwks keys skipped", "jwks_uri", ks.uri, "more", more)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.skipped = slices.Clone(listed)
	for _, s := range skipped {
		if ks.skippedTotal == nil {
			ks.skippedTotal = make(map[SkipReason]int64)
		}
		ks.skippedTotal[s.Reason]++
	}
}

// lookup returns the keys that may verify a token with this header: the
// one named by kid (refreshing once, rate-limited, if it is unknown), or
// without kid every key whose type fits alg. Keys come from the table's
// keyfunc (see [keyTable.resolve]); [fit] vets each before it is used.
// The keys are appended to keys.
func (ks *keySet) lookup(ctx context.Context, h Header, keys []any) ([]any, *Error) {
	t := ks.table.Load()
	if t == nil {
		t = &keyTable{}
	}
	if h.Kid == "" {
		for _, j := range t.all(ctx) {
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
	k, found, e := t.resolve(ctx, h.Kid, h.Alg)
	if !found {
		if e := skippedError(t, h.Kid); e != nil {
			// The issuer publishes this kid, unusable: a refresh would
			// only spend the rate limit.
			return nil, e
		}
		var err error
		if t, err = ks.refreshUnknown(ctx); err == nil {
			if k, found, e = t.resolve(ctx, h.Kid, h.Alg); !found {
				if e := skippedError(t, h.Kid); e != nil {
					return nil, e
				}
				err = fmt.Errorf("%w %q", jwkset.ErrKeyNotFound, h.Kid)
			}
		}
		if err != nil {
			return nil, &Error{Code: CodeInvalidKey, Description: fmt.Sprintf("Key ID %q is not in the issuer's JWKS.", truncate(h.Kid, 64)), Err: err}
		}
	}
	if e != nil {
		return nil, e
	}
	return append(keys, k), nil
}

// resolve returns the key kid names, for alg. The table's keyfunc
// resolves kid to the key (and refuses a key whose alg member differs,
// RFC 7517 §4.4), asked once per SET; [fit]'s checks (use, key_ops, alg,
// type, curve, RSA size) of the same JWK were made when the table was
// built, so a key keyfunc accepts is still refused when it does not fit,
// with fit's description. found is false when the table has no key with
// kid.
func (t *keyTable) resolve(_ context.Context, kid, alg string) (key any, found bool, e *Error) {
	if t.kf == nil {
		return nil, false, nil
	}
	v := t.byKID[kid]
	tok, fits := (*jwt.Token)(nil), false
	if v != nil {
		tok, fits = v.fits[alg]
	}
	if !fits {
		tok = keyfuncToken(kid, alg)
	}
	key, err := t.keyfn(tok)
	if errors.Is(err, jwkset.ErrKeyNotFound) || v == nil {
		return nil, false, nil
	}
	if !fits {
		if _, e := fit(v.jwk, alg); e != nil {
			return nil, true, e
		}
	}
	if err != nil {
		return nil, true, &Error{Code: CodeInvalidKey, Description: fmt.Sprintf("Key %q does not fit algorithm %s.", truncate(kid, 64), alg), Err: err}
	}
	return key, true, nil
}

// all returns the table's keys, from its keyfunc's storage.
func (t *keyTable) all(ctx context.Context) []jwkset.JWK {
	if t.kf == nil {
		return nil
	}
	keys, err := t.kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return nil
	}
	return keys
}

// refreshUnknown refreshes the keys for a kid that is not in the cache,
// at most once per MinRefreshInterval, and returns the keys afterwards.
// Concurrent misses share one refresh, bounded by the fetch timeout; a
// caller whose context ends stops waiting for it.
func (ks *keySet) refreshUnknown(ctx context.Context) (*keyTable, error) {
	ch := ks.group.DoChan(refreshKey, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.timeout)
		defer cancel()
		if err := ks.limiter.Wait(rctx); err != nil {
			return nil, fmt.Errorf("jwks refresh rate-limited: %w", err)
		}
		return nil, ks.refresh(rctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t := ks.table.Load(); t != nil {
		return t, nil
	}
	return &keyTable{}, nil
}

// skippedError is the rejection of a SET whose kid names a key the JWKS
// publishes but setgate does not use; nil when kid was not skipped.
func skippedError(t *keyTable, kid string) *Error {
	s, ok := t.skippedKID(kid)
	if !ok {
		return nil
	}
	why := map[SkipReason]string{
		SkipPrivateMember: "its private key is published in the JWKS",
		SkipSymmetric:     "it is a symmetric key",
		SkipUnparsable:    "it is malformed",
		SkipWeak:          "it is too weak (" + s.Detail + ")",
		SkipUnsupported:   "its type is not supported",
	}[s.Reason]
	return &Error{Code: CodeInvalidKey, Description: fmt.Sprintf("Key %q of the issuer's JWKS is not used: %s.", truncate(kid, 64), why),
		Err: fmt.Errorf("jwks key skipped: %s: %s", s.Reason, s.Detail)}
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
	// Built only on refusal: fit runs on every SET.
	bad := func() *Error {
		return reject(CodeInvalidKey, "Key %q does not fit algorithm %s.", truncate(m.KID, 64), alg)
	}
	switch alg[:2] {
	case "RS", "PS":
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, bad()
		}
		if k.N.BitLen() < MinRSABits {
			return nil, reject(CodeInvalidKey, "Key %q is RSA with %d bits; at least %d are required.", truncate(m.KID, 64), k.N.BitLen(), MinRSABits)
		}
	case "ES":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k.Curve != curveFor(alg) {
			return nil, bad()
		}
	case "Ed":
		if _, ok := key.(ed25519.PublicKey); !ok {
			return nil, bad()
		}
	default:
		return nil, bad()
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

func (ks *keySet) status(context.Context) KeyStatus {
	s := KeyStatus{URI: ks.uri, Fetches: ks.fetches.Load(), Failures: ks.failures.Load()}
	if t := ks.table.Load(); t != nil {
		s.Keys = len(t.keys)
	}
	ks.mu.Lock()
	s.LastFetch, s.LastError = ks.last, ks.lastErr
	s.Skipped = slices.Clone(ks.skipped)
	s.SkippedTotal = maps.Clone(ks.skippedTotal)
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

// Close closes the response.
func (b *limitedBody) Close() error { return b.rc.Close() }
