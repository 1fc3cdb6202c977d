package present

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/verify"
)

// TestVerdictRejected: a rejected SET still shows its decoded parts and
// its events, in document order, each with the subject it would get; the
// RFC 8935 code and description come from the *verify.Error, the cause
// is shown apart.
func TestVerdictRejected(t *testing.T) {
	subjects, err := bridge.NewSubjects("secevent")
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	raw := b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(`{"events":{"urn:b":{"x":1},"urn:a":{}}}`)) + ".sig"
	spec := config.Issuer{Name: "acme"}
	vd := Verdict{Issuer: "acme"}
	vd.Fill(spec, subjects, []byte(raw), nil, &verify.Error{Code: verify.CodeInvalidKey, Description: "no key", JTI: "j1", Err: errors.New("jwks down")})
	if vd.Accepted || vd.Code != verify.CodeInvalidKey || vd.Cause != "jwks down" || vd.JTI != "j1" {
		t.Fatalf("want the rejection with its cause, got %+v", vd)
	}
	if len(vd.Events) != 2 || vd.Events[0].Type != "urn:b" || vd.Events[1].Type != "urn:a" || vd.Events[0].Subject == "" {
		t.Fatalf("want both events in document order with subjects, got %+v", vd.Events)
	}
	var out bytes.Buffer
	if err := vd.Print(&out, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REJECTED by issuer acme", "code:        invalid_key", "cause:       jwks down", `"alg": "ES256"`, "payload: {\"x\":1}"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("want %q in\n%s", want, out.String())
		}
	}
}

// TestVerdictUnreadable: what is not a JWS shows as not readable.
func TestVerdictUnreadable(t *testing.T) {
	subjects, _ := bridge.NewSubjects("secevent")
	vd := Verdict{Issuer: "acme", Events: []VerdictEvent{}}
	vd.Fill(config.Issuer{Name: "acme"}, subjects, []byte("not a jws"), nil, errors.New("malformed"))
	var out bytes.Buffer
	_ = vd.Print(&out, false)
	if !strings.Contains(out.String(), "(not readable)") || !strings.Contains(out.String(), "(none readable)") || vd.Description != "malformed" {
		t.Errorf("want parts and events not readable, got %+v\n%s", vd, out.String())
	}
}
