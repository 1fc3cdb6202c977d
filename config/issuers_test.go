package config

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

const goodIssuer = `
  - name: acme
    issuer: https://idp.acme.example/
    audience: https://setgate.example/
    jwks_uri: https://idp.acme.example/jwks
    algorithms: [ES256]
    push:
      bearer_token_file: /secrets/acme
`

func readFake(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

func TestParseIssuers(t *testing.T) {
	files := map[string]string{"/secrets/acme": "s3cret\n", "/secrets/empty": "\n"}
	vars := map[string]string{"ACME_TOKEN": "from-env"}
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; empty means success
	}{
		{"ok", "issuers:" + goodIssuer, ""},
		{"ok env secret and overrides", `issuers:
  - name: acme
    issuer: https://idp.acme.example/
    audience: [a, b]
    jwks_uri: https://idp.acme.example/jwks
    profile: rfc8417
    max_clock_skew: 1m
    payload_validation: lenient
    push: {bearer_token_env: ACME_TOKEN}
    events:
      subjects:
        https://example.com/x: custom.thing
`, ""},
		{"empty file", "", "empty"},
		{"no issuers", "issuers: []", "list is empty"},
		{"unknown top key", "issuers:" + goodIssuer + "extra: 1\n", "extra: unknown key"},
		{"unknown issuer key", strings.Replace("issuers:"+goodIssuer, "algorithms", "algorithm", 1), `issuer "acme": algorithm: unknown key`},
		{"unknown nested key", strings.Replace("issuers:"+goodIssuer, "bearer_token_file", "token_file", 1), `issuer "acme": push.token_file: unknown key`},
		{"duplicate key", strings.Replace("issuers:"+goodIssuer, "    algorithms: [ES256]\n", "    algorithms: [ES256]\n    algorithms: [RS256]\n", 1), `issuer "acme": algorithms: duplicate key`},
		{"duplicate name", "issuers:" + goodIssuer + goodIssuer, `issuer "acme": name: already used`},
		{"missing name", strings.Replace("issuers:"+goodIssuer, "name: acme", "name: \"\"", 1), "issuer #1: name: is required"},
		{"bad name", strings.Replace("issuers:"+goodIssuer, "name: acme", "name: Acme_1", 1), "name: must be"},
		{"missing issuer", strings.Replace("issuers:"+goodIssuer, "issuer: https://idp.acme.example/", "", 1), `issuer "acme": issuer: is required`},
		{"missing audience", strings.Replace("issuers:"+goodIssuer, "audience: https://setgate.example/", "", 1), `issuer "acme": audience: needs`},
		{"missing jwks", strings.Replace("issuers:"+goodIssuer, "jwks_uri: https://idp.acme.example/jwks", "", 1), `issuer "acme": jwks_uri: is required`},
		{"http jwks", strings.Replace("issuers:"+goodIssuer, "https://idp.acme.example/jwks", "http://idp.acme.example/jwks", 1), `issuer "acme": jwks_uri: must use https`},
		{"alg none", strings.Replace("issuers:"+goodIssuer, "[ES256]", "[none]", 1), `issuer "acme": algorithms: "none" is never allowed`},
		{"alg hmac", strings.Replace("issuers:"+goodIssuer, "[ES256]", "[HS256]", 1), `issuer "acme": algorithms: "HS256" is not allowed`},
		{"bad profile", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    profile: oidc\n    algorithms", 1), `issuer "acme": profile:`},
		{"bad skew", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    max_clock_skew: soon\n    algorithms", 1), `issuer "acme": max_clock_skew:`},
		{"bad max_age", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    max_age: a day\n    algorithms", 1), `issuer "acme": max_age: "a day" is not a positive duration`},
		{"negative max_age", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    max_age: -1h\n    algorithms", 1), `issuer "acme": max_age: "-1h" is not a positive duration`},
		{"zero max_age", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    max_age: 0s\n    algorithms", 1), `issuer "acme": max_age:`},
		{"bad payload validation", strings.Replace("issuers:"+goodIssuer, "    algorithms", "    payload_validation: loose\n    algorithms", 1), `payload_validation:`},
		{"missing secret file", strings.Replace("issuers:"+goodIssuer, "/secrets/acme", "/secrets/nope", 1), `issuer "acme": push.bearer_token_file:`},
		{"empty secret file", strings.Replace("issuers:"+goodIssuer, "/secrets/acme", "/secrets/empty", 1), `is empty`},
		{"unset secret env", strings.Replace("issuers:"+goodIssuer, "bearer_token_file: /secrets/acme", "bearer_token_env: NOPE", 1), `push.bearer_token_env: variable NOPE`},
		{"both secrets", strings.Replace("issuers:"+goodIssuer, "bearer_token_file: /secrets/acme", "bearer_token_file: /secrets/acme\n      bearer_token_env: ACME_TOKEN", 1), `not both`},
		{"bad override", "issuers:" + goodIssuer + "    events:\n      subjects:\n        https://x.example/e: \"a.b.c\"\n", `events.subjects`},
		{"poll ok", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_env: ACME_TOKEN\n", ""},
		{"poll only", strings.Replace("issuers:"+goodIssuer, "    push:\n      bearer_token_file: /secrets/acme\n", "    poll:\n      endpoint: https://x.example/poll\n      max_events: 500\n      long_poll_timeout: 20s\n      oauth2: {token_url: https://x.example/token, client_id: setgate, client_secret_file: /secrets/acme, scopes: [ssf.read]}\n", 1), "poll-only"},
		{"poll no endpoint", "issuers:" + goodIssuer + "    poll:\n      bearer_token_env: ACME_TOKEN\n", `issuer "acme": poll.endpoint: is required`},
		{"poll http endpoint", "issuers:" + goodIssuer + "    poll:\n      endpoint: http://x.example/poll\n      bearer_token_env: ACME_TOKEN\n", `poll.endpoint: must use https`},
		{"poll no auth", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n", `poll: poll.bearer_token_file or poll.bearer_token_env is required`},
		{"poll both auths", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_env: ACME_TOKEN\n      oauth2: {token_url: https://x.example/token, client_id: c, client_secret_env: ACME_TOKEN}\n", `not both`},
		{"poll oauth2 no id", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      oauth2: {token_url: https://x.example/token, client_secret_env: ACME_TOKEN}\n", `poll.oauth2.client_id: is required`},
		{"poll bad timeout", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_env: ACME_TOKEN\n      long_poll_timeout: -1s\n", `poll.long_poll_timeout`},
		{"poll unknown key", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      maxEvents: 5\n", `issuer "acme": poll.maxEvents: unknown key`},
		{"neither push nor poll", strings.Replace("issuers:"+goodIssuer, "    push:\n      bearer_token_file: /secrets/acme\n", "", 1), `issuer "acme": push or poll: one is required`},
		{"not yaml", "issuers: [", "yaml"},
		{"rate limit ok", withPush("      rate_limit: 100/s\n      burst: 200\n"), ""},
		{"rate limit per minute", withPush("      rate_limit: 0.5/m\n"), ""},
		{"rate limit no unit", withPush("      rate_limit: 100\n"), `issuer "acme": push.rate_limit: "100" is not a positive rate`},
		{"rate limit bad unit", withPush("      rate_limit: 100/d\n"), `issuer "acme": push.rate_limit:`},
		{"rate limit zero", withPush("      rate_limit: 0/s\n"), `issuer "acme": push.rate_limit:`},
		{"rate limit negative", withPush("      rate_limit: -1/s\n"), `issuer "acme": push.rate_limit:`},
		{"rate limit object", withPush("      rate_limit: {rate: 100/s}\n"), `rate_limit`},
		{"burst without rate", withPush("      burst: 10\n"), `issuer "acme": push.burst: needs push.rate_limit`},
		{"negative burst", withPush("      rate_limit: 1/s\n      burst: -2\n"), `issuer "acme": push.burst: must not be negative`},
		{"rate limit typo", withPush("      ratelimit: 1/s\n"), `issuer "acme": push.ratelimit: unknown key`},
		{"ssf push stream", ssfIssuer("push", "      authorization_header_file: /secrets/acme\n"), ""},
		{"ssf poll stream", ssfIssuer("poll", ""), "poll-only"},
		{"ssf stream without discovery", strings.Replace(ssfIssuer("poll", ""), "    discovery: true\n", "    jwks_uri: https://sgnl.example/jwks\n", 1), `issuer "sgnl": stream: needs discovery: true`},
		{"ssf manage false", strings.Replace(ssfIssuer("poll", ""), "manage: true", "manage: false", 1), `stream.manage:`},
		{"ssf bad delivery", ssfIssuer("carrier-pigeon", ""), `stream.delivery: "carrier-pigeon"`},
		{"ssf push without header", ssfIssuer("push", ""), `stream.authorization_header`},
		{"ssf no events", strings.Replace(ssfIssuer("poll", ""), "      events_requested: [https://schemas.openid.net/secevent/caep/event-type/session-revoked]\n", "", 1), `stream.events_requested`},
		{"ssf no credential", strings.Replace(ssfIssuer("poll", ""), "      bearer_token_env: ACME_TOKEN\n", "", 1), `stream: stream.bearer_token_file or stream.bearer_token_env is required`},
		{"ssf bad interval", ssfIssuer("poll", "      verification_interval: often\n"), `stream.verification_interval`},
		{"ssf managed poll with endpoint", ssfIssuer("poll", "") + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_env: ACME_TOKEN\n", `poll.endpoint: must be left out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := ParseIssuers([]byte(tt.yaml), vars, readFake(files))
			if tt.wantErr == "" || tt.wantErr == "poll-only" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				if len(specs) == 0 || (specs[0].PushToken == "") != (tt.wantErr == "poll-only") {
					t.Fatalf("want a spec with a push token unless poll-only, got %+v", specs)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got success", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want error containing %q, got %q", tt.wantErr, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the secret: %q", err)
			}
		})
	}
}

// TestParseIssuersMaxAge: max_age reaches the verifier's configuration;
// left out, it is off.
func TestParseIssuersMaxAge(t *testing.T) {
	files := map[string]string{"/secrets/acme": "s3cret\n"}
	tests := []struct {
		name string
		line string
		want time.Duration
	}{
		{"off by default", "", 0},
		{"one day", "    max_age: 24h\n", 24 * time.Hour},
		{"minutes", "    max_age: 90m\n", 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace("issuers:"+goodIssuer, "    algorithms", tt.line+"    algorithms", 1)
			specs, err := ParseIssuers([]byte(yaml), nil, readFake(files))
			if err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if got := specs[0].Verify.MaxAge; got != tt.want {
				t.Errorf("want max_age %v, got %v", tt.want, got)
			}
		})
	}
}

// withPush is goodIssuer with extra lines in its push block.
func withPush(extra string) string {
	return "issuers:" + goodIssuer + extra
}

func TestParseIssuersRateLimit(t *testing.T) {
	tests := []struct {
		extra     string
		wantRate  rate.Limit
		wantBurst int
	}{
		{"", 0, 0},
		{"      rate_limit: 100/s\n      burst: 200\n", 100, 200},
		{"      rate_limit: 100/s\n", 100, 100},
		{"      rate_limit: 2.5/s\n", 2.5, 3},
		{"      rate_limit: 60/m\n", 1, 1},
		{"      rate_limit: 36/h\n      burst: 5\n", 0.01, 5},
	}
	files := map[string]string{"/secrets/acme": "s3cret\n"}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.extra), func(t *testing.T) {
			specs, err := ParseIssuers([]byte(withPush(tt.extra)), nil, readFake(files))
			if err != nil {
				t.Fatal(err)
			}
			if got := specs[0]; math.Abs(float64(got.PushRate-tt.wantRate)) > 1e-9 || got.PushBurst != tt.wantBurst {
				t.Fatalf("want rate %v burst %d, got %v %d", tt.wantRate, tt.wantBurst, got.PushRate, got.PushBurst)
			}
		})
	}
}

// ssfIssuer is an issuer with discovery and a managed stream.
func ssfIssuer(delivery, extra string) string {
	return `issuers:
  - name: sgnl
    issuer: https://sgnl.example/
    audience: https://setgate.example/
    discovery: true
    stream:
      manage: true
      delivery: ` + delivery + `
      events_requested: [https://schemas.openid.net/secevent/caep/event-type/session-revoked]
      bearer_token_env: ACME_TOKEN
` + extra
}

func TestParseIssuersSecretTrimmed(t *testing.T) {
	specs, err := ParseIssuers([]byte("issuers:"+goodIssuer), nil, readFake(map[string]string{"/secrets/acme": "  s3cret\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].PushToken; got != "s3cret" {
		t.Fatalf("want %q, got %q", "s3cret", got)
	}
}

func TestLoadIssuersNamesFile(t *testing.T) {
	_, err := LoadIssuers("/does/not/exist.yaml", nil)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want not-exist error, got %v", err)
	}
	if _, err := LoadIssuers("", nil); err == nil || !strings.Contains(err.Error(), "SETGATE_ISSUERS_FILE") {
		t.Fatalf("want error naming SETGATE_ISSUERS_FILE, got %v", err)
	}
}

// TestLoadIssuersHashAndFingerprint: Hash follows the file's content only;
// Fingerprint also follows the secret files it names, so a rotated secret
// is a change for reload; an unchanged read gives DeepEqual issuers and
// the same Fingerprint. Files lists what to watch.
func TestLoadIssuersHashAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(secret, "first\n")
	path := issuersWithSecret(t, dir, secret)
	load := func() *LoadedIssuers {
		t.Helper()
		l, err := LoadIssuers(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, again := load(), load()
	if a.Fingerprint != again.Fingerprint || a.Hash != again.Hash || !reflect.DeepEqual(a.Issuers, again.Issuers) {
		t.Fatal("two reads of the same files differ")
	}
	if want := []string{path, secret}; !slices.Equal(a.Files, want) {
		t.Fatalf("files: want %q, got %q", want, a.Files)
	}
	write(secret, "rotated\n")
	b := load()
	if b.Hash != a.Hash {
		t.Errorf("hash changed with a secret: %s, %s", a.Hash, b.Hash)
	}
	if b.Fingerprint == a.Fingerprint {
		t.Error("fingerprint did not change with the secret")
	}
	if reflect.DeepEqual(a.Issuers, b.Issuers) || b.Issuers[0].PushToken != "rotated" {
		t.Errorf("want the rotated token, got %q", b.Issuers[0].PushToken)
	}
	write(path, "issuers:"+strings.Replace(goodIssuer, "/secrets/acme", secret, 1)+"# a comment\n")
	if c := load(); c.Hash == b.Hash || c.Fingerprint == b.Fingerprint {
		t.Error("hash or fingerprint did not change with the file")
	}
}
