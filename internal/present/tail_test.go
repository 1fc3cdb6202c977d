package present

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestSubjectSummary(t *testing.T) {
	tests := []struct {
		subID, sub, event, want string
	}{
		{`{"format":"email","email":"a@x.example"}`, "", ``, "a@x.example"},
		{`{"format":"phone_number","phone_number":"+12065550100"}`, "", ``, "+12065550100"},
		{`{"format":"iss_sub","iss":"https://idp/","sub":"u1"}`, "", ``, "u1 (iss https://idp/)"},
		{`{"format":"opaque","id":"11112222"}`, "", ``, "id=11112222"},
		{`{"format":"account","uri":"acct:a@x.example"}`, "", ``, "acct:a@x.example"},
		{`{"format":"aliases","identifiers":[{"format":"email","email":"b@x.example"}]}`, "", ``, "b@x.example"},
		{`{"user":{"format":"email","email":"c@x.example"},"device":{"format":"opaque","id":"d1"}}`, "", ``, "device=id=d1 user=c@x.example"},
		{``, "plain-sub", ``, "sub=plain-sub"},
		{`{"format":"future"}`, "", ``, "format=future"},
		// sub_id first, then sub, then the payload's subject (CAEP 1.0 legacy form).
		{`{"format":"email","email":"a@x.example"}`, "s1", `{"subject":{"format":"email","email":"p@x.example"}}`, "a@x.example"},
		{``, "s1", `{"subject":{"format":"email","email":"p@x.example"}}`, "sub=s1"},
		{``, "", `{"subject":{"format":"email","email":"p@x.example"}}`, "p@x.example"},
		{``, "", `{"subject":{"user":{"format":"opaque","id":"u1"},"tenant":{"format":"opaque","id":"t1"}}}`, "tenant=id=t1 user=id=u1"},
		{``, "", `{"subject":"not an object"}`, ""},
		{``, "", `{"initiating_entity":"policy"}`, ""},
		{`not json`, "", `{"subject":{"format":"phone_number","phone_number":"+12065550100"}}`, "+12065550100"},
	}
	for _, tt := range tests {
		if got := SubjectSummary(json.RawMessage(tt.subID), tt.sub, json.RawMessage(tt.event)); got != tt.want {
			t.Errorf("SubjectSummary(%s, %q, %s): want %q, got %q", tt.subID, tt.sub, tt.event, tt.want, got)
		}
	}
}

func TestJSONWithRouting(t *testing.T) {
	tests := []struct {
		name string
		body string
		seq  uint64
		want string
	}{
		{"envelope", `{"issuer":"acme"}`, 7, `{"nats_subject":"s.a","stream_sequence":7,"issuer":"acme"}`},
		{"no sequence (a rejection)", `{"issuer":"acme"}`, 0, `{"nats_subject":"s.a","issuer":"acme"}`},
		{"empty object", ` { } `, 3, `{"nats_subject":"s.a","stream_sequence":3}`},
		{"not JSON", `garbage"`, 3, `{"nats_subject":"s.a","stream_sequence":3,"unreadable":"garbage\""}`},
		{"not an object", `[1]`, 3, `{"nats_subject":"s.a","stream_sequence":3,"unreadable":"[1]"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(JSONWithRouting([]byte(tt.body), "s.a", tt.seq))
			if got != tt.want {
				t.Errorf("want %s, got %s", tt.want, got)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}

// FuzzJSONWithRouting: whatever a message holds, a --json line is one
// JSON object whose nats_subject and stream_sequence are the message's,
// and a JSON object body keeps all its members.
func FuzzJSONWithRouting(f *testing.F) {
	for _, seed := range []string{`{"issuer":"acme","jti":"j1"}`, `{}`, ` { } `, `[]`, `"x"`, ``, `{"a":`, "{\"a\":1}\n", `{"a":{"b":[1,2]}}`} {
		f.Add([]byte(seed), "secevent.caep.session-revoked.acme", uint64(7))
	}
	f.Fuzz(func(t *testing.T, body []byte, subject string, seq uint64) {
		out := JSONWithRouting(body, subject, seq)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, out)
		}
		// encoding/json replaces invalid UTF-8; subjects are ASCII in practice.
		var subj, want string
		wantJSON, _ := json.Marshal(subject)
		_ = json.Unmarshal(wantJSON, &want)
		if err := json.Unmarshal(got["nats_subject"], &subj); err != nil || subj != want {
			t.Errorf("nats_subject: want %q, got %s", subject, got["nats_subject"])
		}
		if seq != 0 && string(got["stream_sequence"]) != fmt.Sprint(seq) {
			t.Errorf("stream_sequence: want %d, got %s", seq, got["stream_sequence"])
		}
		var in map[string]json.RawMessage
		if json.Unmarshal(body, &in) == nil && in != nil {
			for k, v := range in {
				if k == "nats_subject" || k == "stream_sequence" {
					continue
				}
				if !bytes.Equal(got[k], v) {
					t.Errorf("member %q: want %s, got %s", k, v, got[k])
				}
			}
		}
	})
}
