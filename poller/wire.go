package poller

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SetErr is one entry of a poll request's setErrs: the registered error
// code and a description safe to send to the transmitter.
type SetErr struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// request is the body of a poll request (RFC 8936 §2.4).
type request struct {
	MaxEvents         int               `json:"maxEvents"`
	ReturnImmediately bool              `json:"returnImmediately"`
	Ack               []string          `json:"ack,omitempty"`
	SetErrs           map[string]SetErr `json:"setErrs,omitempty"`
}

// Response is a parsed poll response (RFC 8936 §2.5).
type Response struct {
	// Sets maps each key of "sets" to its SET when the value is a JSON
	// string; an empty map when "sets" is absent, null or empty.
	Sets map[string]string
	// Malformed holds the keys whose value is not a JSON string: they
	// cannot be verified and are reported as invalid_request.
	Malformed []string
	// MoreAvailable is the moreAvailable member; false when absent.
	MoreAvailable bool
}

// ParseResponse parses a poll response body. The body must be one JSON
// object; "sets", if present and not null, must be an object and
// "moreAvailable", if present and not null, a boolean. Other members are
// ignored. A value in "sets" that is not a string does not fail the whole
// response: its key is listed in Malformed.
func ParseResponse(body []byte) (Response, error) {
	if !isObject(body) {
		return Response{}, errors.New("poller: response is not a JSON object")
	}
	var top struct {
		Sets          json.RawMessage `json:"sets"`
		MoreAvailable json.RawMessage `json:"moreAvailable"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&top); err != nil {
		return Response{}, fmt.Errorf("poller: response is not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Response{}, errors.New("poller: response has data after the JSON object")
	}
	r := Response{Sets: map[string]string{}}
	if len(top.MoreAvailable) > 0 && string(top.MoreAvailable) != "null" {
		if err := json.Unmarshal(top.MoreAvailable, &r.MoreAvailable); err != nil {
			return Response{}, errors.New("poller: moreAvailable is not a boolean")
		}
	}
	if len(top.Sets) == 0 || string(top.Sets) == "null" {
		return r, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(top.Sets, &raw); err != nil {
		return Response{}, errors.New("poller: sets is not a JSON object")
	}
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			r.Malformed = append(r.Malformed, k)
			continue
		}
		r.Sets[k] = s
	}
	return r, nil
}

// isObject reports whether body, after white space, starts with '{'.
func isObject(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// jtiOf reads the jti claim of a compact JWS without verifying anything,
// just enough to compare it with its map key. ok is false when the token
// is not a compact JWS with a claims object whose jti is a string; the full
// verification then rejects it with its own code.
func jtiOf(token string) (jti string, ok bool) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var claims struct {
		JTI *string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == nil {
		return "", false
	}
	return *claims.JTI, true
}
