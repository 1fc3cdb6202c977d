package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// compact is a JWS compact serialization split into its parts. Header,
// claims and signature share one buffer, decoded once per SET; the
// members' names and values are slices of it.
type compact struct {
	signingInput string // header.claims, as received
	header       members
	claims       members
	sig          []byte
}

// parseCompact splits and decodes a compact JWS. It checks shape, strict
// base64url, UTF-8 and duplicate member names; nothing about meaning.
func parseCompact(raw string) (compact, *Error) {
	first := indexByte(raw, '.', 0)
	second := indexByte(raw, '.', first+1)
	if first < 0 || second < 0 {
		return compact{}, badRequest("The SET is not a compact JWS (expected three base64url parts separated by dots).")
	}
	if indexByte(raw, '.', second+1) >= 0 {
		return compact{}, badRequest("Encrypted SETs (JWE) are not supported; send a signed compact JWS.")
	}
	hp, cp, sp := raw[:first], raw[first+1:second], raw[second+1:]
	// One buffer for the three decoded parts and a copy of the encoded
	// input they are decoded from (the decoder reads bytes, raw is a
	// string).
	hn, cn, sn := b64.DecodedLen(len(hp)), b64.DecodedLen(len(cp)), b64.DecodedLen(len(sp))
	buf := make([]byte, hn+cn+sn+len(raw))
	src := buf[hn+cn+sn:]
	copy(src, raw)
	h, err := decodePart(buf[:0:hn], src[:first])
	if err != nil {
		return compact{}, badRequest("The JOSE header is not valid base64url.")
	}
	c, err := decodePart(buf[hn:hn:hn+cn], src[first+1:second])
	if err != nil {
		return compact{}, badRequest("The claims part is not valid base64url.")
	}
	s, err := decodePart(buf[hn+cn:hn+cn:hn+cn+sn], src[second+1:])
	if err != nil {
		return compact{}, badRequest("The signature part is not valid base64url.")
	}
	// The members are read into arrays on the stack, then copied into
	// one array of the right size.
	var hbuf, cbuf [16]member
	hm, err := decodeObject(h, hbuf[:0])
	if err != nil {
		return compact{}, badRequest("The JOSE header is not a valid JSON object: %s.", err)
	}
	cm, err := decodeObject(c, cbuf[:0])
	if err != nil {
		return compact{}, badRequest("The claims are not a valid JSON object: %s.", err)
	}
	all := make(members, len(hm)+len(cm))
	copy(all, hm)
	copy(all[len(hm):], cm)
	return compact{signingInput: raw[:second], sig: s,
		header: all[:len(hm):len(hm)], claims: all[len(hm):]}, nil
}

func indexByte(s string, b byte, from int) int {
	if from < 0 || from > len(s) {
		return -1
	}
	i := strings.IndexByte(s[from:], b)
	if i < 0 {
		return -1
	}
	return from + i
}

var b64 = base64.RawURLEncoding.Strict()

// decodePart decodes strict base64url src into dst's spare capacity
// (which must hold b64.DecodedLen(len(src)) bytes).
func decodePart(dst, src []byte) ([]byte, error) {
	n, err := b64.Decode(dst[:cap(dst)], src)
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// decodeObject decodes a JSON object into its members. The JSON v2
// validator rejects invalid UTF-8 and duplicate member names at any depth
// (RFC 7493 I-JSON; encoding/json would silently keep the last one); the
// members of a valid object are then read off without copying. Invalid
// input is described by [decodeObjectSlow].
//
// The members are appended to buf[:0], as scanObject does.
func decodeObject(data []byte, buf members) (members, error) {
	if jsontext.Value(data).IsValid() && nesting(data) <= maxJSONDepth {
		if m, ok := scanObject(data, buf); ok {
			return m, nil
		}
	}
	return decodeObjectSlow(data)
}

// decodeObjectSlow decodes data into a map with the JSON v2 decoder and
// says what is wrong with it. It runs only on input decodeObject refused:
// it names the fault, and should it ever accept what the validator
// refused, its members are used (never refusing more than it does).
func decodeObjectSlow(data []byte) (members, error) {
	var m map[string]jsontext.Value
	if err := jsonv2.Unmarshal(data, &m); err != nil {
		var se *jsontext.SyntacticError
		switch {
		case errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName):
			return nil, fmt.Errorf("duplicate member at %s", truncate(string(se.JSONPointer), 64))
		case errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrNonStringName):
			return nil, errors.New("malformed JSON")
		case !utf8.Valid(data):
			return nil, errors.New("not UTF-8")
		case len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] != '{':
			return nil, errors.New("not an object")
		default:
			return nil, errors.New("malformed JSON")
		}
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	if nesting(data) > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	out := make(members, 0, len(m))
	for k, v := range m {
		out = append(out, member{name: []byte(k), value: json.RawMessage(v)})
	}
	return out, nil
}

// member is one member of a JSON object: its name, unescaped, and its
// value as raw JSON.
type member struct {
	name  []byte
	value json.RawMessage
}

// members are a JSON object's members in document order.
type members []member

// get returns the value of the member name; of the last one if the
// object repeats it, as encoding/json has it (SETs never do: see
// [decodeObject]).
func (m members) get(name string) (json.RawMessage, bool) {
	for i := len(m) - 1; i >= 0; i-- {
		if string(m[i].name) == name {
			return m[i].value, true
		}
	}
	return nil, false
}

// has reports whether the object has a member name.
func (m members) has(name string) bool {
	_, ok := m.get(name)
	return ok
}

// scanObject returns the members of the JSON object data in document
// order, repeated names included, as encoding/json reads them: names
// unescaped (invalid UTF-8 replaced), values verbatim, sharing data's
// memory. data must be valid JSON (json.Valid, or a value inside a
// document decodeObject accepted); ok is false when it is not an object,
// and when the scanner meets something invalid after all.
//
// The members are appended to buf[:0] (which may be an array on the
// caller's stack: the result then shares it).
func scanObject(data []byte, buf members) (m members, ok bool) {
	it, ok := iterObject(data)
	if !ok {
		return nil, false
	}
	m = buf[:0]
	for it.next() {
		m = append(m, member{name: it.name, value: it.value})
	}
	if !it.ok() {
		return nil, false
	}
	return m, true
}

// objectIter walks the members of a JSON object (see [scanObject]):
//
//	for it.next() { use it.name, it.value }
//	if !it.ok() { invalid }
type objectIter struct {
	data        []byte
	i           int
	name, value []byte
	done, bad   bool
}

// iterObject starts walking the object data; false when data does not
// start with an object.
func iterObject(data []byte) (objectIter, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return objectIter{}, false
	}
	it := objectIter{data: data, i: skipSpace(data, i+1)}
	if it.i < len(data) && data[it.i] == '}' {
		it.done = true
		it.bad = skipSpace(data, it.i+1) != len(data)
	}
	return it, true
}

// next moves to the next member; false at the end or on invalid input.
func (it *objectIter) next() bool {
	if it.done || it.bad {
		return false
	}
	data, i := it.data, it.i
	if i >= len(data) || data[i] != '"' {
		return it.fail()
	}
	end := scanString(data, i)
	if end < 0 {
		return it.fail()
	}
	name := data[i+1 : end-1]
	if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
		var s string
		if json.Unmarshal(data[i:end], &s) != nil {
			return it.fail()
		}
		name = []byte(s)
	}
	i = skipSpace(data, end)
	if i >= len(data) || data[i] != ':' {
		return it.fail()
	}
	i = skipSpace(data, i+1)
	vend := scanValue(data, i)
	if vend <= i {
		return it.fail()
	}
	it.name, it.value = name, data[i:vend:vend]
	i = skipSpace(data, vend)
	switch {
	case i >= len(data):
		return it.fail()
	case data[i] == ',':
		it.i = skipSpace(data, i+1)
	case data[i] == '}':
		it.done = true
		it.bad = skipSpace(data, i+1) != len(data)
	default:
		return it.fail()
	}
	return true
}

func (it *objectIter) fail() bool {
	it.bad = true
	return false
}

// ok reports whether the walk met nothing invalid.
func (it *objectIter) ok() bool { return !it.bad }

// skipSpace returns the index of the first byte at or after i that is
// not JSON whitespace (RFC 8259 §2).
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just after the string that starts at
// data[i] (a quote), or -1.
func scanString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// scanValue returns the index just after the JSON value that starts at
// data[i], or -1. It finds the end only; the value was validated before.
func scanValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return scanString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				if j = scanString(data, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// maxJSONDepth bounds nesting in header and claims; SETs are shallow.
const maxJSONDepth = 32

// nesting returns the deepest nesting of objects and arrays in data,
// which must be valid JSON (brackets inside strings do not count).
func nesting(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// truncate shortens s for use in a description.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
