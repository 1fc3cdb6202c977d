package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting in header and claims; SETs are shallow.
const maxJSONDepth = 32

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

// decodeObject decodes a JSON object into its members, rejecting invalid
// UTF-8, nesting deeper than maxJSONDepth and duplicate member names at any
// level (encoding/json would silently keep the last one).
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("malformed JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	if err := checkObject(dec, 1); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("malformed JSON")
	}
	return m, nil
}

// checkObject consumes the members of an object whose '{' was read.
func checkObject(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("nested too deeply")
	}
	seen := make(map[string]struct{})
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("malformed JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return errors.New("malformed JSON")
		}
		if _, dup := seen[name]; dup {
			return fmt.Errorf("duplicate member %q", truncate(name, 64))
		}
		seen[name] = struct{}{}
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return errors.New("malformed JSON")
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New("malformed JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return checkObject(dec, depth+1)
	case '[':
		if depth+1 > maxJSONDepth {
			return errors.New("nested too deeply")
		}
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return errors.New("malformed JSON")
		}
		return nil
	default:
		return errors.New("malformed JSON")
	}
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
