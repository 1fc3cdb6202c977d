package config

import (
	"strings"
	"testing"
)

// TestParseIssuersSameIssuer: two entries with the same issuer and a
// common audience are refused with a message naming both, and so are two
// issuers sharing one push credential; disjoint audiences (with one
// credential), or one entry with push and poll, are fine.
func TestParseIssuersSameIssuer(t *testing.T) {
	files := map[string]string{"/secrets/acme": "s3cret\n", "/secrets/globex": "other-s3cret\n"}
	second := func(name, aud string) string {
		return strings.NewReplacer("name: acme", "name: "+name, "audience: https://setgate.example/", "audience: "+aud).Replace(goodIssuer)
	}
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"same issuer, same audience", "issuers:" + goodIssuer + second("acme-poll", "https://setgate.example/"),
			`issuers "acme" and "acme-poll": both accept issuer https://idp.acme.example/ with audience "https://setgate.example/"`},
		{"same issuer, overlapping audiences", "issuers:" + goodIssuer + second("acme-2", "[https://other.example/, https://setgate.example/]"),
			`issuers "acme" and "acme-2"`},
		{"same issuer, other audience", "issuers:" + goodIssuer + second("acme-eu", "https://setgate.eu.example/"), ""},
		{"other issuer, same push credential", "issuers:" + goodIssuer + strings.NewReplacer("name: acme", "name: globex", "https://idp.acme.example/", "https://idp.globex.example/").Replace(goodIssuer),
			`issuers "acme" and "globex": the same push credential for two issuers`},
		{"other issuer, own push credential", "issuers:" + goodIssuer + strings.NewReplacer("name: acme", "name: globex", "https://idp.acme.example/", "https://idp.globex.example/", "/secrets/acme", "/secrets/globex").Replace(goodIssuer), ""},
		{"one entry with push and poll", "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      bearer_token_file: /secrets/acme\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIssuers([]byte(tt.yaml), nil, readFake(files))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
			}
		})
	}
}

// TestParseIssuersStreamID: stream.stream_id pins a stream.
func TestParseIssuersStreamID(t *testing.T) {
	files := map[string]string{"/secrets/mgmt": "m\n"}
	const base = `issuers:
  - name: okta
    issuer: https://okta.example/
    audience: https://setgate.example/
    discovery: true
    stream:
      manage: true
      delivery: poll
      events_requested: [https://schemas.openid.net/secevent/caep/event-type/session-revoked]
      bearer_token_file: /secrets/mgmt
`
	specs, err := ParseIssuers([]byte(base+"      stream_id: \"f67e39a0a4d34d56b3aa1bc4cff0069f\"\n"), nil, readFake(files))
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Stream.StreamID; got != "f67e39a0a4d34d56b3aa1bc4cff0069f" {
		t.Fatalf("stream_id: got %q", got)
	}
	if _, err := ParseIssuers([]byte(base+"      stream_id: \" x\"\n"), nil, readFake(files)); err == nil || !strings.Contains(err.Error(), "stream.stream_id") {
		t.Fatalf("want stream.stream_id refused, got %v", err)
	}
	if _, err := ParseIssuers([]byte(base+"      streamid: x\n"), nil, readFake(files)); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("want a misspelt key refused, got %v", err)
	}
}
