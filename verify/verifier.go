package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Options tune how a Verifier fetches keys. The zero value is usable.
type Options struct {
	// Transport is the base HTTP transport for JWKS fetches; nil uses a
	// clone of http.DefaultTransport.
	Transport http.RoundTripper
	// FetchTimeout bounds one JWKS fetch, and how long a SET with an
	// unknown kid may wait for the refresh. Zero means 5s.
	FetchTimeout time.Duration
	// RefreshInterval is the periodic JWKS refresh. Zero means 1h.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two refreshes caused
	// by unknown kids. Zero means 30s.
	MinRefreshInterval time.Duration
	// MaxJWKSBytes caps a JWKS response. Zero means 1 MiB.
	MaxJWKSBytes int64
	// Logger receives refresh failures. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// States holds the verification states this issuer expects; nil
	// means a new, empty set. Pass the same States to a rebuilt Verifier
	// so a verification requested before a reload is still recognised.
	States *States
}

func (o *Options) defaults() {
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Second
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Hour
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = 30 * time.Second
	}
	if o.MaxJWKSBytes <= 0 {
		o.MaxJWKSBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	return http.DefaultTransport.(*http.Transport).Clone()
}

// Verifier checks SETs that claim to come from one issuer. It is safe for
// concurrent use. Close it to stop its JWKS refresh.
type Verifier struct {
	cfg    Config
	allow  map[string]bool
	keys   *keySet
	states *States
	now    func() time.Time
}

// New validates cfg and starts the issuer's JWKS cache (the first fetch
// happens now; if it fails the Verifier still starts and fetches again on
// the first SET).
func New(ctx context.Context, cfg Config, opts Options) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("verify: issuer %q: %w", cfg.Name, err)
	}
	opts.defaults()
	if cfg.Profile == "" {
		cfg.Profile = ProfileSSF
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = DefaultClockSkew
	}
	ks, err := newKeySet(ctx, cfg.JWKSURI, &opts)
	if err != nil {
		return nil, err
	}
	states := opts.States
	if states == nil {
		states = NewStates(opts.Now)
	}
	v := &Verifier{cfg: cfg, allow: make(map[string]bool), keys: ks, states: states, now: opts.Now}
	for _, a := range cfg.Algorithms {
		v.allow[a] = true
	}
	return v, nil
}

// Close stops the background JWKS refresh.
func (v *Verifier) Close() { v.keys.close() }

// Config returns the configuration the Verifier was built with (defaults
// filled in).
func (v *Verifier) Config() Config { return v.cfg }

// States returns the verification states this issuer expects.
func (v *Verifier) States() *States { return v.states }

// KeyStatus reports the JWKS cache.
func (v *Verifier) KeyStatus(ctx context.Context) KeyStatus { return v.keys.status(ctx) }

// Verify runs the whole pipeline on one compact SET. On failure the error
// is an [*Error] carrying the RFC 8935 code.
func (v *Verifier) Verify(ctx context.Context, raw []byte) (*SET, error) {
	set, e := v.verify(ctx, string(bytes.TrimSpace(raw)))
	if e != nil {
		return nil, e
	}
	return set, nil
}

// setAlloc is a SET allocated with room for one audience and one event,
// the usual case.
type setAlloc struct {
	set    SET
	aud    [1]string
	events [1]Event
}

// verify checks raw, the SET without surrounding space.
func (v *Verifier) verify(ctx context.Context, raw string) (*SET, *Error) {
	tok, e := parseCompact(raw)
	if e != nil {
		return nil, e
	}
	a := &setAlloc{set: SET{Raw: raw}}
	set := &a.set
	set.Aud, set.Events = a.aud[:0], a.events[:0]
	// The jti, for rejections; checkClaims checks it.
	set.JTI, _ = stringClaim(tok.claims, "jti")
	jti := set.JTI
	fail := func(e *Error) (*SET, *Error) {
		e.JTI = jti
		return nil, e
	}

	// Header.
	if e := v.checkHeader(tok.header, &set.Header); e != nil {
		return fail(e)
	}
	method := methods[set.Header.Alg]

	// Issuer, before any key work: the keys must belong to iss.
	iss, ok := knownClaim(tok.claims, "iss", []string{v.cfg.Issuer})
	if !ok || iss == "" {
		return fail(badRequest("The iss claim is missing or not a string."))
	}
	if iss != v.cfg.Issuer {
		return fail(reject(CodeInvalidIssuer, "Issuer %q is not the issuer configured for this endpoint.", truncate(iss, 128)))
	}
	set.Iss = iss

	// Key and signature.
	var one [1]any
	keys, e := v.keys.lookup(ctx, set.Header, one[:0])
	if e != nil {
		return fail(e)
	}
	verified := false
	for _, k := range keys {
		if method.Verify(tok.signingInput, tok.sig, k) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail(reject(CodeInvalidKey, "The signature does not verify with the issuer's key."))
	}

	// Audience.
	if e := v.checkAudience(tok.claims, set); e != nil {
		return fail(e)
	}

	// Claims, profile, subject and events.
	if e := v.checkClaims(tok.claims, set); e != nil {
		return fail(e)
	}
	return set, nil
}

func (v *Verifier) checkHeader(h members, out *Header) *Error {
	alg, ok := knownClaim(h, "alg", v.cfg.Algorithms)
	if !ok || alg == "" {
		return badRequest("The alg header is missing or not a string.")
	}
	if h.has("crit") {
		return badRequest("The crit header lists extensions this receiver does not understand.")
	}
	if h.has("typ") {
		t, ok := knownClaim(h, "typ", []string{"secevent+jwt", "application/secevent+jwt"})
		if !ok || !isSETType(t) {
			return badRequest("The typ header must be secevent+jwt.")
		}
		out.Typ = t
	} else if v.cfg.Profile == ProfileSSF {
		return badRequest("The typ header is missing; SETs must be explicitly typed secevent+jwt.")
	}
	if _, ok := methods[alg]; !ok || !v.allow[alg] {
		return reject(CodeInvalidKey, "Algorithm %q is not allowed for this issuer.", truncate(alg, 32))
	}
	out.Alg = alg
	if h.has("kid") {
		kid, ok := stringClaim(h, "kid")
		if !ok {
			return badRequest("The kid header is not a string.")
		}
		out.Kid = kid
	}
	return nil
}

// isSETType reports whether typ names application/secevent+jwt, with or
// without the application/ prefix, in any case (RFC 7515 §4.1.9).
func isSETType(typ string) bool {
	t := strings.ToLower(typ)
	return t == "secevent+jwt" || t == "application/secevent+jwt"
}

func (v *Verifier) checkAudience(c members, set *SET) *Error {
	raw, ok := c.get("aud")
	if !ok || string(raw) == "null" {
		return reject(CodeInvalidAudience, "The aud claim is missing; it must name this receiver.")
	}
	if one, ok := knownClaim(c, "aud", v.cfg.Audience); ok {
		set.Aud = append(set.Aud[:0], one)
	} else if err := json.Unmarshal(raw, &set.Aud); err != nil {
		return badRequest("The aud claim must be a string or an array of strings.")
	}
	for _, a := range set.Aud {
		if slices.Contains(v.cfg.Audience, a) {
			return nil
		}
	}
	return reject(CodeInvalidAudience, "The aud claim does not name this receiver.")
}
