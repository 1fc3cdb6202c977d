package test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/internal/transmitter"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{NATS: startNATS(t)})
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			code, err := g.getStatus(path)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusOK {
				t.Errorf("GET %s: want %d, got %d", path, http.StatusOK, code)
			}
		})
	}
}

func TestPushStoresEvents(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns})

	const unknownType = "urn:example:event:thing"
	sum := sha256.Sum256([]byte(unknownType))
	tests := []struct {
		name        string
		eventType   string
		payload     map[string]any
		wantSubject string
	}{
		{"caep session-revoked", transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "secevent.caep.session-revoked.acme"},
		{"risc account-disabled", transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}, "secevent.risc.account-disabled.acme"},
		{"unknown type", unknownType, map[string]any{"anything": []any{"goes", 1.0}}, "secevent.ext.thing-" + hex.EncodeToString(sum[:])[:8] + ".acme"},
	}
	type pushed struct {
		claims map[string]any
		set    string
	}
	sent := make(map[string]pushed)
	for _, tt := range tests {
		claims := g.acme.Claims(tt.eventType, tt.payload, "alice@acme.example")
		set, err := g.acme.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		resp := g.pushAs(t, "acme", g.acmeToken, set)
		if resp.Status != http.StatusAccepted {
			t.Fatalf("%s: push: want status %d, got %d (body %q)", tt.name, http.StatusAccepted, resp.Status, resp.Body)
		}
		if len(resp.Body) != 0 {
			t.Errorf("%s: 202 body: want empty, got %q", tt.name, resp.Body)
		}
		sent[tt.name] = pushed{claims, set}
	}

	msgs := readStream(t, ns.URL())
	if len(msgs) != len(tests) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(tests))
	}
	index := byJTI(msgs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sent[tt.name]
			jti := p.claims["jti"].(string)
			got := index[jti]
			if len(got) != 1 {
				t.Fatalf("jti %s: want 1 message, got %d", jti, len(got))
			}
			m := got[0]
			if m.Subject != tt.wantSubject {
				t.Errorf("subject: want %q, got %q", tt.wantSubject, m.Subject)
			}
			checkHeaders(t, m, g.acme.Issuer(), jti, tt.eventType)
			checkEnvelope(t, m.Data, p.claims, tt.eventType, tt.payload, p.set)
		})
	}
}

func checkHeaders(t *testing.T, m stored, iss, jti, eventType string) {
	t.Helper()
	sum := sha256.Sum256([]byte(iss + "\x00" + jti + "\x00" + eventType))
	want := map[string]string{
		"Content-Type":       "application/json",
		"Setgate-Issuer":     "acme",
		"Setgate-Iss":        iss,
		"Setgate-Jti":        jti,
		"Setgate-Event-Type": eventType,
		"Setgate-Delivery":   "push",
		"Nats-Msg-Id":        base64.RawURLEncoding.EncodeToString(sum[:18]),
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s: want %q, got %q", k, v, got)
		}
	}
}

func checkEnvelope(t *testing.T, data []byte, claims map[string]any, eventType string, payload map[string]any, set string) {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("envelope is not a JSON object: %v: %s", err, data)
	}
	wantKeys := []string{"issuer", "iss", "jti", "iat", "aud", "txn", "sub_id", "event_type", "event", "delivery", "received_at", "set"}
	var gotKeys []string
	for k := range env {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("envelope members: want %q, got %q", wantKeys, gotKeys)
	}

	// Compare each member with what was signed, as generic JSON values.
	wantVals := map[string]any{
		"issuer":     "acme",
		"iss":        claims["iss"],
		"jti":        claims["jti"],
		"iat":        claims["iat"],
		"aud":        []any{claims["aud"]},
		"txn":        claims["txn"],
		"sub_id":     claims["sub_id"],
		"event_type": eventType,
		"event":      payload,
		"delivery":   "push",
		"set":        set,
	}
	for k, want := range wantVals {
		var got any
		if err := json.Unmarshal(env[k], &got); err != nil {
			t.Errorf("envelope %s: %v", k, err)
			continue
		}
		if !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
			t.Errorf("envelope %s: want %s, got %s", k, mustJSON(t, want), env[k])
		}
	}
	var received string
	if err := json.Unmarshal(env["received_at"], &received); err != nil {
		t.Fatalf("envelope received_at: %v", err)
	}
	at, err := time.Parse(time.RFC3339Nano, received)
	if err != nil {
		t.Errorf("envelope received_at: want RFC 3339, got %q", received)
	} else if _, off := at.Zone(); off != 0 || !strings.HasSuffix(received, "Z") {
		t.Errorf("envelope received_at: want UTC (Z), got %q", received)
	}
}

// normalize round-trips v through JSON so numbers and maps compare alike.
func normalize(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(mustJSON(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPushRejectsBadSETs(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns})
	nc := connect(t, ns.URL())
	rogueES := newTransmitter(t, "ES256")
	rogueRS := newTransmitter(t, "RS256")

	session := func() map[string]any {
		return g.acme.Claims(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "alice@acme.example")
	}
	sign := func(t *testing.T, tr *transmitter.Transmitter, claims map[string]any) string {
		t.Helper()
		set, err := tr.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	// signJWT signs claims with a method the transmitter does not offer.
	signJWT := func(t *testing.T, m jwt.SigningMethod, key any, claims map[string]any) string {
		t.Helper()
		tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
		tok.Header["typ"] = "secevent+jwt"
		set, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}

	tests := []struct {
		name    string
		set     func(t *testing.T) (jti, set string)
		wantErr string
	}{
		{"garbage body", func(*testing.T) (string, string) {
			return "", "this is not a JWS"
		}, "invalid_request"},
		{"two events", func(t *testing.T) (string, string) {
			c := session()
			c["events"] = map[string]any{
				transmitter.SessionRevoked:  map[string]any{},
				transmitter.AccountDisabled: map[string]any{},
			}
			return c["jti"].(string), sign(t, g.acme, c)
		}, "invalid_request"},
		{"credential-change without change_type", func(t *testing.T) (string, string) {
			c := g.acme.Claims(transmitter.CredentialChange, map[string]any{"credential_type": "password"}, "alice@acme.example")
			return c["jti"].(string), sign(t, g.acme, c)
		}, "invalid_request"},
		{"another transmitter's key", func(t *testing.T) (string, string) {
			c := session()
			c["iss"] = g.acme.Issuer()
			return c["jti"].(string), sign(t, rogueES, c)
		}, "invalid_key"},
		{"alg RS256 not allowed", func(t *testing.T) (string, string) {
			c := session()
			return c["jti"].(string), sign(t, rogueRS, c)
		}, "invalid_key"},
		{"alg HS256", func(t *testing.T) (string, string) {
			c := session()
			return c["jti"].(string), signJWT(t, jwt.SigningMethodHS256, []byte(g.acmeToken), c)
		}, "invalid_key"},
		{"alg none", func(t *testing.T) (string, string) {
			c := session()
			return c["jti"].(string), signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)
		}, "invalid_key"},
		{"globex's SET on acme's path", func(t *testing.T) (string, string) {
			c := g.globex.Claims(transmitter.SessionRevoked, nil, "bob@globex.example")
			return c["jti"].(string), sign(t, g.globex, c)
		}, "invalid_issuer"},
		{"aud of another receiver", func(t *testing.T) (string, string) {
			c := session()
			c["aud"] = "https://other-receiver.example/"
			return c["jti"].(string), sign(t, g.acme, c)
		}, "invalid_audience"},
		{"aud missing", func(t *testing.T) (string, string) {
			c := session()
			delete(c, "aud")
			return c["jti"].(string), sign(t, g.acme, c)
		}, "invalid_audience"},
		{"verification with unrequested state", func(t *testing.T) (string, string) {
			c := g.acme.Claims(transmitter.Verification, map[string]any{"state": "never-requested"}, "alice@acme.example")
			return c["jti"].(string), sign(t, g.acme, c)
		}, "invalid_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := nc.SubscribeSync("setgate.rejected.acme")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}

			jti, set := tt.set(t)
			resp := g.pushAs(t, "acme", g.acmeToken, set)
			checkError(t, resp, http.StatusBadRequest, tt.wantErr)

			msg, err := sub.NextMsg(waitShort)
			if err != nil {
				t.Fatalf("no announcement on setgate.rejected.acme: %v", err)
			}
			var rej struct {
				Issuer, Code, Description, JTI, Delivery string
				ReceivedAt                               time.Time `json:"received_at"`
			}
			if err := json.Unmarshal(msg.Data, &rej); err != nil {
				t.Fatalf("announcement is not JSON: %v: %s", err, msg.Data)
			}
			if rej.Code != tt.wantErr {
				t.Errorf("announced code: want %q, got %q", tt.wantErr, rej.Code)
			}
			if rej.Issuer != "acme" {
				t.Errorf("announced issuer: want %q, got %q", "acme", rej.Issuer)
			}
			if rej.Delivery != "push" {
				t.Errorf("announced delivery: want %q, got %q", "push", rej.Delivery)
			}
			if rej.JTI != jti {
				t.Errorf("announced jti: want %q, got %q", jti, rej.JTI)
			}
			if rej.Description == "" || rej.ReceivedAt.IsZero() {
				t.Errorf("announcement lacks description or received_at: %s", msg.Data)
			}
			if strings.Contains(string(msg.Data), g.acmeToken) {
				t.Errorf("announcement contains the bearer token: %s", msg.Data)
			}
		})
	}

	if msgs := readStream(t, ns.URL()); len(msgs) != 0 {
		t.Errorf("stream: want 0 messages after rejections, got %d (first on %q)", len(msgs), msgs[0].Subject)
	}
	if strings.Contains(g.log.String(), g.acmeToken) {
		t.Errorf("the log contains acme's bearer token")
	}
}

// checkError checks an error answer: status, headers and a body of
// exactly err (when wantErr is not empty) and a non-empty description.
func checkError(t *testing.T, resp transmitter.Response, wantStatus int, wantErr string) {
	t.Helper()
	if resp.Status != wantStatus {
		t.Fatalf("status: want %d, got %d (body %q)", wantStatus, resp.Status, resp.Body)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Content-Language": "en"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s: want %q, got %q", k, v, got)
		}
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, resp.Body)
	}
	wantMembers := 2
	if wantErr == "" {
		wantMembers = 1
	}
	if len(body) != wantMembers {
		t.Errorf("body: want %d members, got %d: %s", wantMembers, len(body), resp.Body)
	}
	var code, desc string
	if wantErr != "" {
		if err := json.Unmarshal(body["err"], &code); err != nil || code != wantErr {
			t.Errorf("err: want %q, got %s", wantErr, body["err"])
		}
	}
	if err := json.Unmarshal(body["description"], &desc); err != nil || desc == "" {
		t.Errorf("description: want a non-empty string, got %s", body["description"])
	}
}

func TestPushHTTPErrors(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Env: map[string]string{"SETGATE_MAX_BODY_BYTES": "4096"}})
	_, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("A", 5000)

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		token       string
		body        io.Reader
		wantStatus  int
		wantErr     string
		wantHeader  string
	}{
		{"no Authorization", http.MethodPost, "/events/acme", "application/secevent+jwt", "", strings.NewReader(set), http.StatusUnauthorized, "authentication_failed", "WWW-Authenticate"},
		{"wrong token", http.MethodPost, "/events/acme", "application/secevent+jwt", "wrong-" + g.acmeToken, strings.NewReader(set), http.StatusUnauthorized, "authentication_failed", "WWW-Authenticate"},
		{"globex's token on acme", http.MethodPost, "/events/acme", "application/secevent+jwt", g.globexToken, strings.NewReader(set), http.StatusForbidden, "access_denied", ""},
		{"unknown issuer", http.MethodPost, "/events/nobody", "application/secevent+jwt", g.acmeToken, strings.NewReader(set), http.StatusNotFound, "invalid_request", ""},
		{"body too large", http.MethodPost, "/events/acme", "application/secevent+jwt", g.acmeToken, strings.NewReader(big), http.StatusRequestEntityTooLarge, "invalid_request", ""},
		// No Content-Length: the limit is found while reading.
		{"chunked body too large", http.MethodPost, "/events/acme", "application/secevent+jwt", g.acmeToken, io.MultiReader(strings.NewReader(big)), http.StatusRequestEntityTooLarge, "invalid_request", ""},
		{"text/plain", http.MethodPost, "/events/acme", "text/plain", g.acmeToken, strings.NewReader(set), http.StatusUnsupportedMediaType, "invalid_request", ""},
		{"GET", http.MethodGet, "/events/acme", "", g.acmeToken, nil, http.StatusMethodNotAllowed, "invalid_request", "Allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, g.url(tt.path), tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp := do(t, req)
			checkError(t, resp, tt.wantStatus, tt.wantErr)
			if tt.wantHeader != "" && resp.Header.Get(tt.wantHeader) == "" {
				t.Errorf("header %s: want it set, got none", tt.wantHeader)
			}
		})
	}
	if msgs := readStream(t, ns.URL()); len(msgs) != 0 {
		t.Errorf("stream: want 0 messages, got %d", len(msgs))
	}
	// The SET used above was fine all along.
	if resp := g.pushAs(t, "acme", g.acmeToken, set); resp.Status != http.StatusAccepted {
		t.Errorf("the SET itself: want %d, got %d (body %q)", http.StatusAccepted, resp.Status, resp.Body)
	}
}

// do sends req and reads the whole answer.
func do(t *testing.T, req *http.Request) transmitter.Response {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return transmitter.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func TestPushDuplicateStoredOnce(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns})
	jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "admin"}, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		resp := g.pushAs(t, "acme", g.acmeToken, set)
		if resp.Status != http.StatusAccepted || len(resp.Body) != 0 {
			t.Fatalf("push #%d: want %d with an empty body, got %d %q", i+1, http.StatusAccepted, resp.Status, resp.Body)
		}
	}
	msgs := readStream(t, ns.URL())
	if len(msgs) != 1 {
		t.Fatalf("stream: want 1 message, got %d", len(msgs))
	}
	if got := msgs[0].jti(); got != jti {
		t.Errorf("stored jti: want %q, got %q", jti, got)
	}
}

func TestBadConfigStopsStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := filepath.Join(dir, "acme.token")
	writeFile(t, token, "secret\n")
	const base = `issuers:
  - name: acme
    issuer: http://127.0.0.1:1/
    audience: [https://setgate.test/]
    jwks_uri: http://127.0.0.1:1/jwks
    push:
      bearer_token_file: TOKEN
`
	tests := []struct {
		name  string
		extra string // appended to acme's entry
		want  []string
	}{
		{"unknown key", "    colour: blue\n", []string{`"acme"`, "colour"}},
		{"HS256", "    algorithms: [HS256]\n", []string{`"acme"`, "algorithms", "HS256"}},
		{"alg none", "    algorithms: [none]\n", []string{`"acme"`, "algorithms", "none"}},
		{"poll without credential", "    poll:\n      endpoint: http://127.0.0.1:1/poll\n", []string{`"acme"`, "poll"}},
		{"stream block without discovery", "    stream:\n      manage: true\n", []string{`"acme"`, "stream"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "issuers.yaml")
			writeFile(t, file, strings.Replace(base, "TOKEN", token, 1)+tt.extra)
			stderr := startMustFail(t, file)
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr: want it to contain %q, got %q", w, stderr)
				}
			}
		})
	}
}
