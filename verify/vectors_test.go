package verify_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/verify"
)

// Test vectors copied exactly from the specs: TV1 is RFC 8935 Figure 1 (a
// legacy RISC subject, HS256), TV2 RFC 8417 Figure 6 (an unsecured SET,
// alg none), TV3 the SSF 1.0 §8.1.4 verification event, TV4 the SSF 1.0
// §8.1.5 stream-updated event, TV5 and TV6 the CAEP 1.0 §3 session-revoked
// (complex subject) and credential-change (FIDO2) examples. The specs give
// TV3 to TV6 as claims only; signVector signs them.
const (
	tv1 = "eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJIUzI1NiJ9Cg.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbS8iLCJqdGkiOiI3NTZFNjk3MTc1NjUyMDY5NjQ2NTZFNzQ2OTY2Njk2NTcyIiwiaWF0IjoxNTA4MTg0ODQ1LCJhdWQiOiI2MzZDNjk2NTZFNzQ1RjY5NjQiLCJldmVudHMiOnsiaHR0cHM6Ly9zY2hlbWFzLm9wZW5pZC5uZXQvc2VjZXZlbnQvcmlzYy9ldmVudC10eXBlL2FjY291bnQtZGlzYWJsZWQiOnsic3ViamVjdCI6eyJzdWJqZWN0X3R5cGUiOiJpc3Mtc3ViIiwiaXNzIjoiaHR0cHM6Ly9pZHAuZXhhbXBsZS5jb20vIiwic3ViIjoiNzM3NTYyNkE2NTYzNzQifSwicmVhc29uIjoiaGlqYWNraW5nIn19fQ.Y4rXxMD406P2edv00cr9Wf3_XwNtLjB9n-jTqN1_lLc"

	tv2 = "eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL3NjaW0uZXhhbXBsZS5jb20iLCJpYXQiOjE0NTg0OTY0MDQsImp0aSI6IjRkMzU1OWVjNjc1MDRhYWJhNjVkNDBiMDM2M2ZhYWQ4IiwiYXVkIjpbImh0dHBzOi8vc2NpbS5leGFtcGxlLmNvbS9GZWVkcy85OGQ1MjQ2MWZhNWJiYzg3OTU5M2I3NzU0IiwiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29tL0ZlZWRzLzVkNzYwNDUxNmIxZDA4NjQxZDc2NzZlZTciXSwiZXZlbnRzIjp7InVybjppZXRmOnBhcmFtczpzY2ltOmV2ZW50OmNyZWF0ZSI6eyJyZWYiOiJodHRwczovL3NjaW0uZXhhbXBsZS5jb20vVXNlcnMvNDRmNjE0MmRmOTZiZDZhYjYxZTc1MjFkOSIsImF0dHJpYnV0ZXMiOlsiaWQiLCJuYW1lIiwidXNlck5hbWUiLCJwYXNzd29yZCIsImVtYWlscyJdfX19."

	tv3State = "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="

	tv3 = `{"jti":"123456","iss":"https://transmitter.example.com","aud":"receiver.example.com","iat":1493856000,
 "sub_id":{"format":"opaque","id":"f67e39a0a4d34d56b3aa1bc4cff0069f"},
 "events":{"https://schemas.openid.net/secevent/ssf/event-type/verification":{"state":"VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}}}`

	tv4 = `{"jti":"123456","iss":"https://transmitter.example.com","aud":"receiver.example.com","iat":1493856000,
 "sub_id":{"format":"opaque","id":"f67e39a0a4d34d56b3aa1bc4cff0069f"},
 "events":{"https://schemas.openid.net/secevent/ssf/event-type/stream-updated":{"status":"paused","reason":"Internal error"}}}`

	tv5 = `{"iss":"https://idp.example.com/123456789/","jti":"24c63fb56e5a2d77a6b512616ca9fa24","iat":1615305159,
 "aud":"https://sp.example.com/caep","txn":"8675309",
 "sub_id":{"format":"complex",
   "session":{"format":"opaque","id":"dMTlD|1600802906337.16|16008.16"},
   "user":{"format":"iss_sub","iss":"https://idp.example.com/123456789/","sub":"99beb27c-c1c2-4955-882a-e0dc4996fcbc"},
   "tenant":{"format":"opaque","id":"123456789"}},
 "events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{
   "initiating_entity":"policy",
   "reason_admin":{"en":"Landspeed Policy Violation: C076E82F"},
   "reason_user":{"en":"Access attempt from multiple regions.","es-410":"Intento de acceso desde varias regiones."},
   "event_timestamp":1615304991}}}`

	tv6 = `{"iss":"https://idp.example.com/3456789/","jti":"07efd930f0977e4fcc1149a733ce7f78","iat":1615305159,
 "aud":"https://sp.example2.net/caep","txn":"8675309",
 "sub_id":{"format":"iss_sub","iss":"https://idp.example.com/3456789/","sub":"jane.smith@example.com"},
 "events":{"https://schemas.openid.net/secevent/caep/event-type/credential-change":{
   "credential_type":"fido2-roaming","change_type":"create",
   "fido2_aaguid":"accced6a-63f5-490a-9eea-e59bc1896cfc","friendly_name":"Jane's USB authenticator",
   "initiating_entity":"user","reason_admin":{"en":"User self-enrollment"},"event_timestamp":1615304991}}}`
)

// vectorIssuer configures the verifier for a vector's iss and aud.
func vectorIssuer(iss, aud string, more ...func(*verify.Config)) func(*verify.Config, *verify.Options) {
	return func(c *verify.Config, _ *verify.Options) {
		c.Issuer = iss
		c.Audience = []string{aud}
		for _, m := range more {
			m(c)
		}
	}
}

// signVector signs claims exactly as given, with the explicitly typed header
// {"typ":"secevent+jwt","alg":"RS256","kid":"rsa"} and the RSA-2048 key the
// test JWKS publishes.
func signVector(tb testing.TB, claims string) string {
	tb.Helper()
	return signRaw(tb, keys().rsa, "RS256", []byte(rsaHeader), []byte(claims))
}

// editVector decodes a vector's claims, applies mut and signs the result
// with header (nil: the harness header).
func editVector(tb testing.TB, claims string, header map[string]any, mut func(c map[string]any)) string {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(claims))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		tb.Fatalf("decode vector: %v", err)
	}
	mut(c)
	if header == nil {
		header = baseHeader("RS256", keys().rsa)
	}
	return sign(tb, keys().rsa, header, c)
}

func TestSpecVectors(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, defaultJWKS(t)...)

	t.Run("TV1 header decodes to JSON and a newline", func(t *testing.T) {
		t.Parallel()
		h, _, _ := parts(t, tv1)
		got, err := base64.RawURLEncoding.Strict().DecodeString(h)
		if err != nil {
			t.Fatalf("decode TV1 header: %v", err)
		}
		if want := "{\"typ\":\"secevent+jwt\",\"alg\":\"HS256\"}\n"; string(got) != want {
			t.Fatalf("want header %q, got %q", want, got)
		}
	})
	t.Run("header JSON followed by a newline parses", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, srv.URL, nil)
		tok := signRaw(t, keys().rsa, "RS256", []byte(rsaHeader+"\n"), append(mustJSON(t, baseClaims()), '\n'))
		wantCode(t, v, tok, "")
	})

	tv1Issuer := vectorIssuer("https://idp.example.com/", "636C69656E745F6964")
	tv2Issuer := vectorIssuer("https://scim.example.com", "https://scim.example.com/Feeds/98d52461fa5bbc879593b7754")
	tv3Issuer := vectorIssuer("https://transmitter.example.com", "receiver.example.com")
	tv5Issuer := vectorIssuer("https://idp.example.com/123456789/", "https://sp.example.com/caep")
	tv6Issuer := vectorIssuer("https://idp.example.com/3456789/", "https://sp.example2.net/caep")
	asRFC8417 := func(c *verify.Config) { c.Profile = verify.ProfileRFC8417 }

	tests := []struct {
		name   string
		cfg    func(*verify.Config, *verify.Options)
		expect string // verification state requested first
		tok    func(tb testing.TB) string
		code   verify.Code
		jti    string
		check  func(tb testing.TB, s *verify.SET)
	}{
		{name: "TV1 HS256 rejected", cfg: tv1Issuer, tok: func(testing.TB) string { return tv1 },
			code: verify.CodeInvalidKey, jti: "756E69717565206964656E746966696572"},
		{name: "TV1 HS256 rejected (rfc8417)", cfg: vectorIssuer("https://idp.example.com/", "636C69656E745F6964", asRFC8417),
			tok: func(testing.TB) string { return tv1 }, code: verify.CodeInvalidKey, jti: "756E69717565206964656E746966696572"},
		{name: "TV1 claims signed RS256: sub_id missing (ssf)", cfg: tv1Issuer, tok: func(tb testing.TB) string {
			_, c, _ := parts(tb, tv1)
			return signVector(tb, string(mustB64(tb, c)))
		}, code: verify.CodeInvalidRequest, jti: "756E69717565206964656E746966696572"},
		{name: "TV1 claims signed RS256 (rfc8417)", cfg: vectorIssuer("https://idp.example.com/", "636C69656E745F6964", asRFC8417),
			tok: func(tb testing.TB) string {
				_, c, _ := parts(tb, tv1)
				return signVector(tb, string(mustB64(tb, c)))
			}},

		{name: "TV2 alg none rejected", cfg: tv2Issuer, tok: func(testing.TB) string { return tv2 },
			code: verify.CodeInvalidKey, jti: "4d3559ec67504aaba65d40b0363faad8"},
		{name: "TV2 alg none rejected (rfc8417)", cfg: vectorIssuer("https://scim.example.com", "https://scim.example.com/Feeds/98d52461fa5bbc879593b7754", asRFC8417),
			tok: func(testing.TB) string { return tv2 }, code: verify.CodeInvalidKey, jti: "4d3559ec67504aaba65d40b0363faad8"},
		{name: "TV2 claims signed RS256 (rfc8417)", cfg: vectorIssuer("https://scim.example.com", "https://scim.example.com/Feeds/98d52461fa5bbc879593b7754", asRFC8417),
			tok: func(tb testing.TB) string {
				_, c, _ := parts(tb, tv2)
				return signVector(tb, string(mustB64(tb, c)))
			}, check: func(tb testing.TB, s *verify.SET) {
				if len(s.Events) != 1 || s.Events[0].Type != "urn:ietf:params:scim:event:create" || len(s.Aud) != 2 {
					tb.Errorf("want one SCIM create event and two audiences, got %+v %q", s.Events, s.Aud)
				}
			}},

		{name: "TV3 verification with requested state", cfg: tv3Issuer, expect: tv3State,
			tok: func(tb testing.TB) string { return signVector(tb, tv3) },
			check: func(tb testing.TB, s *verify.SET) {
				if s.JTI != "123456" || len(s.Events) != 1 || s.Events[0].Type != evVerify {
					tb.Errorf("want jti 123456 and a verification event, got %q %+v", s.JTI, s.Events)
				}
			}},
		{name: "TV3 verification with changed state", cfg: tv3Issuer, expect: tv3State,
			tok: func(tb testing.TB) string {
				return signVector(tb, strings.Replace(tv3, tv3State, "Q2hhbmdlZCBzdGF0ZS4K", 1))
			}, code: verify.CodeInvalidState, jti: "123456"},
		{name: "TV3 verification never requested", cfg: tv3Issuer,
			tok: func(tb testing.TB) string { return signVector(tb, tv3) }, code: verify.CodeInvalidState, jti: "123456"},

		{name: "TV4 stream-updated", cfg: tv3Issuer, tok: func(tb testing.TB) string { return signVector(tb, tv4) },
			check: func(tb testing.TB, s *verify.SET) {
				var p struct{ Status, Reason string }
				if err := json.Unmarshal(s.Events[0].Payload, &p); err != nil || p.Status != "paused" || p.Reason != "Internal error" {
					tb.Errorf("want status paused, reason %q, got %+v (%v)", "Internal error", p, err)
				}
			}},

		{name: "TV5 complex subject with txn", cfg: tv5Issuer, tok: func(tb testing.TB) string { return signVector(tb, tv5) },
			check: func(tb testing.TB, s *verify.SET) {
				if s.TXN != "8675309" || s.JTI != "24c63fb56e5a2d77a6b512616ca9fa24" {
					tb.Errorf("want txn 8675309 and jti 24c6…, got %q %q", s.TXN, s.JTI)
				}
				if !bytes.Contains(s.SubID, []byte(`"format":"complex"`)) {
					tb.Errorf("want the complex sub_id, got %s", s.SubID)
				}
				if len(s.Events) != 1 || s.Events[0].Type != evSessionRevok {
					tb.Errorf("want one session-revoked event, got %+v", s.Events)
				}
			}},

		{name: "TV6 credential-change", cfg: tv6Issuer, tok: func(tb testing.TB) string { return signVector(tb, tv6) },
			check: func(tb testing.TB, s *verify.SET) {
				if len(s.Events) != 1 || s.Events[0].Type != evCredChange {
					tb.Errorf("want one credential-change event, got %+v", s.Events)
				}
			}},
		{name: "TV6 without change_type", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) {
				delete(c["events"].(map[string]any)[evCredChange].(map[string]any), "change_type")
			})
		}, code: verify.CodeInvalidRequest, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with exp", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) { c["exp"] = 1615308759 })
		}, code: verify.CodeInvalidRequest, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with sub", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) { c["sub"] = "jane.smith@example.com" })
		}, code: verify.CodeInvalidRequest, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with another aud", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) { c["aud"] = "https://sp.example3.org/caep" })
		}, code: verify.CodeInvalidAudience, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with an unknown iss", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) { c["iss"] = "https://idp.example.com/999/" })
		}, code: verify.CodeInvalidIssuer, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with an unknown kid", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			h := baseHeader("RS256", keys().rsa)
			h["kid"] = "not-in-the-jwks"
			return editVector(tb, tv6, h, func(map[string]any) {})
		}, code: verify.CodeInvalidKey, jti: "07efd930f0977e4fcc1149a733ce7f78"},
		{name: "TV6 with a second event", cfg: tv6Issuer, tok: func(tb testing.TB) string {
			return editVector(tb, tv6, nil, func(c map[string]any) {
				c["events"].(map[string]any)[evSessionRevok] = map[string]any{}
			})
		}, code: verify.CodeInvalidRequest, jti: "07efd930f0977e4fcc1149a733ce7f78"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, srv.URL, tt.cfg)
			if tt.expect != "" {
				v.States().Expect(tt.expect, time.Hour)
			}
			s, e := wantCode(t, v, tt.tok(t), tt.code)
			if e != nil {
				if e.JTI != tt.jti {
					t.Errorf("want JTI %q, got %q", tt.jti, e.JTI)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}
