package transmitter

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/MicahParks/jwkset"

	"github.com/setgate/setgate/internal/pemkey"
)

// The keys of an operator's transmitter ("setgate send", "setgate bench
// --url"): read from a PEM file, or generated and written to one, with
// their public JWK under an RFC 7638 thumbprint kid.

// LoadKey reads the first private key of the PEM file at path (see
// [pemkey.Parse]). Its errors name the file as the --key flag.
func LoadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("send: --key: %w", err)
	}
	key, err := pemkey.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("send: --key %s: %w", path, err)
	}
	return key, nil
}

// AlgFor returns the JWS algorithm for key: want if it fits the key, or
// the key's natural one when want is empty.
func AlgFor(key crypto.Signer, want string) (string, error) {
	var fits []string
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			fits = []string{"ES256"}
		case elliptic.P384():
			fits = []string{"ES384"}
		case elliptic.P521():
			fits = []string{"ES512"}
		default:
			return "", fmt.Errorf("send: unsupported EC curve %s", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case ed25519.PublicKey:
		fits = []string{"EdDSA"}
	default:
		return "", fmt.Errorf("send: unsupported key type %T", k)
	}
	if want == "" {
		return fits[0], nil
	}
	for _, a := range fits {
		if a == want {
			return a, nil
		}
	}
	return "", fmt.Errorf("send: --alg %s does not fit this key (it fits %s)", want, strings.Join(fits, ", "))
}

// NewKey generates a private key for alg.
func NewKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("send: --alg %q is not one of ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA", alg)
	}
}

// WriteKey writes a new PKCS#8 private key for alg to path (which must
// not exist; mode 0600) and prints its public JWKS to w.
func WriteKey(path, alg, kid string, w io.Writer) error {
	key, err := NewKey(alg)
	if err != nil {
		return err
	}
	jwk, _, err := PublicJWK(key.Public(), alg, kid)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	out, err := json.MarshalIndent(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk}}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// PublicJWK returns the public JWK of pub for alg with kid (the RFC 7638
// thumbprint when kid is empty), and that kid.
func PublicJWK(pub crypto.PublicKey, alg, kid string) (jwkset.JWKMarshal, string, error) {
	bare, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return jwkset.JWKMarshal{}, "", fmt.Errorf("send: jwk: %w", err)
	}
	if kid == "" {
		if kid, err = Thumbprint(bare.Marshal()); err != nil {
			return jwkset.JWKMarshal{}, "", err
		}
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(alg), USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, "", fmt.Errorf("send: jwk: %w", err)
	}
	return jwk.Marshal(), kid, nil
}

// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url: the hash
// of the required members in lexicographic order, without whitespace.
func Thumbprint(m jwkset.JWKMarshal) (string, error) {
	var v any
	switch m.KTY {
	case jwkset.KtyEC:
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{string(m.CRV), string(m.KTY), m.X, m.Y}
	case jwkset.KtyRSA:
		v = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{m.E, string(m.KTY), m.N}
	case jwkset.KtyOKP:
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{string(m.CRV), string(m.KTY), m.X}
	default:
		return "", fmt.Errorf("send: no thumbprint for key type %q", m.KTY)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
