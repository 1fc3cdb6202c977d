package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

const verbAudience = "https://setgate.test/"

// verbIssuersFile writes an issuers file with one issuer "acme" trusting tr
// (and its push token file) and returns its path.
func verbIssuersFile(tb testing.TB, tr *transmitter.Transmitter, algs string) string {
	tb.Helper()
	dir := tb.TempDir()
	token := filepath.Join(dir, "acme.token")
	if err := os.WriteFile(token, []byte("push-secret-do-not-print\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "issuers.yaml")
	yaml := fmt.Sprintf(`issuers:
  - name: acme
    issuer: %s
    audience: [%s]
    jwks_uri: %s
    algorithms: [%s]
    push:
      bearer_token_file: %s
`, tr.Issuer(), verbAudience, tr.JWKSURL(), algs, token)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func newVerbTransmitter(tb testing.TB) *transmitter.Transmitter {
	tb.Helper()
	tr, err := transmitter.New(transmitter.Options{Alg: "ES256", Audience: verbAudience})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Close() })
	return tr
}

func verbSign(tb testing.TB, tr *transmitter.Transmitter, claims map[string]any) string {
	tb.Helper()
	tok, err := tr.Sign(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestVerifyVerb(t *testing.T) {
	tr := newVerbTransmitter(t)
	rogue := newVerbTransmitter(t)
	issuers := verbIssuersFile(t, tr, "ES256")
	claims := func(typ string, payload map[string]any) map[string]any {
		return tr.Claims(typ, payload, "alice@acme.example")
	}
	with := func(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }

	tests := []struct {
		name        string
		token       string
		wantCode    verify.Code // "" means accepted
		wantSubject string      // the subject shown for the (first) event
		wantText    []string    // more substrings of the text output
	}{
		{"valid", verbSign(t, tr, claims(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"})), "",
			"secevent.caep.session-revoked.acme", []string{"ACCEPTED", "alice@acme.example", `"initiating_entity":"policy"`}},
		{"another audience", verbSign(t, tr, with(claims(transmitter.SessionRevoked, nil), "aud", "https://elsewhere.example/")),
			verify.CodeInvalidAudience, "secevent.caep.session-revoked.acme", []string{"The aud claim does not name this receiver.", "https://elsewhere.example/"}},
		{"key never published", verbSign(t, rogue, with(claims(transmitter.SessionRevoked, nil), "iss", tr.Issuer())),
			verify.CodeInvalidKey, "secevent.caep.session-revoked.acme", nil},
		{"other issuer", verbSign(t, rogue, rogue.Claims(transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}, "bob@acme.example")),
			verify.CodeInvalidIssuer, "secevent.risc.account-disabled.acme", []string{"bob@acme.example"}},
		{"bad payload", verbSign(t, tr, claims(transmitter.CredentialChange, map[string]any{"credential_type": "password"})),
			verify.CodeInvalidRequest, "secevent.caep.credential-change.acme", []string{`required field "change_type" is missing`}},
		{"unrequested verification state", verbSign(t, tr, claims(transmitter.Verification, map[string]any{"state": "abc"})),
			verify.CodeInvalidState, "secevent.ssf.verification.acme", nil},
		{"not a JWS", "not-a-token", verify.CodeInvalidRequest, "", []string{"not a compact JWS", "(not readable)"}},
		{"empty", "", verify.CodeInvalidRequest, "", []string{"The request body is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/text", func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := verifyVerb(t.Context(), []string{"--issuers", issuers, "--issuer", "acme", verbTokenArg(t, tt.token)}, map[string]string{}, strings.NewReader(""), &out, &errOut)
			text := out.String()
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v\n%s", err, text)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), string(tt.wantCode)) {
					t.Fatalf("want an error with %q, got %v", tt.wantCode, err)
				}
				for _, want := range []string{"REJECTED", "code:        " + string(tt.wantCode)} {
					if !strings.Contains(text, want) {
						t.Errorf("want %q in the output, got\n%s", want, text)
					}
				}
			}
			for _, want := range append([]string{tt.wantSubject}, tt.wantText...) {
				if !strings.Contains(text, want) {
					t.Errorf("want %q in the output, got\n%s", want, text)
				}
			}
			if strings.Contains(text+errOut.String(), "push-secret-do-not-print") {
				t.Error("the push secret was printed")
			}
		})
		t.Run(tt.name+"/json", func(t *testing.T) {
			var out bytes.Buffer
			// Flags after the token work too.
			err := verifyVerb(t.Context(), []string{"--issuers", issuers, verbTokenArg(t, tt.token), "--json"}, map[string]string{}, strings.NewReader(""), &out, &bytes.Buffer{})
			if (err == nil) != (tt.wantCode == "") {
				t.Fatalf("want accepted=%v, got err %v", tt.wantCode == "", err)
			}
			var got struct {
				Accepted    bool            `json:"accepted"`
				Code        verify.Code     `json:"code"`
				Description string          `json:"description"`
				Header      json.RawMessage `json:"header"`
				Claims      json.RawMessage `json:"claims"`
				Events      []struct {
					Type    string          `json:"type"`
					Subject string          `json:"subject"`
					Payload json.RawMessage `json:"payload"`
				} `json:"events"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out.String())
			}
			if got.Accepted != (tt.wantCode == "") || got.Code != tt.wantCode {
				t.Errorf("want accepted=%v code %q, got %v %q", tt.wantCode == "", tt.wantCode, got.Accepted, got.Code)
			}
			if got.Code != "" && got.Description == "" {
				t.Error("want a description with the code")
			}
			if tt.wantSubject != "" {
				if len(got.Events) != 1 || got.Events[0].Subject != tt.wantSubject || !json.Valid(got.Events[0].Payload) {
					t.Errorf("want one event on %q, got %+v", tt.wantSubject, got.Events)
				}
				var h struct{ Typ string }
				if err := json.Unmarshal(got.Header, &h); err != nil || h.Typ != "secevent+jwt" {
					t.Errorf("want the decoded header, got %s", got.Header)
				}
				var c struct{ Iss string }
				if err := json.Unmarshal(got.Claims, &c); err != nil || c.Iss == "" {
					t.Errorf("want the decoded claims, got %s", got.Claims)
				}
			}
		})
	}
}

// verbTokenArg is the verify argument for token: the token itself when it
// has the shape of a compact JWS, else a file holding it.
func verbTokenArg(tb testing.TB, token string) string {
	tb.Helper()
	if looksLikeJWS(token) {
		return token
	}
	path := filepath.Join(tb.TempDir(), "set.jwt")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestVerifyVerbGolden compares the whole text output of `setgate verify`
// with testdata/verify/<name>.golden, for an accepted SET and one SET per
// error code verification can give, with the random parts (transmitter
// URLs, kids) normalised. Each SET is given in every form verify takes —
// a file path, - with the SET on stdin, and the token itself when it has
// the shape of a compact JWS — and each form must print the same. Run with
// -update to rewrite the files.
func TestVerifyVerbGolden(t *testing.T) {
	tr := newVerbTransmitter(t)
	rogue := newVerbTransmitter(t)
	issuers := verbIssuersFile(t, tr, "ES256")
	claims := func(typ string, payload map[string]any) map[string]any {
		c := tr.Claims(typ, payload, "alice@acme.example")
		c["jti"], c["iat"], c["aud"] = "jti-1", 1700000000, verbAudience
		delete(c, "txn")
		return c
	}
	with := func(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }
	sessionRevoked := func() map[string]any {
		return claims(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"})
	}
	rogueSigned := func() string {
		c := sessionRevoked()
		tok, err := rogue.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name  string
		token string
	}{
		{"accepted", verbSign(t, tr, sessionRevoked())},
		{"invalid_audience", verbSign(t, tr, with(sessionRevoked(), "aud", "https://elsewhere.example/"))},
		{"invalid_issuer", verbSign(t, tr, with(sessionRevoked(), "iss", "https://other-idp.example/"))},
		{"invalid_key", rogueSigned()},
		{"invalid_request_payload", verbSign(t, tr, claims(transmitter.CredentialChange, map[string]any{"credential_type": "password"}))},
		{"invalid_request_not_jws", "not-a-set"},
		{"invalid_state", verbSign(t, tr, claims(transmitter.Verification, map[string]any{"state": "never-requested"}))},
	}
	kid := regexp.MustCompile(`[0-9a-f]{16}`)
	for _, tt := range tests {
		file := filepath.Join(t.TempDir(), "set.jwt")
		if err := os.WriteFile(file, []byte(tt.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		forms := []struct {
			name  string
			arg   string
			stdin string
		}{
			{"file", file, ""},
			{"stdin", "-", tt.token + "\n"},
		}
		if looksLikeJWS(tt.token) {
			forms = append(forms, struct{ name, arg, stdin string }{"token", tt.token, ""})
		}
		for _, form := range forms {
			t.Run(tt.name+"/"+form.name, func(t *testing.T) {
				var out bytes.Buffer
				_ = verifyVerb(t.Context(), []string{"--issuers", issuers, form.arg}, map[string]string{}, strings.NewReader(form.stdin), &out, &bytes.Buffer{})
				got := strings.ReplaceAll(out.String(), tr.Issuer(), "ISSUER/")
				got = strings.ReplaceAll(got, rogue.Issuer(), "ROGUE/")
				got = kid.ReplaceAllString(got, "KID")
				path := filepath.Join("testdata", "verify", tt.name+".golden")
				if *update && form.name == "file" {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run TestVerifyVerbGolden -update ./cmd/setgate/ to create it)", err)
				}
				if got != string(want) {
					t.Errorf("output differs from %s (run with -update if the change is intended)\nwant\n%s\ngot\n%s", path, want, got)
				}
			})
		}
	}
}

func TestVerifyVerbStdin(t *testing.T) {
	tr := newVerbTransmitter(t)
	issuers := verbIssuersFile(t, tr, "ES256")
	_, token, err := tr.SET(transmitter.SessionRevoked, nil, "carol@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-"}, {}} {
		t.Run(fmt.Sprintf("args %q", args), func(t *testing.T) {
			var out bytes.Buffer
			err := verifyVerb(t.Context(), append([]string{"--issuers", issuers, "--issuer", "acme"}, args...),
				map[string]string{}, strings.NewReader(token+"\n"), &out, &bytes.Buffer{})
			if err != nil || !strings.Contains(out.String(), "ACCEPTED") || !strings.Contains(out.String(), "carol@acme.example") {
				t.Fatalf("want ACCEPTED, got %v\n%s", err, out.String())
			}
		})
	}
}

func TestVerifyVerbErrors(t *testing.T) {
	tr := newVerbTransmitter(t)
	issuers := verbIssuersFile(t, tr, "ES256")
	dir := t.TempDir()
	missing := filepath.Join(dir, "set.jwt")
	bigFile := filepath.Join(dir, "big.jwt")
	if err := os.WriteFile(bigFile, []byte(strings.Repeat("a", 100)+".e30.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		vars    map[string]string
		wantErr string
	}{
		{"no issuers file", []string{"tok"}, nil, "--issuers or SETGATE_ISSUERS_FILE"},
		{"issuers file from the environment", []string{"--issuer", "nope", "tok"}, map[string]string{"SETGATE_ISSUERS_FILE": issuers}, `no issuer "nope" in the file (it has acme)`},
		{"missing file", []string{"--issuers", filepath.Join(t.TempDir(), "none.yaml"), "tok"}, nil, "issuers file"},
		{"two tokens", []string{"--issuers", issuers, "a", "b"}, nil, "at most one token"},
		{"too large", []string{"--issuers", issuers, strings.Repeat("a", 100) + ".e30.c2ln"}, map[string]string{"SETGATE_MAX_BODY_BYTES": "64"}, "larger than this receiver accepts"},
		{"too large file", []string{"--issuers", issuers, bigFile}, map[string]string{"SETGATE_MAX_BODY_BYTES": "64"}, "larger than this receiver accepts"},
		{"no such file, not a JWS", []string{"--issuers", issuers, "set.jwt"}, nil, `"set.jwt": no such file, and not a compact JWS`},
		{"no such file in a directory", []string{"--issuers", issuers, missing}, nil, strconv.Quote(missing) + ": no such file"},
		{"directory", []string{"--issuers", issuers, dir}, nil, "is a directory"},
		{"empty argument", []string{"--issuers", issuers, ""}, nil, `"": no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := tt.vars
			if vars == nil {
				vars = map[string]string{}
			}
			err := verifyVerb(t.Context(), tt.args, vars, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestVerifyVerbThroughRun(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"verify", "--help"}, map[string]string{}, &out, &bytes.Buffer{})
	if err == nil || !strings.Contains(out.String(), "Usage: setgate verify") || !strings.Contains(out.String(), "SETGATE_JWKS_FETCH_TIMEOUT") {
		t.Fatalf("want usage and flag.ErrHelp, got %v\n%s", err, out.String())
	}
}

// TestVerifyVerbJWKSDown shows why keys are missing when the issuer's
// JWKS cannot be fetched.
func TestVerifyVerbJWKSDown(t *testing.T) {
	tr := newVerbTransmitter(t)
	issuers := verbIssuersFile(t, tr, "ES256")
	_, token, err := tr.SET(transmitter.SessionRevoked, nil, "dave@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	var out bytes.Buffer
	err = verifyVerb(t.Context(), []string{"--issuers", issuers, token}, map[string]string{"SETGATE_JWKS_FETCH_TIMEOUT": "2s"},
		strings.NewReader(""), &out, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), string(verify.CodeInvalidKey)) {
		t.Fatalf("want invalid_key, got %v", err)
	}
	if want := "jwks:        " + tr.JWKSURL() + ": 0 key(s); last fetch failed:"; !strings.Contains(out.String(), want) {
		t.Errorf("want %q in the output, got\n%s", want, out.String())
	}
}

// TestVerifyVerbDiscovery: an issuer with discovery: true and no jwks_uri
// is verified as serve verifies it, with the jwks_uri from the
// transmitter's SSF metadata.
func TestVerifyVerbDiscovery(t *testing.T) {
	tr := newStreamTransmitter(t)
	issuers := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	c := tr.Transmitter().Claims(transmitter.SessionRevoked, nil, "dave@acme.example")
	c["iss"], c["aud"] = tr.Issuer(), verbAudience
	token, err := tr.Transmitter().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"verify", "--issuers", issuers, token}, streamVars(""), &out, &errOut); err != nil {
		t.Fatalf("want the SET accepted, got %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), tr.JWKSURL()) {
		t.Errorf("want the discovered JWKS %s in the verdict, got\n%s", tr.JWKSURL(), out.String())
	}
}
