package config

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

// Secrets the fake readFile and the variables hand out: whatever the
// issuers file says, no error may contain them.
const (
	fuzzFileSecret = "S3CR3T-from-file-7f1c9a2e"
	fuzzEnvSecret  = "S3CR3T-from-env-b84d0c51"
)

// fuzzReadFile returns the file secret (with white space around it) for
// every path, except /secrets/empty (blank) and paths containing
// "missing" (not found).
func fuzzReadFile(p string) ([]byte, error) {
	switch {
	case strings.Contains(p, "missing"):
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	case p == "/secrets/empty":
		return []byte(" \n"), nil
	}
	return []byte("  " + fuzzFileSecret + "\n"), nil
}

// FuzzParseIssuers feeds arbitrary bytes to the issuers-file parser.
// Whatever the input: no panic; either specs (at least one, names unique
// and valid) or an error, never both; an error never contains a secret
// read through readFile or from a variable.
func FuzzParseIssuers(f *testing.F) {
	ok := "issuers:" + goodIssuer
	for _, s := range []string{
		ok,
		ok + strings.Replace(goodIssuer, "name: acme", "name: globex", 1),
		strings.Replace(ok, "bearer_token_file: /secrets/acme", "bearer_token_env: ACME_TOKEN", 1),
		ok + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_env: ACME_TOKEN\n",
		strings.Replace(ok, "    push:\n      bearer_token_file: /secrets/acme\n",
			"    poll:\n      endpoint: https://x.example/poll\n      max_events: 500\n      long_poll_timeout: 20s\n      oauth2: {token_url: https://x.example/token, client_id: setgate, client_secret_file: /secrets/acme, scopes: [ssf.read]}\n", 1),
		ssfIssuer("push", "      authorization_header_file: /secrets/acme\n"),
		ssfIssuer("poll", "      verification_interval: 30m\n      verification_timeout: 1m\n"),
		ok + "    events:\n      subjects:\n        https://example.com/x: custom.thing\n",
		ssfIssuer("poll", "      stream_id: f67e39a0a4d34d56b3aa1bc4cff0069f\n"),
		ok + strings.NewReplacer("name: acme", "name: acme-eu", "audience: https://setgate.example/", "audience: https://eu.example/").Replace(goodIssuer),
		// Broken ones.
		ok + strings.Replace(goodIssuer, "name: acme", "name: acme-2", 1), // the same issuer and audience twice
		ssfIssuer("poll", "      stream_id: \"\\tx\"\n"),
		"",
		"issuers: []",
		"issuers: [",
		"issuers:\n  - name: acme\n",
		ok + ok,
		strings.Replace(ok, "/secrets/acme", "/secrets/missing", 1),
		strings.Replace(ok, "/secrets/acme", "/secrets/empty", 1),
		strings.Replace(ok, "bearer_token_file: /secrets/acme", "bearer_token_file: /secrets/acme\n      bearer_token_env: ACME_TOKEN", 1),
		strings.Replace(ok, "bearer_token_file: /secrets/acme", "bearer_token_env: NOPE", 1),
		ok + "    poll:\n      endpoint: http://x.example/poll\n      bearer_token_file: /secrets/acme\n      long_poll_timeout: -1s\n",
		ssfIssuer("carrier-pigeon", ""),
		strings.Replace(ok, "[ES256]", "[none, HS256]", 1),
		"issuers:\n  - &a {name: acme}\n  - *a\n",
		"issuers: !!binary aGVsbG8=\n",
		"- 1\n- 2\n",
		"issuers:\n  - name: acme\n    audience: {a: b}\n",
		"\xff\xfe\x00",
	} {
		f.Add([]byte(s))
	}
	vars := map[string]string{"ACME_TOKEN": "  " + fuzzEnvSecret + "\t"}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseIssuers(data, vars, fuzzReadFile)
		if err != nil {
			if specs != nil {
				t.Fatalf("both specs and an error: %v", err)
			}
			msg := err.Error()
			for _, secret := range []string{fuzzFileSecret, fuzzEnvSecret} {
				if strings.Contains(msg, secret) && !bytes.Contains(data, []byte(secret)) {
					t.Fatalf("error leaks a secret: %q", msg)
				}
			}
			return
		}
		if len(specs) == 0 {
			t.Fatal("neither specs nor an error")
		}
		seen := make(map[string]bool)
		for _, s := range specs {
			if !issuerName.MatchString(s.Name) || seen[s.Name] {
				t.Fatalf("accepted an invalid or duplicate issuer name %q", s.Name)
			}
			seen[s.Name] = true
			if s.PushToken == "" && s.Poll == nil && s.Stream == nil {
				t.Fatalf("issuer %q: accepted with no way to receive SETs", s.Name)
			}
		}
	})
}
