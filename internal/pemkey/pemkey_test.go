package pemkey

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func pemOf(blocks ...*pem.Block) []byte {
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	return b
}

// TestParse: the first private key is found behind blocks that hold none;
// public keys, encrypted keys and bad DER are refused with what to do.
func TestParse(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ed)
	pub, _ := x509.MarshalPKIXPublicKey(ec.Public())
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"sec1 behind a certificate", pemOf(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ""},
		{"pkcs8 ed25519", pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ""},
		{"public key only", pemOf(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "no PEM private key"},
		{"encrypted", pemOf(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"bad der", pemOf(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}), "RSA PRIVATE KEY: "},
		{"not pem", []byte("nope"), "no PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := Parse(tt.data)
			switch {
			case tt.wantErr == "" && (err != nil || key == nil):
				t.Fatalf("want a key, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			}
		})
	}
}

// TestParseBlockNotPrivateKey: a block of another type is told apart, so
// a caller may skip it or name it.
func TestParseBlockNotPrivateKey(t *testing.T) {
	for _, typ := range []string{"PUBLIC KEY", "CERTIFICATE", "EC PARAMETERS", "ENCRYPTED PRIVATE KEY"} {
		if _, err := ParseBlock(&pem.Block{Type: typ}); !errors.Is(err, ErrNotPrivateKey) {
			t.Errorf("%s: want ErrNotPrivateKey, got %v", typ, err)
		}
	}
}

// FuzzParse: any input yields a key or an error, never a panic, and never
// both.
func FuzzParse(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	f.Add(pemOf(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := Parse(data)
		if (key == nil) == (err == nil) {
			t.Fatalf("want a key or an error, got %v and %v", key, err)
		}
	})
}
