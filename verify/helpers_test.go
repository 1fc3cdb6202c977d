package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/verify"
)

// Fixed values every test issuer shares.
const (
	testIssuer   = "https://idp.example.com/"
	testAudience = "https://setgate.example.com/"
	testJTI      = "jti-1"

	caepBase       = "https://schemas.openid.net/secevent/caep/event-type/"
	evSessionRevok = caepBase + "session-revoked"
)

// testNow is the fixed clock of every Verifier built by newVerifier.
var testNow = time.Unix(1_750_000_000, 0)

func fixedNow() time.Time { return testNow }

// testKey is a signing key with the kid it is published under.
type testKey struct {
	kid  string
	priv crypto.Signer
}

func (k testKey) public() crypto.PublicKey { return k.priv.Public() }

// keyring holds one key per supported key type, generated once per test
// binary (RSA generation is slow under -race).
type keyring struct {
	rsa, rsa1024         testKey
	ec256, ec384, ec521  testKey
	ed                   testKey
	attacker, attackerEC testKey
}

var keys = sync.OnceValue(func() *keyring {
	mustRSA := func(bits int) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		return k
	}
	mustEC := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &keyring{
		rsa:        testKey{"rsa", mustRSA(2048)},
		rsa1024:    testKey{"rsa-1024", mustRSA(1024)},
		ec256:      testKey{"ec256", mustEC(elliptic.P256())},
		ec384:      testKey{"ec384", mustEC(elliptic.P384())},
		ec521:      testKey{"ec521", mustEC(elliptic.P521())},
		ed:         testKey{"ed25519", ed},
		attacker:   testKey{"rsa", mustRSA(2048)}, // same kid as the real key
		attackerEC: testKey{"attacker", mustEC(elliptic.P256())},
	}
})

// keyFor returns the default key and kid for alg.
func (r *keyring) keyFor(alg string) testKey {
	switch alg {
	case "ES256":
		return r.ec256
	case "ES384":
		return r.ec384
	case "ES512":
		return r.ec521
	case "EdDSA":
		return r.ed
	default:
		return r.rsa
	}
}

// jwk is one published key: the public key plus the optional members.
type jwk struct {
	kid, alg, use string
	keyOps        []string
	pub           crypto.PublicKey
}

func pubJWK(k testKey) jwk { return jwk{kid: k.kid, use: "sig", pub: k.public()} }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkMap renders a JWK by hand, so tests control every member.
func jwkMap(tb testing.TB, j jwk) map[string]any {
	tb.Helper()
	m := map[string]any{}
	switch k := j.pub.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		pt, err := k.Bytes()
		if err != nil {
			tb.Fatalf("ecdsa public key bytes: %v", err)
		}
		n := (len(pt) - 1) / 2
		m["x"] = b64(pt[1 : 1+n])
		m["y"] = b64(pt[1+n:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(k)
	default:
		tb.Fatalf("jwkMap: unsupported key %T", j.pub)
	}
	if j.kid != "" {
		m["kid"] = j.kid
	}
	if j.alg != "" {
		m["alg"] = j.alg
	}
	if j.use != "" {
		m["use"] = j.use
	}
	if j.keyOps != nil {
		m["key_ops"] = j.keyOps
	}
	return m
}

func jwksJSON(tb testing.TB, ks ...jwk) []byte {
	tb.Helper()
	list := make([]map[string]any, 0, len(ks))
	for _, k := range ks {
		list = append(list, jwkMap(tb, k))
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		tb.Fatalf("marshal jwks: %v", err)
	}
	return b
}

// defaultJWKS is the key set of the test issuer: one key per algorithm
// family plus keys that must never verify anything.
func defaultJWKS(tb testing.TB) []jwk {
	tb.Helper()
	r := keys()
	return []jwk{
		pubJWK(r.rsa), pubJWK(r.ec256), pubJWK(r.ec384), pubJWK(r.ec521), pubJWK(r.ed),
		{kid: "rsa-rs256", alg: "RS256", use: "sig", pub: r.rsa.public()},
		{kid: "rsa-enc", use: "enc", pub: r.rsa.public()},
		{kid: "rsa-encrypt-ops", keyOps: []string{"encrypt"}, pub: r.rsa.public()},
		{kid: "rsa-1024", use: "sig", pub: r.rsa1024.public()},
	}
}

// jwksServer is a real JWKS endpoint whose key set can be swapped at run
// time; it counts requests.
type jwksServer struct {
	*httptest.Server
	body  atomic.Pointer[[]byte]
	hits  atomic.Int64
	mode  atomic.Int32 // modeServe, modeFail or modeHang
	delay atomic.Int64 // nanoseconds to wait before answering (widens races)
	stop  chan struct{}
}

const (
	modeServe int32 = iota
	modeFail
	modeHang
)

func newJWKSServer(tb testing.TB, ks ...jwk) *jwksServer {
	tb.Helper()
	s := &jwksServer{stop: make(chan struct{})}
	s.set(tb, ks...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if d := time.Duration(s.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		switch s.mode.Load() {
		case modeFail:
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case modeHang:
			select {
			case <-r.Context().Done():
			case <-s.stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	tb.Cleanup(s.Close)
	tb.Cleanup(func() { close(s.stop) }) // runs first: frees hanging handlers
	return s
}

func (s *jwksServer) set(tb testing.TB, ks ...jwk) {
	tb.Helper()
	b := jwksJSON(tb, ks...)
	s.body.Store(&b)
}

func (s *jwksServer) setRaw(b []byte) { s.body.Store(&b) }

// newVerifier builds a Verifier for the test issuer that fetches keys from
// jwksURI. mutate may change the configuration and options.
func newVerifier(tb testing.TB, jwksURI string, mutate func(*verify.Config, *verify.Options)) *verify.Verifier {
	tb.Helper()
	cfg := verify.Config{
		Name:       "test",
		Issuer:     testIssuer,
		Audience:   []string{testAudience},
		JWKSURI:    jwksURI,
		Algorithms: verify.SupportedAlgorithms(),
	}
	opts := verify.Options{
		Now:                fixedNow,
		FetchTimeout:       10 * time.Second, // generous: -race with parallel tests is slow
		MinRefreshInterval: time.Hour,
	}
	if mutate != nil {
		mutate(&cfg, &opts)
	}
	v, err := verify.New(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatalf("verify.New: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// baseClaims is a valid Shared Signals SET: CAEP session-revoked about an
// email subject.
func baseClaims() map[string]any {
	return map[string]any{
		"iss":    testIssuer,
		"aud":    testAudience,
		"iat":    testNow.Unix() - 60,
		"jti":    testJTI,
		"txn":    "txn-1",
		"sub_id": map[string]any{"format": "email", "email": "user@example.com"},
		"events": map[string]any{
			evSessionRevok: map[string]any{
				"event_timestamp":   testNow.Unix() - 120,
				"initiating_entity": "policy",
				"reason_admin":      map[string]any{"en": "Policy violation"},
			},
		},
	}
}

// baseHeader is the header of a valid SET signed with k under alg.
func baseHeader(alg string, k testKey) map[string]any {
	return map[string]any{"typ": "secevent+jwt", "alg": alg, "kid": k.kid}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

// sign builds a compact JWS by hand from header and claims, signing with
// the jwt/v5 method named by header["alg"]. key is a crypto.Signer, or a
// []byte secret for HS*; alg "none" gives an empty signature.
func sign(tb testing.TB, key any, header, claims map[string]any) string {
	tb.Helper()
	alg, _ := header["alg"].(string)
	return signRaw(tb, key, alg, mustJSON(tb, header), mustJSON(tb, claims))
}

// signRaw signs exactly the given header and claims bytes, so tests can
// send duplicate members, invalid UTF-8 or non-objects.
func signRaw(tb testing.TB, key any, alg string, header, claims []byte) string {
	tb.Helper()
	input := b64(header) + "." + b64(claims)
	return input + "." + b64(signature(tb, key, alg, input))
}

func signature(tb testing.TB, key any, alg, input string) []byte {
	tb.Helper()
	if alg == "none" {
		return nil
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		tb.Fatalf("sign: no jwt signing method %q", alg)
	}
	if k, ok := key.(testKey); ok {
		key = k.priv
	}
	sig, err := m.Sign(input, key)
	if err != nil {
		tb.Fatalf("sign %s with %T: %v", alg, key, err)
	}
	return sig
}

// signDefault signs claims with the RS256 test key and the base header.
func signDefault(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	k := keys().rsa
	return sign(tb, k, baseHeader("RS256", k), claims)
}

// verifyErr runs v.Verify and returns the *verify.Error (nil on success).
func verifyErr(tb testing.TB, v *verify.Verifier, tok string) (*verify.SET, *verify.Error) {
	tb.Helper()
	set, err := v.Verify(context.Background(), []byte(tok))
	if err == nil {
		if set == nil {
			tb.Fatalf("Verify returned neither a SET nor an error")
		}
		return set, nil
	}
	if set != nil {
		tb.Errorf("Verify returned both a SET and an error %v", err)
	}
	var e *verify.Error
	if !errors.As(err, &e) {
		tb.Fatalf("Verify error %v (%T) is not a *verify.Error", err, err)
	}
	if got := verify.ErrorCode(err); got != e.Code {
		tb.Errorf("ErrorCode: want %q, got %q", e.Code, got)
	}
	return nil, e
}

// wantCode checks that tok gets code (or is accepted when code is "").
func wantCode(tb testing.TB, v *verify.Verifier, tok string, code verify.Code) (*verify.SET, *verify.Error) {
	tb.Helper()
	set, e := verifyErr(tb, v, tok)
	switch {
	case code == "" && e != nil:
		tb.Fatalf("want accepted, got %q: %v", e.Code, e)
	case code != "" && e == nil:
		tb.Fatalf("want %q, got accepted", code)
	case code != "" && e.Code != code:
		tb.Fatalf("want %q, got %q: %v", code, e.Code, e)
	}
	if e != nil {
		checkDescription(tb, e)
	}
	return set, e
}

// checkDescription asserts e carries one client-safe English sentence.
func checkDescription(tb testing.TB, e *verify.Error) {
	tb.Helper()
	d := e.Description
	if d == "" {
		tb.Errorf("empty description for %q", e.Code)
		return
	}
	// A sentence starts with a capital letter or with the claim it is
	// about ("sub_id has no format.").
	if r := []rune(d)[0]; !unicode.IsUpper(r) && !strings.HasPrefix(d, "sub_id") {
		tb.Errorf("description %q does not start a sentence", d)
	}
	if !strings.HasSuffix(d, ".") || strings.ContainsAny(d, "\n\r") || !strings.Contains(d, " ") {
		tb.Errorf("description %q is not one English sentence", d)
	}
	if !strings.HasPrefix(e.Error(), "verify: "+string(e.Code)+": ") {
		tb.Errorf("Error() = %q, want prefix %q", e.Error(), "verify: "+string(e.Code)+": ")
	}
}

// registeredCodes are the IANA Security Event Token error codes.
var registeredCodes = map[verify.Code]bool{
	verify.CodeInvalidRequest: true, verify.CodeInvalidKey: true, verify.CodeInvalidIssuer: true,
	verify.CodeInvalidAudience: true, verify.CodeAuthenticationFailed: true,
	verify.CodeAccessDenied: true, verify.CodeInvalidState: true,
}

// parts splits a compact token into its three parts.
func parts(tb testing.TB, tok string) (h, c, s string) {
	tb.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		tb.Fatalf("token has %d parts", len(p))
	}
	return p[0], p[1], p[2]
}
