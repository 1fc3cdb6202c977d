package verify

import (
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
	"slices"
	"testing"

	"github.com/MicahParks/jwkset"
)

// fuzzJWK renders a public key as a JWK JSON object, plus extra members.
func fuzzJWK(tb testing.TB, pub crypto.PublicKey, kid string, extra map[string]string) string {
	tb.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	b, _ := json.Marshal(j.Marshal())
	_ = json.Unmarshal(b, &m)
	for k, v := range extra {
		m[k] = v
	}
	b, _ = json.Marshal(m)
	return string(b)
}

// FuzzParseJWKS: whatever the body, parseJWKS does not panic; every key
// of the set is either usable or skipped with a known reason; a usable
// key is a public ECDSA, Ed25519 or RSA (of at least MinRSABits) key; an
// error means no usable key, and then at most the cached keys are kept.
func FuzzParseJWKS(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	// An odd 2048-bit modulus is all the parser looks at; generating a
	// real RSA key is slow under -race.
	nb := make([]byte, 256)
	_, _ = rand.Read(nb)
	nb[0] |= 0x80
	nb[255] |= 1
	rsaPub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}
	d := base64.RawURLEncoding.EncodeToString(ec.D.Bytes())
	good := fuzzJWK(f, &ec.PublicKey, "ec", nil)
	for _, seed := range []string{
		`{"keys":[` + good + `]}`,
		`{"keys":[` + good + `,` + fuzzJWK(f, edPub, "ed", nil) + `,` + fuzzJWK(f, rsaPub, "rsa", nil) + `]}`,
		`{"keys":[` + fuzzJWK(f, &ec.PublicKey, "priv", map[string]string{"d": d}) + `,` + good + `]}`,
		`{"keys":[` + fuzzJWK(f, rsaPub, "rsa-d", map[string]string{"d": "AQAB", "qi": "AQ"}) + `]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},` + good + `]}`,
		`{"keys":[{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed448","x":"AA"},{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB"},{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(nb) + `","e":"AQAAAAAAAAAAAQAB"}]}`,
		`{"keys":[1,"x",null,[],{}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","x5c":["AAAA"]}]}`,
		`{"keys":[{"kty":"EC","use":7}]}`,
		`{"keys":[]}`, `{"keys":null}`, `{}`, `[]`, `null`, ``, `{"keys":[` + good + `,` + good + `]}`,
	} {
		f.Add([]byte(seed))
	}
	reasons := SkipReasons()
	cached, err := parseJWKS([]byte(`{"keys":[`+good+`]}`), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// With keys cached from an earlier response: a response without a
		// usable key keeps them, unless it publishes their private key.
		if tab, err := parseJWKS(body, cached); errors.Is(err, errNoUsableKey) {
			if len(tab.keys) > len(cached.keys) || len(tab.keys) == 1 && !tab.keys[0].Key().(*ecdsa.PublicKey).Equal(&ec.PublicKey) {
				t.Fatalf("want at most the cached key kept, got %d keys", len(tab.keys))
			}
		}

		tab, err := parseJWKS(body, nil)
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(body, &set) != nil || set.Keys == nil {
			if err == nil || tab != nil {
				t.Fatalf("want an error and no table for a body that is not a JWK Set, got %v, %+v", err, tab)
			}
			return
		}
		if tab == nil {
			t.Fatalf("want a table for a JWK Set, got error %v", err)
		}
		if len(tab.keys)+len(tab.skipped) != len(set.Keys) {
			t.Fatalf("%d keys: %d usable + %d skipped", len(set.Keys), len(tab.keys), len(tab.skipped))
		}
		if (err != nil) != (len(tab.keys) == 0) || err != nil && !errors.Is(err, errNoUsableKey) {
			t.Fatalf("want errNoUsableKey exactly when no key is usable, got %v with %d keys", err, len(tab.keys))
		}
		for _, s := range tab.skipped {
			if !slices.Contains(reasons, s.Reason) || s.Detail == "" {
				t.Fatalf("skipped key without a known reason or detail: %+v", s)
			}
		}
		for _, j := range tab.keys {
			switch k := j.Key().(type) {
			case *ecdsa.PublicKey:
				if !k.Curve.IsOnCurve(k.X, k.Y) {
					t.Fatalf("usable EC key off its curve: %+v", j.Marshal())
				}
			case ed25519.PublicKey:
			case *rsa.PublicKey:
				if k.N.BitLen() < MinRSABits || k.E < 3 {
					t.Fatalf("usable RSA key too weak: %d bits, e=%d", k.N.BitLen(), k.E)
				}
			default:
				t.Fatalf("usable key of type %T", k)
			}
			m := j.Marshal()
			if m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || m.K != "" || len(m.OTH) > 0 {
				t.Fatalf("usable key keeps private members: %+v", m)
			}
		}
	})
}
