package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// TestKeyTableKeyfunc: every accepted JWKS response hands exactly its
// vetted keys, in document order, to a jwkset storage under a keyfunc
// Keyfunc; that Keyfunc resolves kid to key (for golang-jwt too), the
// first key wins a repeated kid, verify's own fit checks still refuse a
// key keyfunc resolves, and a later response leaves an earlier table's
// storage untouched.
func TestKeyTableKeyfunc(t *testing.T) {
	ctx := context.Background()
	gen := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first, second, enc, ops, a384, next := gen(), gen(), gen(), gen(), gen(), gen()
	body := `{"keys":[` + strings.Join([]string{
		fuzzJWK(t, &first.PublicKey, "dup", nil),
		fuzzJWK(t, &second.PublicKey, "dup", nil),
		`{"kty":"oct","kid":"sym","k":"c2VjcmV0"}`,
		fuzzJWK(t, &enc.PublicKey, "enc", map[string]string{"use": "enc"}),
		fuzzJWK(t, &a384.PublicKey, "es384", map[string]string{"alg": "ES384"}),
		strings.Replace(fuzzJWK(t, &ops.PublicKey, "ops", nil), "{", `{"key_ops":["sign"],`, 1),
	}, ",") + `]}`
	tab, err := parseJWKS([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tab.kf == nil {
		t.Fatal("want a keyfunc over the vetted keys, got none")
	}
	stored, err := tab.kf.Storage().KeyReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(tab.keys) || len(stored) != 5 {
		t.Fatalf("want the 5 vetted keys in the storage, got %d (table %d)", len(stored), len(tab.keys))
	}
	for i := range stored {
		if stored[i].Marshal().KID != tab.keys[i].Marshal().KID {
			t.Fatalf("key %d: want kid %q, got %q", i, tab.keys[i].Marshal().KID, stored[i].Marshal().KID)
		}
	}

	tests := []struct {
		name, kid, alg string
		want           *ecdsa.PrivateKey
		wantFound      bool
		wantDesc       string
	}{
		{name: "repeated kid: first key", kid: "dup", alg: "ES256", want: first, wantFound: true},
		{name: "unknown kid", kid: "nope", alg: "ES256"},
		{name: "skipped kid is not in the storage", kid: "sym", alg: "ES256"},
		{name: "use enc", kid: "enc", alg: "ES256", wantFound: true, wantDesc: `Key "enc" is not a signature key (use "enc").`},
		{name: "alg member", kid: "es384", alg: "ES256", wantFound: true, wantDesc: `Key "es384" is for ES384, not ES256.`},
		{name: "key_ops without verify", kid: "ops", alg: "ES256", wantFound: true, wantDesc: `Key "ops" does not allow verify.`},
		{name: "wrong curve", kid: "dup", alg: "ES384", wantFound: true, wantDesc: `Key "dup" does not fit algorithm ES384.`},
		{name: "wrong type", kid: "dup", alg: "RS256", wantFound: true, wantDesc: `Key "dup" does not fit algorithm RS256.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, found, e := tab.resolve(ctx, tt.kid, tt.alg)
			if found != tt.wantFound {
				t.Fatalf("want found %v, got %v", tt.wantFound, found)
			}
			if tt.wantDesc != "" {
				if e == nil || e.Code != CodeInvalidKey || e.Description != tt.wantDesc {
					t.Fatalf("want invalid_key %q, got %+v", tt.wantDesc, e)
				}
				return
			}
			if e != nil {
				t.Fatalf("want no error, got %v", e)
			}
			if tt.want == nil {
				if key != nil {
					t.Fatalf("want no key, got %T", key)
				}
				return
			}
			if k, ok := key.(*ecdsa.PublicKey); !ok || !k.Equal(&tt.want.PublicKey) {
				t.Fatalf("want the first key with kid %q, got %T", tt.kid, key)
			}
		})
	}

	// golang-jwt takes the same Keyfunc.
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "x"})
	tok.Header["kid"] = "dup"
	signed, err := tok.SignedString(first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(signed, tab.kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"})); err != nil {
		t.Fatalf("want the keyfunc to verify for golang-jwt, got %v", err)
	}

	// A later response builds its own storage; the earlier table's stays.
	later, err := parseJWKS([]byte(`{"keys":[`+fuzzJWK(t, &next.PublicKey, "next", nil)+`]}`), tab)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := later.resolve(ctx, "dup", "ES256"); found {
		t.Fatal("want the later table without kid dup")
	}
	if _, found, e := later.resolve(ctx, "next", "ES256"); !found || e != nil {
		t.Fatalf("want kid next in the later table, got found %v, %v", found, e)
	}
	if _, found, e := tab.resolve(ctx, "dup", "ES256"); !found || e != nil {
		t.Fatalf("want the earlier table unchanged, got found %v, %v", found, e)
	}

	// A response without a usable key keeps the cached keys, through a
	// keyfunc of its own.
	kept, err := parseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), later)
	if !errors.Is(err, errNoUsableKey) {
		t.Fatalf("want errNoUsableKey, got %v", err)
	}
	if _, found, e := kept.resolve(ctx, "next", "ES256"); !found || e != nil {
		t.Fatalf("want the cached kid next kept, got found %v, %v", found, e)
	}
	if kept.kf.Storage() == later.kf.Storage() {
		t.Fatal("want a new storage per response")
	}
}

// countingStorage counts the reads of a jwkset storage.
type countingStorage struct {
	jwkset.Storage
	reads, readAlls int
}

func (s *countingStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	s.reads++
	return s.Storage.KeyRead(ctx, kid)
}

func (s *countingStorage) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	s.readAlls++
	return s.Storage.KeyReadAll(ctx)
}

// TestResolveAsksKeyfuncOnce: resolving a kid reads the table's storage
// once, through its keyfunc, whatever the outcome; the storage answers
// KeyRead from its index as the jwkset memory storage would (the first
// key of a repeated kid; ErrKeyNotFound otherwise) and refuses writes.
func TestResolveAsksKeyfuncOnce(t *testing.T) {
	ctx := context.Background()
	a, b, enc := mustEC(t), mustEC(t), mustEC(t)
	body := `{"keys":[` + strings.Join([]string{
		fuzzJWK(t, &a.PublicKey, "dup", nil),
		fuzzJWK(t, &b.PublicKey, "dup", nil),
		fuzzJWK(t, &enc.PublicKey, "enc", map[string]string{"use": "enc"}),
	}, ",") + `]}`
	tab, err := parseJWKS([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := tab.kf.Storage().KeyRead(ctx, "dup")
	if err != nil || !j.Key().(*ecdsa.PublicKey).Equal(&a.PublicKey) {
		t.Fatalf("want the first key with kid dup, got %v", err)
	}
	if _, err := tab.kf.Storage().KeyRead(ctx, "nope"); !errors.Is(err, jwkset.ErrKeyNotFound) {
		t.Fatalf("want ErrKeyNotFound, got %v", err)
	}
	if err := tab.kf.Storage().KeyWrite(ctx, j); err == nil {
		t.Fatal("want the sealed storage to refuse a write")
	}

	counting := &countingStorage{Storage: tab.kf.Storage()}
	kf, err := keyfunc.New(keyfunc.Options{Storage: counting})
	if err != nil {
		t.Fatal(err)
	}
	tab.kf, tab.keyfn = kf, kf.KeyfuncCtx(ctx)
	for _, tt := range []struct{ kid, alg string }{
		{"dup", "ES256"}, {"dup", "ES384"}, {"enc", "ES256"}, {"nope", "ES256"},
	} {
		counting.reads, counting.readAlls = 0, 0
		_, _, _ = tab.resolve(ctx, tt.kid, tt.alg)
		if counting.reads != 1 || counting.readAlls != 0 {
			t.Fatalf("%s %s: want 1 KeyRead, got %d (and %d KeyReadAll)", tt.kid, tt.alg, counting.reads, counting.readAlls)
		}
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
