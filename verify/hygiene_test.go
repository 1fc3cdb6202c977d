package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/setgate/setgate/verify"
)

// privateJWK renders k's public JWK under kid with the private members
// named in members added from the real private key.
func privateJWK(tb testing.TB, k testKey, kid string, members ...string) map[string]any {
	tb.Helper()
	m := jwkMap(tb, jwk{kid: kid, use: "sig", pub: k.public()})
	for _, name := range members {
		switch p := k.priv.(type) {
		case *ecdsa.PrivateKey:
			m[name] = b64(p.D.FillBytes(make([]byte, (p.Curve.Params().BitSize+7)/8)))
		case ed25519.PrivateKey:
			m[name] = b64(p.Seed())
		case *rsa.PrivateKey:
			v := map[string]*big.Int{"d": p.D, "p": p.Primes[0], "q": p.Primes[1],
				"dp": p.Precomputed.Dp, "dq": p.Precomputed.Dq, "qi": p.Precomputed.Qinv}[name]
			m[name] = b64(v.Bytes())
		}
	}
	return m
}

// rawJWKS renders a JWK Set from hand-made key objects.
func rawJWKS(tb testing.TB, ks ...any) []byte {
	tb.Helper()
	return mustJSON(tb, map[string]any{"keys": ks})
}

// offCurve is a P-256 key under kid whose point is not on the curve.
func offCurve(tb testing.TB, kid string) map[string]any {
	tb.Helper()
	m := jwkMap(tb, jwk{kid: kid, use: "sig", pub: newECKey(tb, kid).public()})
	y, err := base64.RawURLEncoding.DecodeString(m["y"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	y[len(y)-1] ^= 1 // neither y nor p-y: the point leaves the curve
	m["y"] = b64(y)
	return m
}

// TestJWKSKeyHygiene: each key that must not or cannot be used is skipped
// and counted by reason; the valid key beside it keeps verifying, and a
// SET naming the skipped kid is invalid_key without another fetch.
func TestJWKSKeyHygiene(t *testing.T) {
	t.Parallel()
	r := keys()
	edPriv := testKey{"ed-priv", r.ed.priv}
	tests := []struct {
		name    string
		bad     func(tb testing.TB) any
		signer  testKey // signs the SET naming "bad"; the zero value signs with the valid key
		alg     string
		reason  verify.SkipReason
		wantMsg string // substring of the rejection's description
	}{
		{name: "EC with private d", bad: func(tb testing.TB) any { return privateJWK(tb, r.attackerEC, "bad", "d") },
			signer: r.attackerEC, alg: "ES256", reason: verify.SkipPrivateMember, wantMsg: "private key is published"},
		{name: "RSA with all private members", bad: func(tb testing.TB) any {
			return privateJWK(tb, r.attacker, "bad", "d", "p", "q", "dp", "dq", "qi")
		}, signer: r.attacker, alg: "RS256", reason: verify.SkipPrivateMember},
		{name: "RSA with only d", bad: func(tb testing.TB) any { return privateJWK(tb, r.attacker, "bad", "d") },
			signer: r.attacker, alg: "RS256", reason: verify.SkipPrivateMember},
		{name: "RSA with only qi", bad: func(tb testing.TB) any { return privateJWK(tb, r.attacker, "bad", "qi") },
			signer: r.attacker, alg: "RS256", reason: verify.SkipPrivateMember},
		{name: "OKP with private d", bad: func(tb testing.TB) any { return privateJWK(tb, edPriv, "bad", "d") },
			signer: edPriv, alg: "EdDSA", reason: verify.SkipPrivateMember},
		{name: "EC with a k member", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attackerEC.public()})
			m["k"] = "c2VjcmV0"
			return m
		}, signer: r.attackerEC, alg: "ES256", reason: verify.SkipPrivateMember},
		{name: "oct key", bad: func(tb testing.TB) any {
			return map[string]any{"kty": "oct", "kid": "bad", "k": b64([]byte("0123456789abcdef0123456789abcdef"))}
		},
			reason: verify.SkipSymmetric, wantMsg: "symmetric"},
		{name: "oct key without k", bad: func(tb testing.TB) any { return map[string]any{"kty": "oct", "kid": "bad"} },
			reason: verify.SkipSymmetric},
		{name: "EC point off the curve", bad: func(tb testing.TB) any { return offCurve(tb, "bad") },
			reason: verify.SkipUnparsable, wantMsg: "malformed"},
		{name: "EC bad base64", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attackerEC.public()})
			m["x"] = "!!!"
			return m
		}, reason: verify.SkipUnparsable},
		{name: "EC missing y", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attackerEC.public()})
			delete(m, "y")
			return m
		}, reason: verify.SkipUnparsable},
		{name: "RSA exponent 1", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attacker.public()})
			m["e"] = "AQ"
			return m
		}, signer: r.attacker, alg: "RS256", reason: verify.SkipUnparsable},
		{name: "RSA exponent wider than 64 bits", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attacker.public()})
			m["e"] = b64([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}) // 2^72 + 65537: wraps to 65537 in 64 bits
			return m
		}, reason: verify.SkipUnparsable},
		{name: "RSA even modulus", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attacker.public()})
			n := new(big.Int).Set(r.attacker.public().(*rsa.PublicKey).N)
			m["n"] = b64(n.SetBit(n, 0, 0).Bytes())
			return m
		}, reason: verify.SkipUnparsable},
		{name: "RSA 1024 bits", bad: func(tb testing.TB) any { return jwkMap(tb, jwk{kid: "bad", pub: r.rsa1024.public()}) },
			signer: r.rsa1024, alg: "RS256", reason: verify.SkipWeak, wantMsg: "1024 bits"},
		{name: "EC secp256k1", bad: func(tb testing.TB) any {
			return map[string]any{"kty": "EC", "crv": "secp256k1", "kid": "bad", "x": "AA", "y": "AA"}
		}, reason: verify.SkipUnsupported, wantMsg: "not supported"},
		{name: "OKP Ed448", bad: func(tb testing.TB) any { return map[string]any{"kty": "OKP", "crv": "Ed448", "kid": "bad", "x": "AA"} },
			reason: verify.SkipUnsupported},
		{name: "OKP X25519", bad: func(tb testing.TB) any {
			return map[string]any{"kty": "OKP", "crv": "X25519", "kid": "bad", "x": b64(make([]byte, 32))}
		}, reason: verify.SkipUnsupported},
		{name: "unknown kty", bad: func(tb testing.TB) any { return map[string]any{"kty": "PQC", "kid": "bad"} },
			reason: verify.SkipUnsupported},
		{name: "kty not a string", bad: func(tb testing.TB) any { return map[string]any{"kty": 1, "kid": "bad"} },
			reason: verify.SkipUnparsable},
		{name: "member of the wrong type", bad: func(tb testing.TB) any {
			m := jwkMap(tb, jwk{kid: "bad", pub: r.attackerEC.public()})
			m["use"] = 7
			return m
		}, reason: verify.SkipUnparsable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			valid := newECKey(t, "valid")
			srv := newJWKSServer(t)
			srv.setRaw(rawJWKS(t, tt.bad(t), jwkMap(t, pubJWK(valid))))
			v := newVerifier(t, srv.URL, nil)

			wantCode(t, v, signES256(t, valid), "")

			signer, alg := tt.signer, tt.alg
			if signer.priv == nil {
				signer, alg = valid, "ES256"
			}
			_, e := wantCode(t, v, sign(t, signer, map[string]any{"typ": "secevent+jwt", "alg": alg, "kid": "bad"}, baseClaims()), verify.CodeInvalidKey)
			if !strings.Contains(e.Description, `"bad"`) || !strings.Contains(e.Description, tt.wantMsg) {
				t.Errorf("want a description naming the key and containing %q, got %q", tt.wantMsg, e.Description)
			}
			wantHits(t, srv, 1) // a skipped kid does not spend a refresh

			st := v.KeyStatus(context.Background())
			if st.Keys != 1 || st.Failures != 0 || st.LastError != "" {
				t.Errorf("want 1 key and no failure, got %+v", st)
			}
			if len(st.Skipped) != 1 || st.Skipped[0].KID != "bad" || st.Skipped[0].Reason != tt.reason || st.Skipped[0].Detail == "" {
				t.Errorf("want key \"bad\" skipped as %q with a detail, got %+v", tt.reason, st.Skipped)
			}
			for _, reason := range verify.SkipReasons() {
				want := int64(0)
				if reason == tt.reason {
					want = 1
				}
				if got := st.SkippedTotal[reason]; got != want {
					t.Errorf("want %d keys skipped as %q, got %d", want, reason, got)
				}
			}
			// Nothing of a private key reaches the status.
			b := mustJSON(t, st)
			if bad, ok := tt.bad(t).(map[string]any); ok {
				if d, ok := bad["d"].(string); ok && strings.Contains(string(b), d) {
					t.Errorf("status shows the private member: %s", b)
				}
			}
		})
	}
}

// TestJWKSPublicHalfOfPublishedPrivateKey: when the JWKS publishes a key
// with its private members, the same key published again without them is
// not used either: anyone who read the JWKS can sign with it.
func TestJWKSPublicHalfOfPublishedPrivateKey(t *testing.T) {
	t.Parallel()
	r := keys()
	for _, tc := range []struct {
		name   string
		signer testKey
		alg    string
	}{
		{"EC", r.attackerEC, "ES256"},
		{"RSA", r.attacker, "RS256"},
		{"Ed25519", testKey{"x", r.ed.priv}, "EdDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			valid := newECKey(t, "valid")
			srv := newJWKSServer(t)
			srv.setRaw(rawJWKS(t,
				jwkMap(t, jwk{kid: "public-half", use: "sig", pub: tc.signer.public()}),
				privateJWK(t, tc.signer, "leaked", "d"),
				jwkMap(t, pubJWK(valid))))
			v := newVerifier(t, srv.URL, nil)
			wantCode(t, v, signES256(t, valid), "")
			_, e := wantCode(t, v, sign(t, tc.signer, map[string]any{"typ": "secevent+jwt", "alg": tc.alg, "kid": "public-half"}, baseClaims()), verify.CodeInvalidKey)
			if !strings.Contains(e.Description, "private key is published") {
				t.Errorf("want the description to say why, got %q", e.Description)
			}
			st := v.KeyStatus(context.Background())
			if st.Keys != 1 || st.SkippedTotal[verify.SkipPrivateMember] != 2 || len(st.Skipped) != 2 ||
				st.Skipped[1].KID != "public-half" || !strings.Contains(st.Skipped[1].Detail, `(kid "leaked")`) {
				t.Errorf("want both halves skipped as private_member, got %+v", st)
			}
		})
	}
}

// TestJWKSManySkipped: a JWKS of many bad keys is counted in full but
// listed (and logged) only in part.
func TestJWKSManySkipped(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	ks := []any{jwkMap(t, pubJWK(a))}
	for i := range 1000 {
		ks = append(ks, map[string]any{"kty": "oct", "kid": strings.Repeat("k", i%7+1), "k": "c2VjcmV0"})
	}
	srv := newJWKSServer(t)
	srv.setRaw(rawJWKS(t, ks...))
	v := newVerifier(t, srv.URL, nil)
	wantCode(t, v, signES256(t, a), "")
	st := v.KeyStatus(context.Background())
	if st.Keys != 1 || st.SkippedTotal[verify.SkipSymmetric] != 1000 || len(st.Skipped) != 16 {
		t.Errorf("want 1 key, 1000 counted and 16 listed, got %d keys, %v, %d listed", st.Keys, st.SkippedTotal, len(st.Skipped))
	}
}

// TestJWKSKidlessSkipsUnusable: a SET without kid is tried only against
// usable keys; a private key published without kid verifies nothing.
func TestJWKSKidlessSkipsUnusable(t *testing.T) {
	t.Parallel()
	r := keys()
	valid := newECKey(t, "valid")
	priv := privateJWK(t, r.attackerEC, "", "d")
	srv := newJWKSServer(t)
	srv.setRaw(rawJWKS(t, priv, jwkMap(t, pubJWK(valid))))
	v := newVerifier(t, srv.URL, nil)
	noKid := func(k testKey) string {
		return sign(t, k, map[string]any{"typ": "secevent+jwt", "alg": "ES256"}, baseClaims())
	}
	wantCode(t, v, noKid(valid), "")
	wantCode(t, v, noKid(r.attackerEC), verify.CodeInvalidKey)
}

// TestJWKSNoUsableKey: a response whose keys are all skipped is a failed
// fetch with the reasons in the error; at start nothing verifies, and
// after a good response the cached keys stay.
func TestJWKSNoUsableKey(t *testing.T) {
	t.Parallel()
	r := keys()
	const wantErr = "jwks: no usable key (2 skipped: private_member, unparsable)"
	onlyBad := func(tb testing.TB) []byte {
		return rawJWKS(tb, privateJWK(tb, r.attackerEC, "priv", "d"), offCurve(tb, "curve"))
	}

	t.Run("at start", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		srv.setRaw(onlyBad(t))
		v := newVerifier(t, srv.URL, nil)
		st := v.KeyStatus(context.Background())
		if st.Keys != 0 || st.Fetches != 1 || st.Failures != 1 || st.LastError != wantErr {
			t.Errorf("want 0 keys, 1 fetch, 1 failure and %q, got %+v", wantErr, st)
		}
		if st.SkippedTotal[verify.SkipPrivateMember] != 1 || st.SkippedTotal[verify.SkipUnparsable] != 1 || len(st.Skipped) != 2 {
			t.Errorf("want one key skipped as private_member and one as unparsable, got %+v", st)
		}
		_, e := wantCode(t, v, sign(t, r.attackerEC, baseHeader("ES256", testKey{kid: "priv"}), baseClaims()), verify.CodeInvalidKey)
		if !strings.Contains(e.Description, "private key is published") {
			t.Errorf("want the description to say why, got %q", e.Description)
		}
		wantHits(t, srv, 1)
	})

	t.Run("cached key whose private key is then published", func(t *testing.T) {
		t.Parallel()
		a := newECKey(t, "key-a")
		srv := newJWKSServer(t, pubJWK(a))
		v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.MinRefreshInterval = 1 })
		wantCode(t, v, signES256(t, a), "")
		srv.setRaw(rawJWKS(t, privateJWK(t, a, "key-a-leaked", "d")))
		wantCode(t, v, signES256(t, newECKey(t, "key-x")), verify.CodeInvalidKey) // refresh
		_, e := wantCode(t, v, signES256(t, a), verify.CodeInvalidKey)
		if !strings.Contains(e.Description, "private key is published") {
			t.Errorf("want the description to say why, got %q", e.Description)
		}
		st := v.KeyStatus(context.Background())
		if st.Keys != 0 || st.Failures != 1 || st.SkippedTotal[verify.SkipPrivateMember] != 2 {
			t.Errorf("want the exposed cached key dropped, got %+v", st)
		}
	})

	t.Run("after good keys", func(t *testing.T) {
		t.Parallel()
		a := newECKey(t, "key-a")
		srv := newJWKSServer(t, pubJWK(a))
		v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.MinRefreshInterval = 1 })
		srv.setRaw(onlyBad(t))
		// An unknown kid refreshes; the response has no usable key.
		wantCode(t, v, signES256(t, newECKey(t, "key-x")), verify.CodeInvalidKey)
		wantHits(t, srv, 2)
		wantCode(t, v, signES256(t, a), "")
		st := v.KeyStatus(context.Background())
		if st.Keys != 1 || st.Fetches != 2 || st.Failures != 1 || st.LastError != wantErr {
			t.Errorf("want the cached key kept, 2 fetches, 1 failure and %q, got %+v", wantErr, st)
		}
		// The next good response clears the error and the skipped list.
		srv.set(t, pubJWK(a))
		wantCode(t, v, signES256(t, newECKey(t, "key-y")), verify.CodeInvalidKey)
		st = v.KeyStatus(context.Background())
		if st.Keys != 1 || st.Fetches != 3 || st.Failures != 1 || st.LastError != "" || len(st.Skipped) != 0 {
			t.Errorf("want a clean status after a good response, got %+v", st)
		}
		if st.SkippedTotal[verify.SkipPrivateMember] != 1 || st.SkippedTotal[verify.SkipUnparsable] != 1 {
			t.Errorf("want the totals kept, got %+v", st.SkippedTotal)
		}
	})

	for _, tc := range []struct{ name, body, wantErr string }{
		{"empty set", `{"keys":[]}`, "jwks: no usable key (the set is empty)"},
		{"not JSON", `<html>`, "jwks: not a JWK Set"},
		{"no keys member", `{"kty":"EC"}`, `jwks: not a JWK Set: no "keys" array`},
		{"keys not an array", `{"keys":{}}`, "jwks: not a JWK Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t)
			srv.setRaw([]byte(tc.body))
			v := newVerifier(t, srv.URL, nil)
			st := v.KeyStatus(context.Background())
			if st.Keys != 0 || st.Failures != 1 || !strings.HasPrefix(st.LastError, tc.wantErr) {
				t.Errorf("want 0 keys, 1 failure and an error starting %q, got %+v", tc.wantErr, st)
			}
		})
	}
}

// TestJWKSSkippedCountedPerResponse: the totals grow with every response
// that carries the bad key.
func TestJWKSSkippedCountedPerResponse(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	srv := newJWKSServer(t)
	srv.setRaw(rawJWKS(t, jwkMap(t, pubJWK(a)), map[string]any{"kty": "oct", "k": "c2VjcmV0"}))
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) { o.MinRefreshInterval = 1 })
	for range 2 {
		wantCode(t, v, signES256(t, newECKey(t, "unknown")), verify.CodeInvalidKey)
	}
	wantHits(t, srv, 3)
	st := v.KeyStatus(context.Background())
	if got := st.SkippedTotal[verify.SkipSymmetric]; got != 3 {
		t.Errorf("want 3 symmetric keys counted over 3 responses, got %d", got)
	}
	if len(st.Skipped) != 1 || st.Skipped[0].KID != "" {
		t.Errorf("want the kid-less oct key listed once, got %+v", st.Skipped)
	}
}

// TestJWKSSkippedStatusJSON: /issuers shows skipped keys and totals
// under stable names.
func TestJWKSSkippedStatusJSON(t *testing.T) {
	t.Parallel()
	a := newECKey(t, "key-a")
	srv := newJWKSServer(t)
	srv.setRaw(rawJWKS(t, jwkMap(t, pubJWK(a)), offCurve(t, "curve")))
	v := newVerifier(t, srv.URL, nil)
	var got struct {
		Keys    int `json:"keys"`
		Skipped []struct {
			KID, Reason, Detail string
		} `json:"skipped"`
		SkippedTotal map[string]int64 `json:"skipped_total"`
	}
	if err := json.Unmarshal(mustJSON(t, v.KeyStatus(context.Background())), &got); err != nil {
		t.Fatal(err)
	}
	if got.Keys != 1 || len(got.Skipped) != 1 || got.Skipped[0].KID != "curve" || got.Skipped[0].Reason != "unparsable" ||
		!strings.Contains(got.Skipped[0].Detail, "not on the specified curve") || got.SkippedTotal["unparsable"] != 1 {
		t.Errorf("want 1 key, curve skipped as unparsable (off the curve), got %+v", got)
	}
}

// TestSkipReasons: the reasons are the closed set the metric and README
// name.
func TestSkipReasons(t *testing.T) {
	t.Parallel()
	var got []string
	for _, r := range verify.SkipReasons() {
		got = append(got, string(r))
	}
	if want := "private_member symmetric unparsable weak unsupported"; strings.Join(got, " ") != want {
		t.Errorf("want %q, got %q", want, strings.Join(got, " "))
	}
}
