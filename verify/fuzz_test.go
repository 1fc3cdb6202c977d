package verify_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/verify"
)

// FuzzVerify feeds arbitrary bytes to two verifiers (strict ssf, and
// lenient rfc8417). Whatever the input: no panic; a rejection is an
// *Error with a registered code and a description; an acceptance carries
// a jti and an event and really is signed by one of the issuer's keys.
func FuzzVerify(f *testing.F) {
	srv := newJWKSServer(f, defaultJWKS(f)...)
	strict := newVerifier(f, srv.URL, nil)
	loose := newVerifier(f, srv.URL, func(c *verify.Config, _ *verify.Options) {
		c.Profile = verify.ProfileRFC8417
		c.Lenient = true
	})
	for _, v := range []*verify.Verifier{strict, loose} {
		v.States().Expect("s-1", 24*time.Hour)
	}

	r := keys()
	for _, alg := range verify.SupportedAlgorithms() {
		k := r.keyFor(alg)
		f.Add([]byte(sign(f, k, baseHeader(alg, k), baseClaims())))
	}
	for _, tok := range []tokFunc{
		tokClaims(ev(evVerify, map[string]any{"state": "s-1"})),
		tokClaims(ev(evCredChange, map[string]any{"credential_type": "password"})),
		tokClaims(rawEvents(`{"urn:example:b":{},"urn:example:a":{}}`), set("sub", "s"), set("exp", testNow.Unix()+60)),
		tokClaims(subID(map[string]any{"format": "complex", "user": map[string]any{"format": "opaque", "id": "u"}})),
		tokClaims(ev(evCredChange, map[string]any{"credential_type": "verifiable_credential", "change_type": "revoked"})),
		tokClaims(subID(map[string]any{"format": "Phone", "phone_number": "+1 206 555 0100"})),
		tokClaims(ev(riscBase+"identifier-changed", map[string]any{"new-value": "x", "subject": map[string]any{"subject_type": "email"}})),
		tokClaims(subID(map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "account", "uri": "acct:a@example.com"},
			map[string]any{"format": "did", "url": "did:example:1"},
		}})),
		tokHeader(func(h map[string]any) { delete(h, "kid") }),
		tokHeader(func(h map[string]any) { delete(h, "typ") }),
		tokRawClaims(func(base string) string { return `{"jti":"x",` + base }),
	} {
		f.Add([]byte(tok(f)))
	}
	for _, claims := range []string{tv3, tv4, tv5, tv6} {
		f.Add([]byte(signVector(f, claims)))
	}
	f.Add([]byte(tv1))
	f.Add([]byte(tv2))
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.",
		"\xff\xfe.\x00.", strings.Repeat("A", 1000), "e30.W10.", "eyJ9.eyJ9.eyJ9"} {
		f.Add([]byte(s))
	}

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, v := range []*verify.Verifier{strict, loose} {
			set, err := v.Verify(ctx, raw)
			if err != nil {
				if set != nil {
					t.Fatalf("both a SET and an error: %v", err)
				}
				var e *verify.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not a *verify.Error", err, err)
				}
				if !registeredCodes[e.Code] || e.Description == "" {
					t.Fatalf("want a registered code and a description, got %q %q", e.Code, e.Description)
				}
				continue
			}
			if set == nil || set.JTI == "" || len(set.Events) == 0 {
				t.Fatalf("accepted SET without jti or events: %+v", set)
			}
			if set.Iss != testIssuer || !slices.Contains(set.Aud, testAudience) {
				t.Fatalf("accepted SET for iss %q aud %q", set.Iss, set.Aud)
			}
			if !signedByIssuer(set) {
				t.Fatalf("accepted SET not signed by an issuer key: %q", set.Raw)
			}
		}
	})
}

// signedByIssuer re-checks the signature of an accepted SET independently
// of the verifier: one of the issuer's usable keys must verify it.
func signedByIssuer(set *verify.SET) bool {
	i := strings.LastIndexByte(set.Raw, '.')
	if i < 0 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(set.Raw[i+1:])
	if err != nil {
		return false
	}
	m := jwt.GetSigningMethod(set.Header.Alg)
	if m == nil || strings.HasPrefix(set.Header.Alg, "HS") || set.Header.Alg == "none" {
		return false
	}
	r := keys()
	for _, k := range []testKey{r.rsa, r.ec256, r.ec384, r.ec521, r.ed} {
		if m.Verify(set.Raw[:i], sig, k.public()) == nil {
			return true
		}
	}
	return false
}
