package poller

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantErr  bool
		wantSets map[string]string
		wantBad  []string
		wantMore bool
	}{
		{"empty object", `{}`, false, map[string]string{}, nil, false},
		{"rfc 8936 example", `{"sets":{"4d3559ec67504aaba65d40b0363faad8":"eyJhbGciOiJub25lIn0.eyJqdGkiOiI0ZDM1In0."},"moreAvailable":true}`,
			false, map[string]string{"4d3559ec67504aaba65d40b0363faad8": "eyJhbGciOiJub25lIn0.eyJqdGkiOiI0ZDM1In0."}, nil, true},
		{"null members", `{"sets":null,"moreAvailable":null}`, false, map[string]string{}, nil, false},
		{"unknown members", ` {"sets":{},"x":[1,2]} `, false, map[string]string{}, nil, false},
		{"non-string set", `{"sets":{"a":"t","b":5,"c":{}}}`, false, map[string]string{"a": "t"}, []string{"b", "c"}, false},
		{"not json", `{"sets": {"x": `, true, nil, nil, false},
		{"array", `[]`, true, nil, nil, false},
		{"null", `null`, true, nil, nil, false},
		{"string", `"sets"`, true, nil, nil, false},
		{"empty", ``, true, nil, nil, false},
		{"trailing data", `{} {}`, true, nil, nil, false},
		{"trailing garbage", `{}]`, true, nil, nil, false},
		{"sets not object", `{"sets":["a"]}`, true, nil, nil, false},
		{"more not bool", `{"moreAvailable":"yes"}`, true, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, got %v", tt.wantErr, err)
			}
			if err != nil {
				return
			}
			if !maps.Equal(got.Sets, tt.wantSets) {
				t.Errorf("want sets %q, got %q", tt.wantSets, got.Sets)
			}
			if slices.Sort(got.Malformed); !slices.Equal(got.Malformed, tt.wantBad) {
				t.Errorf("want malformed %q, got %q", tt.wantBad, got.Malformed)
			}
			if got.MoreAvailable != tt.wantMore {
				t.Errorf("want moreAvailable %v, got %v", tt.wantMore, got.MoreAvailable)
			}
		})
	}
}

func TestJTIOf(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	h := enc(`{"alg":"ES256"}`)
	tests := []struct {
		name, token, want string
		ok                bool
	}{
		{"jti", h + "." + enc(`{"jti":"abc","iss":"x"}`) + ".sig", "abc", true},
		{"spaces around", " " + h + "." + enc(`{"jti":"abc"}`) + ".sig\n", "abc", true},
		{"empty jti", h + "." + enc(`{"jti":""}`) + ".sig", "", true},
		{"no jti", h + "." + enc(`{"iss":"x"}`) + ".sig", "", false},
		{"number jti", h + "." + enc(`{"jti":5}`) + ".sig", "", false},
		{"padded base64", h + "." + base64.URLEncoding.EncodeToString([]byte(`{"jti":"abcd"}`)) + ".sig", "", false},
		{"jwe", "a.b.c.d.e", "", false},
		{"not json", h + "." + enc(`jti`) + ".sig", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jtiOf(tt.token)
			if got != tt.want || ok != tt.ok {
				t.Errorf("want %q %v, got %q %v", tt.want, tt.ok, got, ok)
			}
		})
	}
}

// FuzzParseResponse checks that any body either fails cleanly or parses
// into a response that survives re-encoding unchanged, and that jtiOf
// never panics on what it yields.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"sets":{},"moreAvailable":false}`,
		`{"sets":{"a":"eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJhIn0.c2ln","b":1},"moreAvailable":true}`,
		`{"sets":null}`, `{"sets":{"a":"x","a":"y"}}`, `{"sets":{"\u00e9":"\ud800"}}`,
		`[]`, `null`, `{"sets":`, `{} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			if r.Sets != nil || r.Malformed != nil || r.MoreAvailable {
				t.Fatalf("error %v with a non-zero response %+v", err, r)
			}
			return
		}
		if r.Sets == nil {
			t.Fatal("want a non-nil sets map on success")
		}
		for _, k := range r.Malformed {
			if _, dup := r.Sets[k]; dup {
				t.Fatalf("key %q both in sets and malformed", k)
			}
		}
		for _, tok := range r.Sets {
			jti, ok := jtiOf(tok)
			if !ok && jti != "" {
				t.Fatalf("jtiOf(%q) = %q with ok false", tok, jti)
			}
			if ok && strings.Count(strings.TrimSpace(tok), ".") != 2 {
				t.Fatalf("jtiOf accepted %q, which is not three parts", tok)
			}
		}
		again, err := json.Marshal(map[string]any{"sets": r.Sets, "moreAvailable": r.MoreAvailable})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseResponse(again)
		if err != nil {
			t.Fatalf("re-encoded response %s does not parse: %v", again, err)
		}
		if !maps.Equal(r.Sets, r2.Sets) || r.MoreAvailable != r2.MoreAvailable || len(r2.Malformed) != 0 {
			t.Fatalf("round trip changed the response: %+v -> %+v", r, r2)
		}
	})
}
