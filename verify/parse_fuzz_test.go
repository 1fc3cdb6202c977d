package verify

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"testing"
)

// refDecodeObject is how header and claims were decoded before the
// members scanner: the JSON v2 decoder into a map, which decodeObjectSlow
// still is (decodeObject's answer for what its validator refuses).
// decodeObject must accept exactly what it accepts, with the same members,
// and refuse the rest with the same description.
func refDecodeObject(data []byte) (map[string]json.RawMessage, error) {
	ms, err := decodeObjectSlow(data)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		out[string(m.name)] = m.value
	}
	return out, nil
}

// refOrderedMembers is how event, complex-subject and payload members
// were read before the members scanner: encoding/json's decoder, in
// document order, repeated names included.
func refOrderedMembers(raw []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var names []string
	var values []json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		names = append(names, t.(string))
		values = append(values, v)
	}
	return names, values, nil
}

var objectSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1,"x":1}]}`,
	`{"i\u0073s":"x","iss":"y"}`, `{"\u00e9":"\u00e9","é":1}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", "{\"\xff\":1}",
	`{"a":"}","b":"{\"","c":[1,"]",{"d":null}]}`, `{"a":1}x`, `{"a":1} {}`, `[1]`, `null`, `"s"`, `1`, ``, ` `,
	`{"a"}`, `{"a":}`, `{,}`, `{"a":1,}`, `{1:2}`, `{"a":-0.5e+3,"b":true,"c":false,"d":null}`,
	`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
	`{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
	"{\"a\"\t:\r\n1 ,\n\"b\" : \"x\" }",
	`{"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"event_timestamp":1}}}`,
}

// FuzzDecodeObject: decodeObject accepts exactly what the JSON v2 map
// decoder accepted, with the same members (names unescaped, values
// verbatim), and refuses the rest with the same description.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := refDecodeObject(data)
		got, err := decodeObject(data, nil)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%q: want error %v, got %v", data, wantErr, err)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: want %d members, got %d", data, len(want), len(got))
		}
		for _, m := range got {
			if w, ok := want[string(m.name)]; !ok || !bytes.Equal(w, m.value) {
				t.Fatalf("%q: member %q: want %q, got %q", data, m.name, w, m.value)
			}
			if v, _ := got.get(string(m.name)); !bytes.Equal(v, m.value) {
				t.Fatalf("%q: get %q: want %q, got %q", data, m.name, m.value, v)
			}
		}
	})
}

// FuzzScanObject: on any JSON object encoding/json accepts, scanObject
// and iterObject read the members encoding/json's decoder read, in order
// (repeated names included), and get finds what json.Unmarshal into a
// map finds (the last of a repeated name). On anything else, no panic.
func FuzzScanObject(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanObject(data, nil)
		_ = countMembers(data)
		if !json.Valid(data) {
			return
		}
		var asMap map[string]json.RawMessage
		if !isObject(data) || json.Unmarshal(data, &asMap) != nil {
			if ok {
				t.Fatalf("%q: want no object, got %d members", data, len(got))
			}
			return
		}
		names, values, err := refOrderedMembers(data)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || len(got) != len(names) {
			t.Fatalf("%q: want %d members, got %v %d", data, len(names), ok, len(got))
		}
		it, _ := iterObject(data)
		for i := range names {
			if string(got[i].name) != names[i] || !bytes.Equal(got[i].value, values[i]) {
				t.Fatalf("%q: member %d: want %q=%q, got %q=%q", data, i, names[i], values[i], got[i].name, got[i].value)
			}
			if !it.next() || string(it.name) != names[i] || !bytes.Equal(it.value, values[i]) {
				t.Fatalf("%q: iterObject member %d differs", data, i)
			}
		}
		if it.next() || !it.ok() {
			t.Fatalf("%q: iterObject does not end cleanly", data)
		}
		for name, want := range asMap {
			if v, ok := got.get(name); !ok || !bytes.Equal(v, want) {
				t.Fatalf("%q: get %q: want %q, got %q", data, name, want, v)
			}
		}
		if n := countMembers(data); n != len(names) {
			t.Fatalf("%q: countMembers %d, want %d", data, n, len(names))
		}
		var lm map[string]string
		if want := json.Unmarshal(data, &lm) == nil && len(lm) > 0; isLangMap(data) != want {
			t.Fatalf("%q: isLangMap %v, want %v", data, !want, want)
		}
	})
}

// TestParseCompactOwnsItsMemory: the decoded parts share one buffer
// that is the SET's own: changing the caller's bytes after Verify
// changes nothing in the SET, and a payload cannot be appended to over
// its neighbour.
func TestParseCompactOwnsItsMemory(t *testing.T) {
	h := b64url(`{"alg":"ES256","typ":"secevent+jwt"}`)
	c := b64url(`{"iss":"x","events":{"urn:a":{"k":"v"},"urn:b":{}}}`)
	raw := []byte(h + "." + c + ".c2ln")
	tok, e := parseCompact(string(raw))
	if e != nil {
		t.Fatal(e)
	}
	for i := range raw {
		raw[i] = 'A'
	}
	if alg, _ := stringClaim(tok.header, "alg"); alg != "ES256" {
		t.Fatalf("want alg ES256 after the input changed, got %q", alg)
	}
	events, _ := tok.claims.get("events")
	m, ok := scanObject(events, nil)
	if !ok || len(m) != 2 {
		t.Fatalf("want 2 events, got %v %d", ok, len(m))
	}
	if cap(m[0].value) != len(m[0].value) {
		t.Fatalf("want a value capped at its length, got len %d cap %d", len(m[0].value), cap(m[0].value))
	}
	_ = append(m[0].value, "xxxx"...)
	if string(m[1].name) != "urn:b" || string(m[1].value) != "{}" {
		t.Fatalf("want the next member intact, got %q=%q", m[1].name, m[1].value)
	}
	if string(tok.sig) != "sig" {
		t.Fatalf("want signature sig, got %q", tok.sig)
	}
}

func b64url(s string) string { return b64.EncodeToString([]byte(s)) }

// TestKnownClaim: a known value comes back as the known string; anything
// else as stringOf reads it.
func TestKnownClaim(t *testing.T) {
	known := []string{"ES256", "secevent+jwt"}
	tests := []struct {
		name, raw, want string
		wantOK          bool
	}{
		{name: "known", raw: `"ES256"`, want: "ES256", wantOK: true},
		{name: "escaped known", raw: `"E\u0053256"`, want: "ES256", wantOK: true},
		{name: "unknown", raw: `"RS256"`, want: "RS256", wantOK: true},
		{name: "number", raw: `256`},
		{name: "absent", raw: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := members{{name: []byte("alg"), value: json.RawMessage(tt.raw)}}
			if tt.raw == "" {
				m = nil
			}
			got, ok := knownClaim(m, "alg", known)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("want %q %v, got %q %v", tt.want, tt.wantOK, got, ok)
			}
			if s, ok := stringClaim(m, "alg"); s != got || ok != tt.wantOK {
				t.Fatalf("stringClaim %q %v differs from knownClaim %q", s, ok, got)
			}
			if ok && slices.Contains(known, got) && tt.name == "known" && got != known[0] {
				t.Fatalf("want the known string, got %q", got)
			}
		})
	}
}

// FuzzDotAtomAddr: every address the dot-atom shortcut accepts, net/mail
// accepts as an addr-spec without display name too (the shortcut only
// saves the parser's work).
func FuzzDotAtomAddr(f *testing.F) {
	for _, s := range []string{"user@example.com", "a.b@c", "a..b@c", ".a@b", "a@b.", "a@@b", "a@b@c", "a b@c",
		"!#$%&'*+-/=?^_`{|}~@x", "é@x", "a@[1.2.3.4]", `"a"@b`, "a@b (c)", "<a@b>", "@b", "a@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isDotAtomAddr(s) {
			return
		}
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s {
			t.Fatalf("%q: shortcut accepts, net/mail says %v %+v", s, err, a)
		}
	})
}

// countMembers returns how many members the object data has, or a lower
// bound when data is not valid JSON.
func countMembers(data []byte) int {
	it, _ := iterObject(data)
	n := 0
	for it.next() {
		n++
	}
	return n
}
