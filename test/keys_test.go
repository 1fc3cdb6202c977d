package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
)

// TestJWKSKeyHygieneAndTimeClaims: the issuer's JWKS publishes a valid
// key, an EC key with its private d and an EC key whose point is off the
// curve. The valid key keeps verifying (202); a SET under the leaked
// key's kid is 400 invalid_key; both bad keys show on /metrics and
// /issuers, and d appears nowhere. A SET whose nbf is three years ahead,
// or whose iat is older than the issuer's max_age, is 400
// invalid_request.
func TestJWKSKeyHygieneAndTimeClaims(t *testing.T) {
	acme := newTransmitter(t, "ES256")

	// The transmitter's real key, as it publishes it.
	resp, err := httpClient.Get(acme.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	var real jwkset.JWKSMarshal
	err = json.NewDecoder(resp.Body).Decode(&real)
	resp.Body.Close()
	if err != nil || len(real.Keys) != 1 {
		t.Fatalf("transmitter JWKS: %v %+v", err, real)
	}

	leaked, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwkset.NewJWKFromKey(leaked, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: "leaked", ALG: jwkset.AlgES256, USE: jwkset.UseSig},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := priv.Marshal().D
	if d == "" {
		t.Fatal("the leaked key's JWK has no d")
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := jwkset.NewJWKFromKey(&other.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "broken"}})
	if err != nil {
		t.Fatal(err)
	}
	bm := broken.Marshal()
	y, _ := base64.RawURLEncoding.DecodeString(bm.Y)
	y[len(y)-1] ^= 1 // the point leaves the curve
	bm.Y = base64.RawURLEncoding.EncodeToString(y)

	body, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{priv.Marshal(), bm, real.Keys[0]}})
	if err != nil {
		t.Fatal(err)
	}
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(jwksSrv.Close)

	is := acmeOnly(t, acme, jwksSrv.URL+"/jwks", "    max_age: 1h\n")
	g := startGateway(t, gwOptions{Issuers: is})

	// The valid key beside the bad ones verifies.
	if _, r := g.pushAcme(t); r.Status != http.StatusAccepted {
		t.Fatalf("SET under the valid key: want 202, got %d %s", r.Status, r.Body)
	}

	// A SET signed with the leaked private key, under its kid.
	r := g.pushAs(t, "acme", is.acmeToken, foreignSET(t, acme, leaked, "leaked"))
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"invalid_key"`) {
		t.Fatalf("SET under the leaked key: want 400 invalid_key, got %d %s", r.Status, r.Body)
	}
	t.Logf("leaked key: %d %s", r.Status, r.Body)

	// Time claims: nbf three years ahead; iat older than max_age (1h).
	for _, tc := range []struct {
		name, claim string
		value       int64
		wantDesc    string
	}{
		{"nbf three years ahead", "nbf", time.Now().AddDate(3, 0, 0).Unix(), "nbf"},
		{"iat two hours old", "iat", time.Now().Add(-2 * time.Hour).Unix(), "max_age"},
	} {
		c := acme.Claims("https://schemas.openid.net/secevent/caep/event-type/session-revoked",
			map[string]any{"initiating_entity": "policy"}, "bob@acme.example")
		c[tc.claim] = tc.value
		set, err := acme.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		r := g.pushAs(t, "acme", is.acmeToken, set)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"invalid_request"`) || !strings.Contains(string(r.Body), tc.wantDesc) {
			t.Errorf("%s: want 400 invalid_request naming %s, got %d %s", tc.name, tc.wantDesc, r.Status, r.Body)
		}
	}

	fams := scrape(t, g)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"setgate_jwks_keys", map[string]string{"issuer": "acme"}, 1},
		{"setgate_jwks_fetch_failures_total", map[string]string{"issuer": "acme"}, 0},
		{"setgate_jwks_keys_skipped_total", map[string]string{"issuer": "acme", "reason": "private_member"}, 1},
		{"setgate_jwks_keys_skipped_total", map[string]string{"issuer": "acme", "reason": "unparsable"}, 1},
		{"setgate_jwks_keys_skipped_total", map[string]string{"issuer": "acme", "reason": "symmetric"}, 0},
		{"setgate_sets_rejected_total", map[string]string{"issuer": "acme", "code": "invalid_key"}, 1},
		{"setgate_sets_rejected_total", map[string]string{"issuer": "acme", "code": "invalid_request"}, 2},
	} {
		if got := value(fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v: want %v, got %v", tt.name, tt.labels, tt.want, got)
		}
	}

	st := getBody(t, "http://"+g.admin+"/issuers")
	var state struct {
		Issuers []struct {
			Name string
			JWKS struct {
				Keys         int
				LastError    string `json:"last_error"`
				Skipped      []struct{ KID, Reason string }
				SkippedTotal map[string]int `json:"skipped_total"`
			}
		}
	}
	if err := json.Unmarshal([]byte(st), &state); err != nil || len(state.Issuers) != 1 {
		t.Fatalf("/issuers: %v\n%s", err, st)
	}
	j := state.Issuers[0].JWKS
	if j.Keys != 1 || j.LastError != "" || len(j.Skipped) != 2 || j.Skipped[0].KID != "leaked" || j.Skipped[0].Reason != "private_member" ||
		j.Skipped[1].KID != "broken" || j.Skipped[1].Reason != "unparsable" || j.SkippedTotal["private_member"] != 1 {
		t.Errorf("/issuers jwks: want 1 key, leaked (private_member) and broken (unparsable) skipped, got %s", st)
	}

	// The private member is never repeated: not on /issuers, not in logs.
	if strings.Contains(st, d) {
		t.Error("/issuers shows the leaked key's d")
	}
	if strings.Contains(g.log.String(), d) {
		t.Error("the log shows the leaked key's d")
	}
	if !strings.Contains(g.log.String(), "jwks key skipped") {
		t.Error("the log does not mention the skipped keys")
	}
}
