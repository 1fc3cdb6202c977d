package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/MicahParks/jwkset"

	"github.com/setgate/setgate/verify"
)

// verbPushRecorder is a push endpoint that records each request and answers
// with status and body, next to a JWKS endpoint serving jwks.
type verbPushRecorder struct {
	srv    *httptest.Server
	status int
	body   string

	mu   sync.Mutex
	jwks []byte
	reqs []verbRecordedPush
}

type verbRecordedPush struct {
	header http.Header
	body   []byte
}

func newVerbPushRecorder(tb testing.TB, status int, body string) *verbPushRecorder {
	tb.Helper()
	r := &verbPushRecorder{status: status, body: body}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events/acme", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, verbRecordedPush{req.Header.Clone(), b})
		r.mu.Unlock()
		if r.body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.jwks)
	})
	r.srv = httptest.NewServer(mux)
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *verbPushRecorder) setJWKS(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jwks = b
}

func (r *verbPushRecorder) requests() []verbRecordedPush {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verbRecordedPush(nil), r.reqs...)
}

// verbGenKey runs "send --gen-key" and returns the key path and printed JWKS.
func verbGenKey(tb testing.TB, args ...string) (string, []byte) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key.pem")
	var out bytes.Buffer
	if err := sendVerb(context.Background(), append([]string{"--gen-key", path}, args...), &out, &bytes.Buffer{}); err != nil {
		tb.Fatalf("gen-key: %v", err)
	}
	return path, out.Bytes()
}

func TestSendVerb(t *testing.T) {
	tests := []struct {
		alg     string
		wantKty jwkset.KTY
		sendAlg []string // --alg for send; without it the key decides
	}{
		{"ES256", jwkset.KtyEC, nil},
		{"ES384", jwkset.KtyEC, nil},
		{"RS256", jwkset.KtyRSA, nil},
		{"PS256", jwkset.KtyRSA, []string{"--alg", "PS256"}},
		{"EdDSA", jwkset.KtyOKP, []string{"--alg", "EdDSA"}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			keyPath, jwks := verbGenKey(t, "--alg", tt.alg)
			if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("want the key file with mode 0600, got %v %v", fi.Mode(), err)
			}
			var set jwkset.JWKSMarshal
			if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("want a JWKS with one key, got %v\n%s", err, jwks)
			}
			k := set.Keys[0]
			if k.KTY != tt.wantKty || string(k.ALG) != tt.alg || k.USE != jwkset.UseSig || k.KID == "" || k.D != "" {
				t.Fatalf("want a public %s signing key with alg and kid, got %+v", tt.wantKty, k)
			}

			rec := newVerbPushRecorder(t, http.StatusAccepted, "")
			rec.setJWKS(jwks)
			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			err := sendVerb(t.Context(), append([]string{
				"--to", rec.srv.URL + "/events/acme", "--key", keyPath, "--token-file", tokenFile,
				"--iss", "https://tx.example/", "--aud", verbAudience, "--email", "alice@acme.example",
				"--event", "caep.credential-change", "--payload", `{"credential_type":"password","change_type":"update"}`,
				"--jti", "jti-42",
			}, tt.sendAlg...), &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\n%s%s", err, out.String(), errOut.String())
			}
			if got := out.String(); got != "HTTP/1.1 202 Accepted\n" {
				t.Errorf("want the status line, got %q", got)
			}
			if strings.Contains(out.String()+errOut.String(), "s3cret") {
				t.Error("the bearer token was printed")
			}
			reqs := rec.requests()
			if len(reqs) != 1 {
				t.Fatalf("want one push, got %d", len(reqs))
			}
			h := reqs[0].header
			if got := h.Get("Content-Type"); got != "application/secevent+jwt" {
				t.Errorf("want Content-Type application/secevent+jwt, got %q", got)
			}
			if got := h.Get("Authorization"); got != "Bearer s3cret" {
				t.Errorf("want Authorization %q, got %q", "Bearer s3cret", got)
			}

			// The body verifies with the printed JWKS, under the ssf profile.
			v, err := verify.New(t.Context(), verify.Config{
				Name: "acme", Issuer: "https://tx.example/", Audience: []string{verbAudience},
				JWKSURI: rec.srv.URL + "/jwks", Algorithms: []string{tt.alg},
			}, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			got, err := v.Verify(t.Context(), reqs[0].body)
			if err != nil {
				t.Fatalf("the pushed SET does not verify: %v", err)
			}
			if got.JTI != "jti-42" || got.Header.Kid != k.KID || got.Header.Typ != "secevent+jwt" || got.Header.Alg != tt.alg {
				t.Errorf("want jti-42, kid %s, typ secevent+jwt, alg %s; got %+v %+v", k.KID, tt.alg, got.JTI, got.Header)
			}
			if string(got.SubID) != `{"email":"alice@acme.example","format":"email"}` {
				t.Errorf("want the email sub_id, got %s", got.SubID)
			}
			if len(got.Events) != 1 || got.Events[0].Type != "https://schemas.openid.net/secevent/caep/event-type/credential-change" ||
				string(got.Events[0].Payload) != `{"credential_type":"password","change_type":"update"}` {
				t.Errorf("want the credential-change event as given, got %+v", got.Events)
			}
		})
	}
}

func TestSendVerbNot202(t *testing.T) {
	keyPath, _ := verbGenKey(t)
	rec := newVerbPushRecorder(t, http.StatusBadRequest, `{"err":"invalid_audience","description":"The aud claim does not name this receiver."}`)
	var out bytes.Buffer
	err := sendVerb(t.Context(), []string{"--to", rec.srv.URL + "/events/acme", "--key", keyPath, "--iss", "https://tx.example/"}, &out, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: invalid_audience") {
		t.Fatalf("want an error naming the status and code, got %v", err)
	}
	want := "HTTP/1.1 400 Bad Request\n" + `{"err":"invalid_audience","description":"The aud claim does not name this receiver."}` + "\n"
	if out.String() != want {
		t.Errorf("want %q, got %q", want, out.String())
	}
	if h := rec.requests()[0].header; h.Get("Authorization") != "" {
		t.Errorf("want no Authorization without --token-file, got %q", h.Get("Authorization"))
	}
}

func TestSendVerbErrors(t *testing.T) {
	keyPath, _ := verbGenKey(t)
	existing, _ := verbGenKey(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no to", []string{"--key", keyPath, "--iss", "https://tx.example/"}, "--to is required"},
		{"no key", []string{"--to", "http://127.0.0.1:1/events/a", "--iss", "https://tx.example/"}, "--key is required"},
		{"no iss", []string{"--to", "http://127.0.0.1:1/events/a", "--key", keyPath}, "--iss is required"},
		{"bad url", []string{"--to", "ftp://x/events/a", "--key", keyPath, "--iss", "i"}, "not an http(s) URL"},
		{"alg does not fit", []string{"--to", "http://127.0.0.1:1/e", "--key", keyPath, "--iss", "i", "--alg", "RS256"}, "--alg RS256 does not fit this key (it fits ES256)"},
		{"bad payload", []string{"--to", "http://127.0.0.1:1/e", "--key", keyPath, "--iss", "i", "--payload", "[1]"}, "--payload must be a JSON object"},
		{"bad event", []string{"--to", "http://127.0.0.1:1/e", "--key", keyPath, "--iss", "i", "--event", "session-revoked"}, "want an event type URI"},
		{"missing token file", []string{"--to", "http://127.0.0.1:1/e", "--key", keyPath, "--iss", "i", "--token-file", "/nonexistent/t"}, "--token-file"},
		{"gen-key over a file", []string{"--gen-key", existing}, "file exists"},
		{"gen-key bad alg", []string{"--gen-key", filepath.Join(t.TempDir(), "k"), "--alg", "HS256"}, `--alg "HS256" is not one of`},
		{"gen-key with to", []string{"--gen-key", filepath.Join(t.TempDir(), "k"), "--to", "http://x"}, "only writes a key"},
		{"positional", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sendVerb(t.Context(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestSendVerbThroughRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"send", "--gen-key", path, "--kid", "k1"}, map[string]string{}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"kid": "k1"`) {
		t.Errorf("want the JWKS with kid k1, got\n%s", out.String())
	}
}
