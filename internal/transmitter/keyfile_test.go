package transmitter

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"
)

// TestLoadKey reads each PEM form a transmitter's key may come in.
func TestLoadKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(ec.Public())
	pemOf := func(blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, bl := range blocks {
			_ = pem.Encode(&b, bl)
		}
		return b.String()
	}
	tests := []struct {
		name    string
		pem     string
		wantAlg string
		wantErr string
	}{
		{"sec1 with parameters", pemOf(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "ES384", ""},
		{"pkcs1", pemOf(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), "RS256", ""},
		{"public key only", pemOf(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "", "no PEM private key"},
		{"encrypted", pemOf(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "", "encrypted"},
		{"garbage", "not pem", "", "no PEM private key"},
		{"bad der", pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "", "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := os.WriteFile(path, []byte(tt.pem), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg, err := AlgFor(key, ""); err != nil || alg != tt.wantAlg {
				t.Errorf("want alg %q, got %q %v", tt.wantAlg, alg, err)
			}
		})
	}
}

// TestThumbprint checks the RFC 7638 §3.1 example.
func TestThumbprint(t *testing.T) {
	got, err := Thumbprint(jwkset.JWKMarshal{
		KTY: jwkset.KtyRSA,
		E:   "AQAB",
		N:   "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
	})
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; err != nil || got != want {
		t.Errorf("want %q, got %q %v", want, got, err)
	}
}

func TestExpandEvent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"caep.session-revoked", "https://schemas.openid.net/secevent/caep/event-type/session-revoked"},
		{"risc.account-disabled", "https://schemas.openid.net/secevent/risc/event-type/account-disabled"},
		{"ssf.verification", "https://schemas.openid.net/secevent/ssf/event-type/verification"},
		{"https://example.com/event/custom", "https://example.com/event/custom"},
		{"urn:example:event", "urn:example:event"},
		{"other.thing", ""},
		{"caep.", ""},
	}
	for _, tt := range tests {
		got, err := ExpandEvent(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ExpandEvent(%q): want %q, got %q %v", tt.in, tt.want, got, err)
		}
	}
}
