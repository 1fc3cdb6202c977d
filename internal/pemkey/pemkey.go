// Package pemkey reads the private keys setgate signs with from PEM
// (RFC 7468): PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS#1
// ("RSA PRIVATE KEY"). The poller's private_key_jwt client assertions and
// "setgate send" share it.
package pemkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrNotPrivateKey is returned by [ParseBlock] for a block whose type is
// not one of the private key types.
var ErrNotPrivateKey = errors.New("not a private key")

// ParseBlock parses one PEM block holding a private key and returns the
// key as x509 returns it. A block of another type (EC PARAMETERS, a
// certificate, a public key, an encrypted key) yields [ErrNotPrivateKey];
// a DER error is returned as x509 returns it.
func ParseBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("PEM block %q: %w", block.Type, ErrNotPrivateKey)
}

// Parse returns the first private key in data, skipping the blocks that
// hold none (EC PARAMETERS, certificates, public keys): an ECDSA, RSA or
// Ed25519 key. An encrypted key is refused with a hint to decrypt it.
func Parse(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, errors.New("no PEM private key (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
		}
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the key is encrypted; decrypt it first (openssl pkcs8 -nocrypt)")
		}
		k, err := ParseBlock(block)
		if errors.Is(err, ErrNotPrivateKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", block.Type, err)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
	}
}
