// Package transmitter is the push, poll and SSF transmitter used by the
// demo, the bench and the tests: a small but real SET transmitter that owns
// signing keys, serves its JWKS over HTTP on a loopback address, signs SETs
// and pushes them (RFC 8935), queues them for polling (RFC 8936) and runs
// an OpenID Shared Signals (SSF) transmitter with discovery and stream
// management.
//
// It is demo and test equipment, not a product surface: keys live in
// memory and the JWKS server is plain HTTP on loopback (which setgate
// accepts only for loopback hosts). It lives under internal/ because the
// release binary links it (for the demo and bench verbs); nothing outside
// this module may import it.
package transmitter

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Event type URIs the transmitter knows by short name.
const (
	SessionRevoked   = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	CredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	AccountDisabled  = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	DeviceCompliance = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change"
	Verification     = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// Options configure a Transmitter.
type Options struct {
	// Alg is the signing algorithm: ES256 (default), RS256 or EdDSA.
	Alg string
	// Audience is put in every SET's aud. Default "https://setgate.example/".
	Audience string
	// Addr is the JWKS listen address. Default "127.0.0.1:0".
	Addr string
}

// Transmitter signs SETs as one issuer whose iss is its own base URL.
type Transmitter struct {
	opts   Options
	srv    *http.Server
	ln     net.Listener
	base   string
	client *http.Client

	mu   sync.RWMutex
	key  crypto.Signer
	kid  string
	jwks []byte

	jwksHits atomic.Int64
	seq      atomic.Int64
}

// New generates a key and starts serving the JWKS at <URL>jwks.
func New(opts Options) (*Transmitter, error) {
	if opts.Alg == "" {
		opts.Alg = "ES256"
	}
	if opts.Audience == "" {
		opts.Audience = "https://setgate.example/"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("transmitter: %w", err)
	}
	t := &Transmitter{
		opts:   opts,
		ln:     ln,
		base:   "http://" + ln.Addr().String() + "/",
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
	}
	if err := t.Rotate(); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		t.jwksHits.Add(1)
		t.mu.RLock()
		body := t.jwks
		t.mu.RUnlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

// Close stops the JWKS server.
func (t *Transmitter) Close() error { return t.srv.Close() }

// Issuer is the iss of every SET (the transmitter's base URL).
func (t *Transmitter) Issuer() string { return t.base }

// JWKSURL is where the public keys are served.
func (t *Transmitter) JWKSURL() string { return t.base + "jwks" }

// Audience is the aud of every SET.
func (t *Transmitter) Audience() string { return t.opts.Audience }

// Alg is the signing algorithm.
func (t *Transmitter) Alg() string { return t.opts.Alg }

// JWKSHits counts JWKS requests served.
func (t *Transmitter) JWKSHits() int64 { return t.jwksHits.Load() }

// Rotate replaces the signing key with a new one under a new kid; the JWKS
// then serves only the new key.
func (t *Transmitter) Rotate() error {
	key, err := NewKey(t.opts.Alg)
	if err != nil {
		return fmt.Errorf("transmitter: %w", err)
	}
	kidBytes := make([]byte, 8)
	_, _ = rand.Read(kidBytes)
	kid := hex.EncodeToString(kidBytes)
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(t.opts.Alg), USE: jwkset.UseSig},
	})
	if err != nil {
		return fmt.Errorf("transmitter: jwk: %w", err)
	}
	body, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.key, t.kid, t.jwks = key, kid, body
	t.mu.Unlock()
	return nil
}

// Sign signs claims as a SET with typ secevent+jwt and the current kid.
func (t *Transmitter) Sign(claims map[string]any) (string, error) {
	t.mu.RLock()
	key, kid := t.key, t.kid
	t.mu.RUnlock()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(t.opts.Alg), jwt.MapClaims(claims))
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = kid
	return tok.SignedString(key)
}

// NewJTI returns a fresh unique jti.
func (t *Transmitter) NewJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(b), t.seq.Add(1))
}

// Claims returns SSF-profile claims for one event about an email subject.
func (t *Transmitter) Claims(eventType string, payload map[string]any, email string) map[string]any {
	if payload == nil {
		payload = map[string]any{}
	}
	return map[string]any{
		"iss":    t.base,
		"jti":    t.NewJTI(),
		"iat":    time.Now().Unix(),
		"aud":    t.opts.Audience,
		"txn":    t.NewJTI(),
		"sub_id": map[string]any{"format": "email", "email": email},
		"events": map[string]any{eventType: payload},
	}
}

// SET signs one SSF event and returns its jti and compact form.
func (t *Transmitter) SET(eventType string, payload map[string]any, email string) (jti, token string, err error) {
	c := t.Claims(eventType, payload, email)
	token, err = t.Sign(c)
	return c["jti"].(string), token, err
}

// Response is the outcome of one push.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Proto and StatusLine are the answer's protocol and status
	// ("HTTP/1.1", "202 Accepted").
	Proto, StatusLine string
}

// Push POSTs token to url as RFC 8935 requires, with the bearer credential.
func (t *Transmitter) Push(ctx context.Context, url, bearer, token string) (Response, error) {
	return push(ctx, t.client, url, bearer, token)
}
