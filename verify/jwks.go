package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// SkipReason says why a key of an issuer's JWKS is not used. The set is
// closed: [SkipReasons] lists every value.
type SkipReason string

// The reasons a JWKS key is skipped.
const (
	// SkipPrivateMember: the key carries private key material (d, p, q,
	// dp, dq, qi, oth or k, RFC 7518 §6.2.2, §6.3.2, §6.4). A JWKS is
	// public; a key published with its private half is compromised.
	SkipPrivateMember SkipReason = "private_member"
	// SkipSymmetric: kty "oct" (RFC 7518 §6.4). A published symmetric key
	// lets anyone sign (RFC 8725 §3.1).
	SkipSymmetric SkipReason = "symmetric"
	// SkipUnparsable: the key is malformed (not an object, bad base64url,
	// an EC point off its curve, a bad RSA exponent, a certificate that
	// does not match).
	SkipUnparsable SkipReason = "unparsable"
	// SkipWeak: an RSA key smaller than [MinRSABits].
	SkipWeak SkipReason = "weak"
	// SkipUnsupported: a key type or curve setgate cannot verify with
	// (e.g. Ed448, X25519, secp256k1).
	SkipUnsupported SkipReason = "unsupported"
)

// SkipReasons returns every [SkipReason], in a stable order.
func SkipReasons() []SkipReason {
	return []SkipReason{SkipPrivateMember, SkipSymmetric, SkipUnparsable, SkipWeak, SkipUnsupported}
}

// SkippedKey is one key of a JWKS response that is not used.
type SkippedKey struct {
	// KID is the key's kid ("" when it has none or it is unreadable).
	KID    string     `json:"kid,omitempty"`
	Reason SkipReason `json:"reason"`
	// Detail says what exactly is wrong; it never holds key material.
	Detail string `json:"detail"`
}

// privateMembers are the JWK members that only a private (or symmetric)
// key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// keyTable is the keys of one JWKS response: the usable public keys in
// document order, the skipped ones, and a [keyfunc.Keyfunc] over a
// [jwkset.Storage] holding exactly the usable keys, which resolves a
// SET's kid to its key. A table is never changed once built: a new
// response builds a new table (storage and Keyfunc included), swapped in
// whole.
type keyTable struct {
	keys []jwkset.JWK
	kf   keyfunc.Keyfunc
	// keyfn is kf's jwt.Keyfunc, made once: the storage reads no
	// context, so every SET may share it.
	keyfn        jwt.Keyfunc
	skipped      []SkippedKey
	skippedByKID map[string]SkippedKey
	// byKID indexes the usable keys by kid (the first key of a repeated
	// kid, as the storage answers), with what [fit] says of each.
	byKID map[string]*vettedKey
}

// vettedKey is a usable key with the algorithms [fit] allows it for,
// worked out once when the table is built rather than on every SET.
type vettedKey struct {
	jwk jwkset.JWK
	// fits holds, for each algorithm the key fits, the token header
	// its Keyfunc is asked with (read-only, shared by every SET).
	fits map[string]*jwt.Token
}

// keyfuncToken is the token a Keyfunc resolves kid for alg from.
func keyfuncToken(kid, alg string) *jwt.Token {
	return &jwt.Token{Header: map[string]any{jwkset.HeaderKID: kid, "alg": alg}}
}

// seal hands the usable keys to a fresh storage and builds the Keyfunc
// over it. The storage returns the first key of a repeated kid, as the
// JWKS lists them.
func (t *keyTable) seal() error {
	t.byKID = make(map[string]*vettedKey, len(t.keys))
	for _, j := range t.keys {
		kid := j.Marshal().KID
		if _, dup := t.byKID[kid]; dup {
			continue
		}
		v := &vettedKey{jwk: j, fits: make(map[string]*jwt.Token)}
		for alg := range methods {
			if _, e := fit(j, alg); e == nil {
				v.fits[alg] = keyfuncToken(kid, alg)
			}
		}
		t.byKID[kid] = v
	}
	store := &kidStorage{MemoryJWKSet: jwkset.NewMemoryStorage(), byKID: t.byKID}
	if err := store.MemoryJWKSet.KeyReplaceAll(context.Background(), slices.Clone(t.keys)); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store, Ctx: context.Background()})
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	t.kf = kf
	t.keyfn = kf.KeyfuncCtx(context.Background())
	return nil
}

// kidStorage is a table's [jwkset.MemoryJWKSet] whose KeyRead answers
// from the table's index by kid instead of scanning (and copying) every
// key; it answers as the scan would, with the first key of a repeated
// kid. It is read-only once sealed: writes would leave the index behind.
type kidStorage struct {
	*jwkset.MemoryJWKSet
	byKID map[string]*vettedKey
}

// errReadOnlyStorage refuses writes to a sealed table's storage.
var errReadOnlyStorage = errors.New("jwks: a key table's storage is read-only")

// KeyRead returns the key with kid.
func (s *kidStorage) KeyRead(_ context.Context, kid string) (jwkset.JWK, error) {
	if v, ok := s.byKID[kid]; ok {
		return v.jwk, nil
	}
	return jwkset.JWK{}, fmt.Errorf("%w: kid %q", jwkset.ErrKeyNotFound, kid)
}

// KeyDelete refuses: the storage is read-only.
func (s *kidStorage) KeyDelete(context.Context, string) (bool, error) {
	return false, errReadOnlyStorage
}

// KeyReplaceAll refuses: the storage is read-only.
func (s *kidStorage) KeyReplaceAll(context.Context, []jwkset.JWK) error { return errReadOnlyStorage }

// KeyWrite refuses: the storage is read-only.
func (s *kidStorage) KeyWrite(context.Context, jwkset.JWK) error { return errReadOnlyStorage }

// skippedKID returns why the key with kid was skipped, if it was.
func (t *keyTable) skippedKID(kid string) (SkippedKey, bool) {
	s, ok := t.skippedByKID[kid]
	return s, ok
}

// admit adds the usable keys, except those whose private half is
// exposed: a public key whose private key the JWKS publishes is as
// compromised as the private one. Those are skipped as private_member.
func (t *keyTable) admit(usable []jwkset.JWK, exposed []exposedKey) {
	for _, j := range usable {
		if e, ok := exposedBy(exposed, j.Key()); ok {
			t.skip(SkippedKey{KID: truncate(j.Marshal().KID, 256), Reason: SkipPrivateMember,
				Detail: fmt.Sprintf("its private key is published in the JWKS (kid %q)", truncate(e.kid, 64))})
			continue
		}
		t.keys = append(t.keys, j)
	}
}

func (t *keyTable) skip(s SkippedKey) {
	t.skipped = append(t.skipped, s)
	if _, dup := t.skippedByKID[s.KID]; !dup && s.KID != "" {
		t.skippedByKID[s.KID] = s
	}
}

// errNoUsableKey is a JWKS response that parsed but holds no key setgate
// may use; it counts as a failed fetch.
var errNoUsableKey = errors.New("jwks: no usable key")

// parseJWKS reads a JWK Set (RFC 7517 §5) key by key. Keys that must not
// or cannot be used are skipped and listed with the reason; the others
// are kept. When body is not a JWK Set the table is nil. When no key of
// body is usable the error is errNoUsableKey and the table keeps the keys
// of cached (if any), except those whose private key body publishes.
func parseJWKS(body []byte, cached *keyTable) (*keyTable, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`jwks: not a JWK Set: no "keys" array`)
	}
	t := &keyTable{skippedByKID: make(map[string]SkippedKey)}
	var usable []jwkset.JWK
	var exposed []exposedKey
	for _, raw := range set.Keys {
		j, skip, pub := parseJWK(raw)
		if skip != nil {
			t.skip(*skip)
			if pub != nil {
				exposed = append(exposed, exposedKey{kid: skip.KID, pub: pub})
			}
			continue
		}
		usable = append(usable, j)
	}
	t.admit(usable, exposed)
	var err error
	if len(t.keys) == 0 {
		err = noUsableKey(t.skipped)
		if cached != nil {
			t.admit(cached.keys, exposed)
		}
	}
	if serr := t.seal(); serr != nil {
		return nil, serr
	}
	return t, err
}

// noUsableKey describes a response without a usable key, e.g.
// "jwks: no usable key (2 skipped: private_member, unparsable)".
func noUsableKey(skipped []SkippedKey) error {
	if len(skipped) == 0 {
		return fmt.Errorf("%w (the set is empty)", errNoUsableKey)
	}
	var reasons []string
	for _, s := range skipped {
		if !slices.Contains(reasons, string(s.Reason)) {
			reasons = append(reasons, string(s.Reason))
		}
	}
	return fmt.Errorf("%w (%d skipped: %s)", errNoUsableKey, len(skipped), strings.Join(reasons, ", "))
}

// exposedKey is the public half of a key a JWKS published with its
// private members.
type exposedKey struct {
	kid string
	pub crypto.PublicKey
}

// exposedBy returns the exposed key equal to pub, if any.
func exposedBy(exposed []exposedKey, pub crypto.PublicKey) (exposedKey, bool) {
	for _, e := range exposed {
		if k, ok := e.pub.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(pub) {
			return e, true
		}
	}
	return exposedKey{}, false
}

// parseJWK turns one member of "keys" into a public key setgate may
// verify with, or says why it is skipped. For a key skipped for its
// private members, pub is its public half when that parses.
func parseJWK(raw json.RawMessage) (j jwkset.JWK, skip *SkippedKey, pub crypto.PublicKey) {
	var members map[string]json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(raw, &members) != nil {
		return jwkset.JWK{}, &SkippedKey{Reason: SkipUnparsable, Detail: "not a JSON object"}, nil
	}
	kid, _ := stringOf(members["kid"])
	kid = truncate(kid, 256)
	kty, ok := stringOf(members["kty"])
	if !ok {
		return jwkset.JWK{}, &SkippedKey{KID: kid, Reason: SkipUnparsable, Detail: "kty is missing or not a string"}, nil
	}
	if kty == string(jwkset.KtyOct) {
		return jwkset.JWK{}, &SkippedKey{KID: kid, Reason: SkipSymmetric, Detail: "kty oct is a symmetric key"}, nil
	}
	j, skip = parsePublic(raw, members, kid, kty)
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			if skip == nil {
				pub = j.Key()
			}
			return jwkset.JWK{}, &SkippedKey{KID: kid, Reason: SkipPrivateMember, Detail: fmt.Sprintf("has private key member %q", m)}, pub
		}
	}
	return j, skip, nil
}

// parsePublic parses the public members of a JWK of type kty.
func parsePublic(raw json.RawMessage, members map[string]json.RawMessage, kid, kty string) (jwkset.JWK, *SkippedKey) {
	skip := func(r SkipReason, format string, args ...any) (jwkset.JWK, *SkippedKey) {
		return jwkset.JWK{}, &SkippedKey{KID: kid, Reason: r, Detail: fmt.Sprintf(format, args...)}
	}
	switch kty {
	case string(jwkset.KtyRSA):
	case string(jwkset.KtyEC):
		switch crv, _ := stringOf(members["crv"]); crv {
		case string(jwkset.CrvP256), string(jwkset.CrvP384), string(jwkset.CrvP521):
		default:
			return skip(SkipUnsupported, "EC curve %q is not supported", truncate(crv, 32))
		}
	case string(jwkset.KtyOKP):
		if crv, _ := stringOf(members["crv"]); crv != string(jwkset.CrvEd25519) {
			return skip(SkipUnsupported, "OKP curve %q is not supported", truncate(crv, 32))
		}
	default:
		return skip(SkipUnsupported, "kty %q is not supported", truncate(kty, 32))
	}
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return skip(SkipUnparsable, "a member has the wrong type")
	}
	j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			return skip(SkipUnsupported, "%v", err)
		}
		return skip(SkipUnparsable, "%v", err)
	}
	if k, ok := j.Key().(*rsa.PublicKey); ok {
		// jwkset does not check a public RSA key (RFC 7518 §6.3.1), and
		// it wraps an exponent wider than 64 bits around.
		e, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(m.E, "="))
		switch {
		case err != nil || len(bytes.TrimLeft(e, "\x00")) > 4:
			return skip(SkipUnparsable, "RSA exponent is out of range")
		case k.N.Sign() <= 0 || k.N.Bit(0) == 0:
			return skip(SkipUnparsable, "RSA modulus is not a positive odd number")
		case k.E < 3 || k.E%2 == 0 || k.E > math.MaxInt32:
			return skip(SkipUnparsable, "RSA exponent is out of range")
		case k.N.BitLen() < MinRSABits:
			return skip(SkipWeak, "RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits)
		}
	}
	return j, nil
}
