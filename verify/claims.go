package verify

import (
	"bytes"
	"encoding/json"
	"net/url"
	"time"
)

// stringClaim returns m[name] when it is a JSON string.
func stringClaim(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok || len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// Valid JSON (checked when decoded) without escapes: the string
		// is the bytes between the quotes.
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// numberClaim returns m[name] when it is a JSON number.
func numberClaim(m map[string]json.RawMessage, name string) (json.Number, bool) {
	raw, ok := m[name]
	if !ok || len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return "", false
	}
	n := json.Number(raw)
	if _, err := n.Float64(); err != nil {
		return "", false
	}
	return n, true
}

// numericDate converts a NumericDate to a time, truncated to the second.
// Values beyond ±2^40 seconds (some 35,000 years) are clamped first: a
// plain int64 conversion wraps huge values around, which would turn a
// far-future iat into a past one.
func numericDate(f float64) time.Time {
	const limit = 1 << 40
	f = max(-limit, min(f, limit))
	return time.Unix(int64(f), 0)
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func (v *Verifier) checkClaims(c map[string]json.RawMessage, set *SET) *Error {
	ssf := v.cfg.Profile == ProfileSSF
	now := v.now()

	iat, ok := numberClaim(c, "iat")
	if !ok {
		return badRequest("The iat claim is missing or not a number.")
	}
	f, _ := iat.Float64()
	if f < 0 {
		return badRequest("The iat claim is negative.")
	}
	if numericDate(f).After(now.Add(v.cfg.MaxClockSkew)) {
		return badRequest("The iat claim is more than %s in the future.", v.cfg.MaxClockSkew)
	}
	if v.cfg.MaxAge > 0 && now.Sub(numericDate(f)) > v.cfg.MaxAge {
		return badRequest("The SET is too old: iat is more than %s in the past (this receiver's max_age).", v.cfg.MaxAge)
	}
	set.IAT = iat

	if _, ok := c["nbf"]; ok {
		// RFC 7519 §4.1.5: the token must not be accepted before nbf.
		nbf, ok := numberClaim(c, "nbf")
		if !ok {
			return badRequest("The nbf claim is not a number.")
		}
		nf, _ := nbf.Float64()
		if numericDate(nf).After(now.Add(v.cfg.MaxClockSkew)) {
			return badRequest("The SET is not valid yet: nbf is more than %s in the future.", v.cfg.MaxClockSkew)
		}
	}

	jti, ok := stringClaim(c, "jti")
	if !ok || jti == "" {
		return badRequest("The jti claim is missing or not a non-empty string.")
	}
	if len(jti) > 256 {
		return badRequest("The jti claim is longer than 256 bytes.")
	}
	set.JTI = jti

	if _, ok := c["toe"]; ok {
		n, ok := numberClaim(c, "toe")
		if !ok {
			return badRequest("The toe claim is not a number.")
		}
		set.TOE = &n
	}
	if _, ok := c["txn"]; ok {
		if set.TXN, ok = stringClaim(c, "txn"); !ok {
			return badRequest("The txn claim is not a string.")
		}
	}

	if _, ok := c["sub"]; ok {
		if ssf {
			return badRequest("The sub claim must not be present in a Shared Signals SET; use sub_id.")
		}
		if set.Sub, ok = stringClaim(c, "sub"); !ok {
			return badRequest("The sub claim is not a string.")
		}
	}
	if _, ok := c["exp"]; ok {
		if ssf {
			return badRequest("The exp claim must not be present in a Shared Signals SET.")
		}
		exp, ok := numberClaim(c, "exp")
		if !ok {
			return badRequest("The exp claim is not a number.")
		}
		ef, _ := exp.Float64()
		if now.Add(-v.cfg.MaxClockSkew).After(numericDate(ef)) {
			return badRequest("The SET expired (exp is in the past).")
		}
	}

	if raw, ok := c["sub_id"]; ok {
		if e := v.checkSubID(raw, set); e != nil {
			return e
		}
		set.SubID = raw
	} else if ssf {
		return badRequest("The sub_id claim is required in a Shared Signals SET.")
	}

	return v.checkEvents(c, set)
}

func (v *Verifier) checkEvents(c map[string]json.RawMessage, set *SET) *Error {
	raw, ok := c["events"]
	if !ok || !isObject(raw) {
		return badRequest("The events claim is missing or not a JSON object.")
	}
	names, members, err := orderedMembers(raw)
	if err != nil {
		return badRequest("The events claim is not a valid JSON object.")
	}
	if len(names) == 0 {
		return badRequest("The events claim has no event.")
	}
	if v.cfg.Profile == ProfileSSF && len(names) > 1 {
		return badRequest("A Shared Signals SET must carry exactly one event; this one has %d.", len(names))
	}
	for i, name := range names {
		if !isURI(name) {
			return badRequest("Event type %q is not a URI.", truncate(name, 128))
		}
		if !isObject(members[i]) {
			return badRequest("The payload of event %q is not a JSON object.", truncate(name, 128))
		}
		ev := Event{Type: name, Payload: members[i]}
		if e := v.checkPayload(ev, set); e != nil {
			return e
		}
		set.Events = append(set.Events, ev)
	}
	return nil
}

// orderedMembers returns an object's member names and values in document
// order (the order the issuer wrote them).
func orderedMembers(raw json.RawMessage) ([]string, []json.RawMessage, error) {
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

// isURI reports whether s is an absolute URI (a scheme and something after
// it), the form event identifiers must take.
func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "" || u.Path != "")
}
