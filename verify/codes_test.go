package verify_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

// Token builders for the table rows.

type tokFunc func(tb testing.TB) string

// tokClaims signs the base claims after mut with the RS256 test key.
func tokClaims(mut ...func(c map[string]any)) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		c := baseClaims()
		for _, m := range mut {
			m(c)
		}
		return signDefault(tb, c)
	}
}

// tokHeader signs the base claims under the base RS256 header after mut.
func tokHeader(mut func(h map[string]any)) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		k := keys().rsa
		h := baseHeader("RS256", k)
		mut(h)
		return sign(tb, k, h, baseClaims())
	}
}

// tokAlg signs the base claims under alg with the given key and kid.
func tokAlg(alg string, key func() testKey, kid string) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		k := key()
		h := baseHeader(alg, k)
		if kid != "" {
			h["kid"] = kid
		}
		return sign(tb, k, h, baseClaims())
	}
}

// tokRaw signs exactly header and claims with the RS256 test key.
func tokRaw(header, claims string) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		return signRaw(tb, keys().rsa, "RS256", []byte(header), []byte(claims))
	}
}

// tokEdit takes a valid token and rewrites it as a string.
func tokEdit(edit func(tb testing.TB, tok string) string) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		return edit(tb, signDefault(tb, baseClaims()))
	}
}

const rsaHeader = `{"typ":"secevent+jwt","alg":"RS256","kid":"rsa"}`

// baseClaimsJSON is baseClaims as JSON with "{" cut off, so rows can put
// members (duplicates) in front.
func baseClaimsJSON(tb testing.TB) string {
	tb.Helper()
	return string(mustJSON(tb, baseClaims()))[1:]
}

// tokRawHeader signs the base claims under exactly header.
func tokRawHeader(header string) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		return tokRaw(header, "{"+baseClaimsJSON(tb))(tb)
	}
}

func tokRawClaims(f func(base string) string) tokFunc {
	return func(tb testing.TB) string {
		tb.Helper()
		return tokRaw(rsaHeader, f(baseClaimsJSON(tb)))(tb)
	}
}

// Claim mutations.

func set(name string, v any) func(map[string]any) {
	return func(c map[string]any) { c[name] = v }
}

func del(name string) func(map[string]any) {
	return func(c map[string]any) { delete(c, name) }
}

func ev(typ string, payload any) func(map[string]any) {
	return set("events", map[string]any{typ: payload})
}

func rawEvents(js string) func(map[string]any) {
	return set("events", json.RawMessage(js))
}

func subID(v any) func(map[string]any) { return set("sub_id", v) }

func rfc8417(c *verify.Config) { c.Profile = verify.ProfileRFC8417 }

func lenient(c *verify.Config) { c.Lenient = true }

const (
	ssfBase       = "https://schemas.openid.net/secevent/ssf/event-type/"
	riscBase      = "https://schemas.openid.net/secevent/risc/event-type/"
	evVerify      = ssfBase + "verification"
	evStreamUpd   = ssfBase + "stream-updated"
	evCredChange  = caepBase + "credential-change"
	evDevice      = caepBase + "device-compliance-change"
	evRisk        = caepBase + "risk-level-change"
	evAssurance   = caepBase + "assurance-level-change"
	evTokenClaims = caepBase + "token-claims-change"
	evSessionEst  = caepBase + "session-established"
	evAcctDisable = riscBase + "account-disabled"
)

type codeRow struct {
	name   string
	cfg    func(*verify.Config)
	expect []string // verification states requested before verifying
	tok    tokFunc
	code   verify.Code // "" means accepted
	// jti is the JTI the error must carry; noJTI means none can be read.
	jti   string
	noJTI bool
	check func(tb testing.TB, set *verify.SET)
}

func TestVerifyCodes(t *testing.T) {
	t.Parallel()
	r := keys()
	srv := newJWKSServer(t, defaultJWKS(t)...)

	const (
		IR = verify.CodeInvalidRequest
		IK = verify.CodeInvalidKey
		II = verify.CodeInvalidIssuer
		IA = verify.CodeInvalidAudience
		IS = verify.CodeInvalidState
	)
	credOK := map[string]any{"credential_type": "password", "change_type": "update"}
	now := testNow.Unix()

	rows := []codeRow{
		// Accepted baseline and one row per algorithm.
		{name: "valid base SET", tok: tokClaims(), check: func(tb testing.TB, s *verify.SET) {
			if s.JTI != testJTI || s.Iss != testIssuer || s.TXN != "txn-1" {
				tb.Errorf("want jti %q iss %q txn %q, got %q %q %q", testJTI, testIssuer, "txn-1", s.JTI, s.Iss, s.TXN)
			}
			if len(s.Aud) != 1 || s.Aud[0] != testAudience {
				tb.Errorf("want aud [%q], got %q", testAudience, s.Aud)
			}
			if want := json.Number("1749999940"); s.IAT != want {
				tb.Errorf("want iat %q, got %q", want, s.IAT)
			}
			if len(s.Events) != 1 || s.Events[0].Type != evSessionRevok {
				tb.Fatalf("want one %q event, got %+v", evSessionRevok, s.Events)
			}
			if !json.Valid(s.Events[0].Payload) || !json.Valid(s.SubID) {
				tb.Errorf("payload %q or sub_id %q is not JSON", s.Events[0].Payload, s.SubID)
			}
			if s.Header != (verify.Header{Alg: "RS256", Kid: "rsa", Typ: "secevent+jwt"}) {
				tb.Errorf("want header RS256/rsa/secevent+jwt, got %+v", s.Header)
			}
			if s.Sub != "" || s.TOE != nil || len(s.Warnings) != 0 {
				tb.Errorf("want no sub, toe or warnings, got %q %v %q", s.Sub, s.TOE, s.Warnings)
			}
		}},
		{name: "RS256", tok: tokAlg("RS256", func() testKey { return r.rsa }, "")},
		{name: "RS384", tok: tokAlg("RS384", func() testKey { return r.rsa }, "")},
		{name: "RS512", tok: tokAlg("RS512", func() testKey { return r.rsa }, "")},
		{name: "PS256", tok: tokAlg("PS256", func() testKey { return r.rsa }, "")},
		{name: "PS384", tok: tokAlg("PS384", func() testKey { return r.rsa }, "")},
		{name: "PS512", tok: tokAlg("PS512", func() testKey { return r.rsa }, "")},
		{name: "ES256", tok: tokAlg("ES256", func() testKey { return r.ec256 }, "")},
		{name: "ES384", tok: tokAlg("ES384", func() testKey { return r.ec384 }, "")},
		{name: "ES512", tok: tokAlg("ES512", func() testKey { return r.ec521 }, "")},
		{name: "EdDSA", tok: tokAlg("EdDSA", func() testKey { return r.ed }, "")},
		{name: "no kid: the key that fits the alg", tok: tokHeader(func(h map[string]any) { delete(h, "kid") })},
		{name: "no kid ES256", tok: func(tb testing.TB) string {
			return sign(tb, r.ec256, map[string]any{"typ": "secevent+jwt", "alg": "ES256"}, baseClaims())
		}},
		{name: "JWK alg RS256 used with RS256", tok: tokAlg("RS256", func() testKey { return r.rsa }, "rsa-rs256")},
		{name: "whitespace around the token", tok: func(tb testing.TB) string { return "\r\n " + signDefault(tb, baseClaims()) + "\n" }},

		// Compact serialization.
		{name: "empty", tok: func(testing.TB) string { return "" }, code: IR, noJTI: true},
		{name: "one part", tok: func(testing.TB) string { return "eyJhbGciOiJSUzI1NiJ9" }, code: IR, noJTI: true},
		{name: "two parts", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, _ := parts(tb, tok)
			return h + "." + c
		}), code: IR, noJTI: true},
		{name: "JWE five parts", tok: func(testing.TB) string {
			return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","typ":"secevent+jwt"}`)) + ".OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ"
		}, code: IR, noJTI: true},
		{name: "four parts", tok: tokEdit(func(_ testing.TB, tok string) string { return tok + ".e30" }), code: IR, noJTI: true},
		{name: "bad base64 in header", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, s := parts(tb, tok)
			return h[:5] + "!" + h[6:] + "." + c + "." + s
		}), code: IR, noJTI: true},
		{name: "padded base64 in header", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, s := parts(tb, tok)
			return h + "==." + c + "." + s
		}), code: IR, noJTI: true},
		{name: "bad base64 in claims", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, s := parts(tb, tok)
			return h + "." + c[:7] + "+" + c[8:] + "." + s
		}), code: IR, noJTI: true},
		{name: "bad base64 in signature", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, s := parts(tb, tok)
			return h + "." + c + "." + s[:10] + "/" + s[11:]
		}), code: IR, noJTI: true},
		{name: "non-canonical base64 in signature", tok: tokEdit(func(tb testing.TB, tok string) string {
			// A 256-byte signature ends in a character with 4 unused bits.
			h, c, s := parts(tb, tok)
			last := strings.IndexByte(b64Alphabet, s[len(s)-1])
			return h + "." + c + "." + s[:len(s)-1] + string(b64Alphabet[last|1])
		}), code: IR, noJTI: true},
		{name: "header not JSON", tok: tokRaw(`typ=secevent+jwt`, `{}`), code: IR, noJTI: true},
		{name: "header JSON array", tok: tokRaw(`["RS256"]`, `{}`), code: IR, noJTI: true},
		{name: "header duplicate alg", tok: tokRawHeader(`{"typ":"secevent+jwt","alg":"RS256","kid":"rsa","alg":"none"}`), code: IR, noJTI: true},
		{name: "claims not JSON", tok: tokRaw(rsaHeader, `{"iss":"https://idp.example.com/",`), code: IR, noJTI: true},
		{name: "claims JSON array", tok: tokRaw(rsaHeader, `[{"iss":"https://idp.example.com/"}]`), code: IR, noJTI: true},
		{name: "claims JSON string", tok: tokRaw(rsaHeader, `"claims"`), code: IR, noJTI: true},
		{name: "claims trailing data", tok: tokRawClaims(func(base string) string { return "{" + base + "{}" }), code: IR, noJTI: true},
		{name: "claims invalid UTF-8", tok: tokRawClaims(func(base string) string {
			return "{" + strings.Replace(base, "user@example.com", "user\xff@example.com", 1)
		}), code: IR, noJTI: true},
		{name: "header invalid UTF-8", tok: tokRaw(`{"typ":"secevent+jwt","alg":"RS256","kid":"rsa","x":"`+"\xc3\x28"+`"}`, `{}`), code: IR, noJTI: true},
		{name: "duplicate member top level", tok: tokRawClaims(func(base string) string {
			return `{"iss":"https://evil.example/",` + base
		}), code: IR, noJTI: true},
		{name: "duplicate member spelled with escapes", tok: tokRawClaims(func(base string) string {
			return `{"\u006a\u0074\u0069":"other",` + base
		}), code: IR, noJTI: true},
		{name: "duplicate member inside events", tok: tokRawClaims(func(base string) string {
			return "{" + strings.Replace(base, `"events":{`, `"events":{"`+evSessionRevok+`":{},`, 1)
		}), code: IR, noJTI: true},
		{name: "duplicate member inside an event payload", tok: tokRawClaims(func(base string) string {
			return "{" + strings.Replace(base, `"initiating_entity":"policy"`, `"initiating_entity":"policy","initiating_entity":"user"`, 1)
		}), code: IR, noJTI: true},
		{name: "nesting deeper than any SET", tok: tokRawClaims(func(base string) string {
			return `{"deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "," + base
		}), code: IR, noJTI: true},

		// Header.
		{name: "unknown crit", tok: tokHeader(func(h map[string]any) {
			h["crit"] = []string{"urn:example:ext"}
			h["urn:example:ext"] = true
		}), code: IR, jti: testJTI},
		{name: "missing typ (ssf)", tok: tokHeader(func(h map[string]any) { delete(h, "typ") }), code: IR, jti: testJTI},
		{name: "missing typ (rfc8417) accepted", cfg: rfc8417, tok: tokHeader(func(h map[string]any) { delete(h, "typ") })},
		{name: "typ JWT", tok: tokHeader(func(h map[string]any) { h["typ"] = "JWT" }), code: IR, jti: testJTI},
		{name: "typ not a string", tok: tokHeader(func(h map[string]any) { h["typ"] = 1 }), code: IR, jti: testJTI},
		{name: "typ application/secevent+jwt", tok: tokHeader(func(h map[string]any) { h["typ"] = "application/secevent+jwt" })},
		{name: "typ SECEVENT+JWT", tok: tokHeader(func(h map[string]any) { h["typ"] = "SECEVENT+JWT" })},
		{name: "typ Application/SecEvent+JWT", tok: tokHeader(func(h map[string]any) { h["typ"] = "Application/SecEvent+JWT" })},
		{name: "alg missing", tok: tokRawHeader(`{"typ":"secevent+jwt","kid":"rsa"}`), code: IR, jti: testJTI},
		{name: "alg not a string", tok: tokRawHeader(`{"typ":"secevent+jwt","alg":["RS256"],"kid":"rsa"}`), code: IR, jti: testJTI},
		{name: "kid not a string", tok: tokHeader(func(h map[string]any) { h["kid"] = 7 }), code: IR, jti: testJTI},

		// iss, iat, jti.
		{name: "iss missing", tok: tokClaims(del("iss")), code: IR, jti: testJTI},
		{name: "iss number", tok: tokClaims(set("iss", 1)), code: IR, jti: testJTI},
		{name: "iss empty", tok: tokClaims(set("iss", "")), code: IR, jti: testJTI},
		{name: "iss different", tok: tokClaims(set("iss", "https://other.example.com/")), code: II, jti: testJTI},
		{name: "iss differs by a trailing slash", tok: tokClaims(set("iss", "https://idp.example.com")), code: II, jti: testJTI},
		{name: "iat missing", tok: tokClaims(del("iat")), code: IR, jti: testJTI},
		{name: "iat string", tok: tokClaims(set("iat", "1749999940")), code: IR, jti: testJTI},
		{name: "iat negative", tok: tokClaims(set("iat", -1)), code: IR, jti: testJTI},
		{name: "iat with a fraction", tok: tokClaims(set("iat", json.Number("1749999940.5")))},
		{name: "iat beyond max clock skew", tok: tokClaims(set("iat", now+int64(verify.DefaultClockSkew/time.Second)+1)), code: IR, jti: testJTI},
		{name: "iat slightly in the future", tok: tokClaims(set("iat", now+30))},
		{name: "iat beyond a configured skew", cfg: func(c *verify.Config) { c.MaxClockSkew = 10 * time.Second },
			tok: tokClaims(set("iat", now+30)), code: IR, jti: testJTI},
		{name: "iat far beyond int64 seconds", tok: tokClaims(set("iat", json.Number("1e19"))), code: IR, jti: testJTI},
		{name: "iat out of float range", tok: tokClaims(set("iat", json.Number("1e400"))), code: IR, jti: testJTI},
		{name: "jti missing", tok: tokClaims(del("jti")), code: IR, noJTI: true},
		{name: "jti empty", tok: tokClaims(set("jti", "")), code: IR, noJTI: true},
		{name: "jti number", tok: tokClaims(set("jti", 123456)), code: IR, noJTI: true},
		{name: "jti longer than 256 bytes", tok: tokClaims(set("jti", strings.Repeat("j", 257))), code: IR, jti: strings.Repeat("j", 257)},
		{name: "jti with a line feed", tok: tokClaims(set("jti", "a\nb")), code: IR, jti: "a\nb"},
		{name: "jti with a carriage return", tok: tokClaims(set("jti", "a\rb")), code: IR, jti: "a\rb"},
		{name: "jti with NUL", tok: tokClaims(set("jti", "a\x00b")), code: IR, jti: "a\x00b"},
		{name: "jti with DEL", tok: tokClaims(set("jti", "a\x7fb")), code: IR, jti: "a\x7fb"},
		{name: "jti with a C1 control", tok: tokClaims(set("jti", "a\u0085b")), code: IR, jti: "a\u0085b"},
		{name: "toe not a number", tok: tokClaims(set("toe", "yesterday")), code: IR, jti: testJTI},
		{name: "toe number", tok: tokClaims(set("toe", now-100)), check: func(tb testing.TB, s *verify.SET) {
			if s.TOE == nil || *s.TOE != json.Number("1749999900") {
				tb.Errorf("want toe 1749999900, got %v", s.TOE)
			}
		}},
		{name: "txn not a string", tok: tokClaims(set("txn", 8675309)), code: IR, jti: testJTI},

		// aud.
		{name: "aud number", tok: tokClaims(set("aud", 42)), code: IR, jti: testJTI},
		{name: "aud array with a number", tok: tokClaims(set("aud", []any{testAudience, 42})), code: IR, jti: testJTI},
		{name: "aud missing", tok: tokClaims(del("aud")), code: IA, jti: testJTI},
		{name: "aud null", tok: tokClaims(set("aud", nil)), code: IA, jti: testJTI},
		{name: "aud empty array", tok: tokClaims(set("aud", []string{})), code: IA, jti: testJTI},
		{name: "aud wrong", tok: tokClaims(set("aud", "https://other.example.com/")), code: IA, jti: testJTI},
		{name: "aud array without ours", tok: tokClaims(set("aud", []string{"https://a.example/", "https://b.example/"})), code: IA, jti: testJTI},
		{name: "aud array containing ours", tok: tokClaims(set("aud", []string{"https://a.example/", testAudience})),
			check: func(tb testing.TB, s *verify.SET) {
				if len(s.Aud) != 2 || s.Aud[1] != testAudience {
					tb.Errorf("want both audiences, got %q", s.Aud)
				}
			}},

		// events.
		{name: "events missing", tok: tokClaims(del("events")), code: IR, jti: testJTI},
		{name: "events empty", tok: tokClaims(set("events", map[string]any{})), code: IR, jti: testJTI},
		{name: "events array", tok: tokClaims(set("events", []any{map[string]any{}})), code: IR, jti: testJTI},
		{name: "events string", tok: tokClaims(set("events", evSessionRevok)), code: IR, jti: testJTI},
		{name: "event value string", tok: tokClaims(ev(evSessionRevok, "revoked")), code: IR, jti: testJTI},
		{name: "event value array", tok: tokClaims(ev(evSessionRevok, []any{})), code: IR, jti: testJTI},
		{name: "event value null", tok: tokClaims(ev(evSessionRevok, nil)), code: IR, jti: testJTI},
		{name: "event key not a URI", tok: tokClaims(ev("session-revoked", map[string]any{})), code: IR, jti: testJTI},
		{name: "event key empty", tok: tokClaims(ev("", map[string]any{})), code: IR, jti: testJTI},
		{name: "unknown event type accepted", tok: tokClaims(ev("urn:example:event:thing", map[string]any{"any": []int{1}}))},
		{name: "two events (ssf)", tok: tokClaims(rawEvents(`{"urn:example:b":{},"urn:example:a":{}}`)), code: IR, jti: testJTI},
		{name: "two events (rfc8417) in order", cfg: rfc8417,
			tok: tokClaims(rawEvents(`{"urn:example:b":{"n":1},"` + evSessionRevok + `":{}}`)),
			check: func(tb testing.TB, s *verify.SET) {
				if len(s.Events) != 2 || s.Events[0].Type != "urn:example:b" || s.Events[1].Type != evSessionRevok {
					tb.Fatalf("want events [urn:example:b %s], got %+v", evSessionRevok, s.Events)
				}
				if string(s.Events[0].Payload) != `{"n":1}` {
					tb.Errorf("want payload %q, got %q", `{"n":1}`, s.Events[0].Payload)
				}
			}},

		// Profile rules.
		{name: "sub present (ssf)", tok: tokClaims(set("sub", "user@example.com")), code: IR, jti: testJTI},
		{name: "sub present (rfc8417)", cfg: rfc8417, tok: tokClaims(set("sub", "user@example.com")),
			check: func(tb testing.TB, s *verify.SET) {
				if s.Sub != "user@example.com" {
					tb.Errorf("want sub %q, got %q", "user@example.com", s.Sub)
				}
			}},
		{name: "sub not a string (rfc8417)", cfg: rfc8417, tok: tokClaims(set("sub", 5)), code: IR, jti: testJTI},
		{name: "exp present (ssf)", tok: tokClaims(set("exp", now+3600)), code: IR, jti: testJTI},
		{name: "exp expired (rfc8417)", cfg: rfc8417, tok: tokClaims(set("exp", now-int64(verify.DefaultClockSkew/time.Second)-1)), code: IR, jti: testJTI},
		{name: "exp within skew (rfc8417)", cfg: rfc8417, tok: tokClaims(set("exp", now-30))},
		{name: "exp in the future (rfc8417)", cfg: rfc8417, tok: tokClaims(set("exp", now+3600))},
		{name: "exp far beyond int64 seconds (rfc8417)", cfg: rfc8417, tok: tokClaims(set("exp", json.Number("1e19")))},
		{name: "exp not a number (rfc8417)", cfg: rfc8417, tok: tokClaims(set("exp", "tomorrow")), code: IR, jti: testJTI},
		{name: "sub_id missing (ssf)", tok: tokClaims(del("sub_id")), code: IR, jti: testJTI},
		{name: "sub_id missing (rfc8417)", cfg: rfc8417, tok: tokClaims(del("sub_id"))},

		// Subject identifiers.
		{name: "sub_id string", tok: tokClaims(subID("user@example.com")), code: IR, jti: testJTI},
		{name: "sub_id no format", tok: tokClaims(subID(map[string]any{"email": "user@example.com"})), code: IR, jti: testJTI},
		{name: "sub_id format not a string", tok: tokClaims(subID(map[string]any{"format": 1, "email": "user@example.com"})), code: IR, jti: testJTI},
		{name: "sub_id email missing email", tok: tokClaims(subID(map[string]any{"format": "email"})), code: IR, jti: testJTI},
		{name: "sub_id email empty", tok: tokClaims(subID(map[string]any{"format": "email", "email": ""})), code: IR, jti: testJTI},
		{name: "sub_id email not a string", tok: tokClaims(subID(map[string]any{"format": "email", "email": []string{"a@example.com"}})), code: IR, jti: testJTI},
		{name: "sub_id extra member", tok: tokClaims(subID(map[string]any{"format": "email", "email": "user@example.com", "phone_number": "+12065550100"})), code: IR, jti: testJTI},
		{name: "sub_id iss_sub missing sub", tok: tokClaims(subID(map[string]any{"format": "iss_sub", "iss": testIssuer})), code: IR, jti: testJTI},
		{name: "sub_id complex nested complex", tok: tokClaims(subID(map[string]any{
			"format": "complex",
			"user":   map[string]any{"format": "complex", "device": map[string]any{"format": "opaque", "id": "d1"}},
		})), code: IR, jti: testJTI},
		{name: "sub_id complex without members", tok: tokClaims(subID(map[string]any{"format": "complex"})), code: IR, jti: testJTI},
		{name: "sub_id complex member not an object", tok: tokClaims(subID(map[string]any{"format": "complex", "user": "alice"})), code: IR, jti: testJTI},
		{name: "sub_id complex with a bad member", tok: tokClaims(subID(map[string]any{
			"format": "complex", "user": map[string]any{"format": "email"},
		})), code: IR, jti: testJTI},
		{name: "sub_id aliases empty", tok: tokClaims(subID(map[string]any{"format": "aliases", "identifiers": []any{}})), code: IR, jti: testJTI},
		{name: "sub_id aliases nesting aliases", tok: tokClaims(subID(map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "aliases", "identifiers": []any{map[string]any{"format": "opaque", "id": "x"}}},
		}})), code: IR, jti: testJTI},
		{name: "sub_id ip-addresses bad IP", tok: tokClaims(subID(map[string]any{"format": "ip-addresses", "ip-addresses": []string{"10.0.0.1", "10.0.0.300"}})), code: IR, jti: testJTI},
		{name: "sub_id ip-addresses empty", tok: tokClaims(subID(map[string]any{"format": "ip-addresses", "ip-addresses": []string{}})), code: IR, jti: testJTI},
		{name: "sub_id unknown format accepted", tok: tokClaims(subID(map[string]any{"format": "x-acme-employee", "badge": 1234}))},
		{name: "sub_id complex accepted", tok: tokClaims(subID(map[string]any{
			"format":  "complex",
			"user":    map[string]any{"format": "iss_sub", "iss": "https://other.example/", "sub": "u1"},
			"device":  map[string]any{"format": "opaque", "id": "d1"},
			"session": map[string]any{"format": "x-proprietary", "sid": "s1"},
		}))},
		{name: "sub_id aliases accepted", tok: tokClaims(subID(map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "email", "email": "user@example.com"},
			map[string]any{"format": "phone_number", "phone_number": "+12065550100"},
		}}))},
		{name: "sub_id ip-addresses accepted", tok: tokClaims(subID(map[string]any{"format": "ip-addresses", "ip-addresses": []string{"10.0.0.1", "2001:db8::1"}}))},
		{name: "sub_id every registered format", tok: tokClaims(subID(map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "account", "uri": "acct:user@example.com"},
			map[string]any{"format": "opaque", "id": "11112222333344445555"},
			map[string]any{"format": "did", "url": "did:example:123456"},
			map[string]any{"format": "uri", "uri": "https://user.example.com/"},
			map[string]any{"format": "jwt_id", "iss": "https://idp.example.com/", "jti": "B70BA622"},
			map[string]any{"format": "saml_assertion_id", "issuer": "https://idp.example.com/", "assertion_id": "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6"},
		}}))},

		// Event payloads.
		{name: "credential-change accepted", tok: tokClaims(ev(evCredChange, credOK))},
		{name: "credential-change missing change_type", tok: tokClaims(ev(evCredChange, map[string]any{"credential_type": "password"})), code: IR, jti: testJTI},
		{name: "credential-change unknown change_type", tok: tokClaims(ev(evCredChange, map[string]any{"credential_type": "password", "change_type": "rotate"})), code: IR, jti: testJTI},
		{name: "credential-change empty credential_type", tok: tokClaims(ev(evCredChange, map[string]any{"credential_type": "", "change_type": "create"})), code: IR, jti: testJTI},
		{name: "credential-change agreed credential_type accepted", tok: tokClaims(ev(evCredChange, map[string]any{"credential_type": "x-acme-badge", "change_type": "revoke"}))},
		{name: "device-compliance-change bad status", tok: tokClaims(ev(evDevice, map[string]any{"previous_status": "compliant", "current_status": "broken"})), code: IR, jti: testJTI},
		{name: "device-compliance-change accepted", tok: tokClaims(ev(evDevice, map[string]any{"previous_status": "compliant", "current_status": "not-compliant"}))},
		{name: "risk-level-change bad level", tok: tokClaims(ev(evRisk, map[string]any{"principal": "USER", "current_level": "CRITICAL"})), code: IR, jti: testJTI},
		{name: "risk-level-change lower-case level", tok: tokClaims(ev(evRisk, map[string]any{"principal": "USER", "current_level": "high"})), code: IR, jti: testJTI},
		{name: "risk-level-change accepted", tok: tokClaims(ev(evRisk, map[string]any{"principal": "USER", "current_level": "HIGH", "previous_level": "LOW", "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH"}))},
		{name: "assurance-level-change bad direction", tok: tokClaims(ev(evAssurance, map[string]any{"namespace": "NIST-AAL", "current_level": "nist-aal2", "change_direction": "sideways"})), code: IR, jti: testJTI},
		{name: "token-claims-change missing claims", tok: tokClaims(ev(evTokenClaims, map[string]any{})), code: IR, jti: testJTI},
		{name: "token-claims-change claims not an object", tok: tokClaims(ev(evTokenClaims, map[string]any{"claims": "role=admin"})), code: IR, jti: testJTI},
		{name: "session-established amr not an array", tok: tokClaims(ev(evSessionEst, map[string]any{"amr": "pwd"})), code: IR, jti: testJTI},
		{name: "session-revoked bad initiating_entity", tok: tokClaims(ev(evSessionRevok, map[string]any{"initiating_entity": "robot"})), code: IR, jti: testJTI},
		{name: "session-revoked empty reason_admin", tok: tokClaims(ev(evSessionRevok, map[string]any{"reason_admin": map[string]any{}})), code: IR, jti: testJTI},
		{name: "session-revoked event_timestamp string", tok: tokClaims(ev(evSessionRevok, map[string]any{"event_timestamp": "now"})), code: IR, jti: testJTI},
		{name: "session-revoked empty payload accepted", tok: tokClaims(ev(evSessionRevok, map[string]any{}))},
		{name: "account-disabled bad reason", tok: tokClaims(ev(evAcctDisable, map[string]any{"reason": "spam"})), code: IR, jti: testJTI},
		{name: "stream-updated missing status", tok: tokClaims(ev(evStreamUpd, map[string]any{"reason": "maintenance"})), code: IR, jti: testJTI},
		{name: "stream-updated bad status", tok: tokClaims(ev(evStreamUpd, map[string]any{"status": "stopped"})), code: IR, jti: testJTI},
		{name: "stream-updated accepted", tok: tokClaims(ev(evStreamUpd, map[string]any{"status": "disabled"}))},

		// Keys and signatures.
		{name: "alg not in the issuer's allow-list", cfg: func(c *verify.Config) { c.Algorithms = []string{"ES256"} }, tok: tokClaims(), code: IK, jti: testJTI},
		{name: "alg none", tok: func(tb testing.TB) string {
			return sign(tb, nil, map[string]any{"typ": "secevent+jwt", "alg": "none"}, baseClaims())
		}, code: IK, jti: testJTI},
		{name: "alg none (rfc8417)", cfg: rfc8417, tok: func(tb testing.TB) string {
			return sign(tb, nil, map[string]any{"alg": "none"}, baseClaims())
		}, code: IK, jti: testJTI},
		{name: "alg None", tok: func(tb testing.TB) string {
			return signRaw(tb, nil, "none", []byte(`{"typ":"secevent+jwt","alg":"None"}`), mustJSON(tb, baseClaims()))
		}, code: IK, jti: testJTI},
		{name: "HS256", tok: func(tb testing.TB) string {
			return sign(tb, []byte("shared-secret-that-is-long-enough"), map[string]any{"typ": "secevent+jwt", "alg": "HS256", "kid": "rsa"}, baseClaims())
		}, code: IK, jti: testJTI},
		{name: "alg lower case", tok: func(tb testing.TB) string {
			return signRaw(tb, r.rsa, "RS256", []byte(`{"typ":"secevent+jwt","alg":"rs256","kid":"rsa"}`), mustJSON(tb, baseClaims()))
		}, code: IK, jti: testJTI},
		{name: "unknown kid", tok: tokHeader(func(h map[string]any) { h["kid"] = "no-such-key" }), code: IK, jti: testJTI},
		{name: "JWK alg RS256 used with PS256", tok: tokAlg("PS256", func() testKey { return r.rsa }, "rsa-rs256"), code: IK, jti: testJTI},
		{name: "JWK use enc", tok: tokAlg("RS256", func() testKey { return r.rsa }, "rsa-enc"), code: IK, jti: testJTI},
		{name: "JWK key_ops without verify", tok: tokAlg("RS256", func() testKey { return r.rsa }, "rsa-encrypt-ops"), code: IK, jti: testJTI},
		{name: "RSA key of 1024 bits", tok: tokAlg("RS256", func() testKey { return r.rsa1024 }, ""), code: IK, jti: testJTI},
		{name: "ES256 header with a P-384 key", tok: tokAlg("ES256", func() testKey { return r.ec256 }, "ec384"), code: IK, jti: testJTI},
		{name: "ES512 signature with ES256 header", tok: func(tb testing.TB) string {
			h := baseHeader("ES256", r.ec521)
			return signRaw(tb, r.ec521, "ES512", mustJSON(tb, h), mustJSON(tb, baseClaims()))
		}, code: IK, jti: testJTI},
		{name: "EdDSA header with an RSA key", tok: tokAlg("EdDSA", func() testKey { return r.ed }, "rsa"), code: IK, jti: testJTI},
		{name: "RS256 header with an EC key", tok: tokAlg("RS256", func() testKey { return r.rsa }, "ec256"), code: IK, jti: testJTI},
		{name: "PS256 signature under RS256 header", tok: func(tb testing.TB) string {
			return signRaw(tb, r.rsa, "PS256", []byte(rsaHeader), mustJSON(tb, baseClaims()))
		}, code: IK, jti: testJTI},
		{name: "bad signature", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, s := parts(tb, tok)
			sig := mustB64(tb, s)
			sig[0] ^= 0x01
			return h + "." + c + "." + b64(sig)
		}), code: IK, jti: testJTI},
		{name: "empty signature", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, c, _ := parts(tb, tok)
			return h + "." + c + "."
		}), code: IK, jti: testJTI},
		{name: "claims changed after signing", tok: tokEdit(func(tb testing.TB, tok string) string {
			h, _, s := parts(tb, tok)
			c := baseClaims()
			c["jti"] = "jti-2"
			return h + "." + b64(mustJSON(tb, c)) + "." + s
		}), code: IK, jti: "jti-2"},
		{name: "signed by another key under our kid", tok: func(tb testing.TB) string {
			return sign(tb, r.attacker, baseHeader("RS256", r.attacker), baseClaims())
		}, code: IK, jti: testJTI},
		{name: "no kid and no key verifies", tok: func(tb testing.TB) string {
			return sign(tb, r.attackerEC, map[string]any{"typ": "secevent+jwt", "alg": "ES256"}, baseClaims())
		}, code: IK, jti: testJTI},

		// Verification events and state.
		{name: "verification state not requested", tok: tokClaims(ev(evVerify, map[string]any{"state": "s-1"})), code: IS, jti: testJTI},
		{name: "verification state requested", expect: []string{"s-1"}, tok: tokClaims(ev(evVerify, map[string]any{"state": "s-1"}))},
		{name: "verification state other than requested", expect: []string{"s-1"}, tok: tokClaims(ev(evVerify, map[string]any{"state": "s-2"})), code: IS, jti: testJTI},
		{name: "verification without state", tok: tokClaims(ev(evVerify, map[string]any{}))},
		{name: "verification state not a string", tok: tokClaims(ev(evVerify, map[string]any{"state": 1})), code: IR, jti: testJTI},
		{name: "lenient: state mismatch still rejected", cfg: lenient, tok: tokClaims(ev(evVerify, map[string]any{"state": "s-9"})), code: IS, jti: testJTI},

		// Lenient payload validation.
		{name: "lenient: bad payload accepted with a warning", cfg: lenient,
			tok: tokClaims(ev(evCredChange, map[string]any{"credential_type": "password"})),
			check: func(tb testing.TB, s *verify.SET) {
				if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "change_type") {
					tb.Errorf("want one warning naming change_type, got %q", s.Warnings)
				}
			}},
		{name: "lenient: good payload has no warning", cfg: lenient, tok: tokClaims(ev(evCredChange, credOK)),
			check: func(tb testing.TB, s *verify.SET) {
				if len(s.Warnings) != 0 {
					tb.Errorf("want no warnings, got %q", s.Warnings)
				}
			}},
		{name: "lenient: bad sub_id still rejected", cfg: lenient, tok: tokClaims(subID(map[string]any{"format": "email"})), code: IR, jti: testJTI},
		{name: "lenient: event not an object still rejected", cfg: lenient, tok: tokClaims(ev(evCredChange, "x")), code: IR, jti: testJTI},
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, srv.URL, func(c *verify.Config, _ *verify.Options) {
				if row.cfg != nil {
					row.cfg(c)
				}
			})
			for _, s := range row.expect {
				v.States().Expect(s, time.Hour)
			}
			tok := row.tok(t)
			s, e := wantCode(t, v, tok, row.code)
			if e != nil {
				want := row.jti
				if row.noJTI {
					want = ""
				}
				if e.JTI != want {
					t.Errorf("want JTI %q, got %q", want, e.JTI)
				}
				return
			}
			if s.Raw != strings.TrimSpace(tok) {
				t.Errorf("want Raw to be the token as received")
			}
			if s.JTI == "" || len(s.Events) == 0 {
				t.Errorf("want a jti and at least one event, got %q and %d", s.JTI, len(s.Events))
			}
			if row.check != nil {
				row.check(t, s)
			}
		})
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func mustB64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		tb.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// TestVerifyStateExpiry checks that a requested state stops matching once
// its time to live has passed on the verifier's clock.
func TestVerifyStateExpiry(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	clock := testNow
	var mu sync.Mutex
	v := newVerifier(t, srv.URL, func(_ *verify.Config, o *verify.Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	v.States().Expect("s-1", time.Minute)
	tok := tokClaims(ev(evVerify, map[string]any{"state": "s-1"}))(t)
	wantCode(t, v, tok, "")
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	wantCode(t, v, tok, verify.CodeInvalidState)
}
