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

// compact is a JWS compact serialization split into its parts.
type compact struct {
	signingInput string // header.claims, as received
	header       map[string]json.RawMessage
	claims       map[string]json.RawMessage
	sig          []byte
}

// parseCompact splits and decodes a compact JWS. It checks shape, strict
// base64url, UTF-8 and duplicate member names; nothing about meaning.
func parseCompact(raw string) (*compact, *Error) {
	first := indexByte(raw, '.', 0)
	second := indexByte(raw, '.', first+1)
	if first < 0 || second < 0 {
		return nil, badRequest("The SET is not a compact JWS (expected three base64url parts separated by dots).")
	}
	if indexByte(raw, '.', second+1) >= 0 {
		return nil, badRequest("Encrypted SETs (JWE) are not supported; send a signed compact JWS.")
	}
	h, err := decodePart(raw[:first])
	if err != nil {
		return nil, badRequest("The JOSE header is not valid base64url.")
	}
	c, err := decodePart(raw[first+1 : second])
	if err != nil {
		return nil, badRequest("The claims part is not valid base64url.")
	}
	s, err := decodePart(raw[second+1:])
	if err != nil {
		return nil, badRequest("The signature part is not valid base64url.")
	}
	t := &compact{signingInput: raw[:second], sig: s}
	if t.header, err = decodeObject(h); err != nil {
		return nil, badRequest("The JOSE header is not a valid JSON object: %s.", err)
	}
	if t.claims, err = decodeObject(c); err != nil {
		return nil, badRequest("The claims are not a valid JSON object: %s.", err)
	}
	return t, nil
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

func decodePart(s string) ([]byte, error) {
	return b64.DecodeString(s)
}

// decodeObject decodes a JSON object into its members. The JSON v2
// decoder rejects invalid UTF-8 and duplicate member names at any depth
// (RFC 7493 I-JSON; encoding/json would silently keep the last one) in the
// same single pass.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
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
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out, nil
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
