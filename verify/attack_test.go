package verify_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

// TestAttackAlgConfusion signs with HMAC using the issuer's public RSA key
// as the secret, in every encoding an attacker might try.
func TestAttackAlgConfusion(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	v := newVerifier(t, srv.URL, nil)
	pub := keys().rsa.public().(*rsa.PublicKey)

	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	secrets := map[string][]byte{
		"PKIX PEM":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"PKCS1 PEM": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"PKIX DER":  pkix,
		"PKCS1 DER": pkcs1,
		"JWK n":     pub.N.Bytes(),
		"JWKS JSON": jwksJSON(t, pubJWK(keys().rsa)),
	}
	for name, secret := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			t.Run(name+" "+alg, func(t *testing.T) {
				t.Parallel()
				for _, kid := range []string{"rsa", ""} {
					h := map[string]any{"typ": "secevent+jwt", "alg": alg}
					if kid != "" {
						h["kid"] = kid
					}
					wantCode(t, v, sign(t, secret, h, baseClaims()), verify.CodeInvalidKey)
				}
			})
		}
	}
}

// TestAttackHeaderKeys offers the attacker's key through every header that
// can carry or point at a key. None may be used, and the attacker's server
// must never be contacted.
func TestAttackHeaderKeys(t *testing.T) {
	t.Parallel()
	r := keys()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	evil := newJWKSServer(t, pubJWK(r.attacker), pubJWK(r.attackerEC))
	v := newVerifier(t, srv.URL, nil)

	cert := selfSigned(t, r.attacker)
	attackerJWK := jwkMap(t, pubJWK(r.attacker))
	attackerJWKNoKid := jwkMap(t, jwk{pub: r.attacker.public()})

	tests := []struct {
		name   string
		header map[string]any
	}{
		{"jku with our kid", map[string]any{"jku": evil.URL, "kid": "rsa"}},
		{"jku with a kid only the attacker has", map[string]any{"jku": evil.URL + "/jwks.json", "kid": "attacker-rsa"}},
		{"jku without kid", map[string]any{"jku": evil.URL}},
		{"x5u", map[string]any{"x5u": evil.URL + "/cert.pem", "kid": "rsa"}},
		{"x5c with our kid", map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(cert)}, "kid": "rsa"}},
		{"x5c without kid", map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(cert)}}},
		{"inline jwk with our kid", map[string]any{"jwk": attackerJWK, "kid": "rsa"}},
		{"inline jwk without kid", map[string]any{"jwk": attackerJWKNoKid}},
		{"everything at once", map[string]any{"jku": evil.URL, "x5u": evil.URL, "jwk": attackerJWK,
			"x5c": []string{base64.StdEncoding.EncodeToString(cert)}, "kid": "attacker-rsa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]any{"typ": "secevent+jwt", "alg": "RS256"}
			for k, val := range tt.header {
				h[k] = val
			}
			_, e := wantCode(t, v, sign(t, r.attacker, h, baseClaims()), verify.CodeInvalidKey)
			if e.JTI != testJTI {
				t.Errorf("want JTI %q, got %q", testJTI, e.JTI)
			}
		})
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("want 0 requests to the attacker's server, got %d", n)
	}
	// The real key still works: nothing above poisoned the cache.
	wantCode(t, v, signDefault(t, baseClaims()), "")
}

func selfSigned(tb testing.TB, k testKey) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp.example.com"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.public(), k.priv)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return der
}

// TestAttackKid sends hostile kid values: they are rejected without a
// panic, and over-long ones without a JWKS fetch.
func TestAttackKid(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	v := newVerifier(t, srv.URL, nil)
	k := keys().rsa

	tests := []struct {
		name string
		kid  string
	}{
		{"10k characters", strings.Repeat("k", 10_000)},
		{"10k multibyte characters", strings.Repeat("é", 10_000)},
		{"path traversal", "../../../../etc/passwd"},
		{"NUL and control characters", "rsa\x00\r\n"},
		{"SQL", "rsa' OR '1'='1"},
		{"our kid with a suffix", "rsa "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := baseHeader("RS256", k)
			h["kid"] = tt.kid
			_, e := wantCode(t, v, sign(t, k, h, baseClaims()), verify.CodeInvalidKey)
			if len(e.Description) > 300 {
				t.Errorf("want a short description, got %d bytes", len(e.Description))
			}
		})
	}
	// The initial fetch, then at most one rate-limited refresh for all the
	// unknown kids above.
	if n := srv.hits.Load(); n > 2 {
		t.Errorf("want at most 2 JWKS fetches, got %d", n)
	}
}
