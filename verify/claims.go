package verify

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// stringClaim returns m's member name when it is a JSON string.
func stringClaim(m members, name string) (string, bool) {
	raw, _ := m.get(name)
	return stringOf(raw)
}

// stringOf returns the JSON string raw holds (false when raw is absent or
// not a string).
func stringOf(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
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

// knownClaim is stringClaim for a member whose value is usually one of
// known: that value is returned as the known string, without a copy.
func knownClaim(m members, name string, known []string) (string, bool) {
	raw, _ := m.get(name)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		// A known string equal to the bytes between the quotes holds no
		// backslash, so the JSON string has no escape and means it.
		for _, k := range known {
			if string(raw[1:len(raw)-1]) == k {
				return k, true
			}
		}
	}
	return stringOf(raw)
}

// numberClaim returns m's member name when it is a JSON number.
func numberClaim(m members, name string) (json.Number, bool) {
	raw, _ := m.get(name)
	if _, ok := floatOf(raw); !ok {
		return "", false
	}
	return json.Number(raw), true
}

// floatClaim returns the value of m's member name when it is a JSON
// number, as numberClaim does without keeping the number's text.
func floatClaim(m members, name string) (float64, bool) {
	raw, _ := m.get(name)
	return floatOf(raw)
}

// floatOf returns the JSON number raw holds as json.Number.Float64 reads
// it (false when raw is absent or not a number).
func floatOf(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
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

// checkClaims checks the claims after the signature. set.JTI must hold
// the jti claim if it is a string.
func (v *Verifier) checkClaims(c members, set *SET) *Error {
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

	if c.has("nbf") {
		// RFC 7519 §4.1.5: the token must not be accepted before nbf.
		nf, ok := floatClaim(c, "nbf")
		if !ok {
			return badRequest("The nbf claim is not a number.")
		}
		if numericDate(nf).After(now.Add(v.cfg.MaxClockSkew)) {
			return badRequest("The SET is not valid yet: nbf is more than %s in the future.", v.cfg.MaxClockSkew)
		}
	}

	// set.JTI is the jti claim when it is a string, else "" (verify
	// read it for its rejections).
	if set.JTI == "" {
		return badRequest("The jti claim is missing or not a non-empty string.")
	}
	if len(set.JTI) > 256 {
		return badRequest("The jti claim is longer than 256 bytes.")
	}
	// The jti is repeated in the Setgate-Jti header and the Nats-Msg-Id
	// of every stored event (README "Subjects and messages"); a control
	// character (CR and LF above all) would make the header differ from
	// the body, so none is taken.
	if strings.IndexFunc(set.JTI, unicode.IsControl) >= 0 {
		return badRequest("The jti claim contains a control character.")
	}

	if c.has("toe") {
		n, ok := numberClaim(c, "toe")
		if !ok {
			return badRequest("The toe claim is not a number.")
		}
		set.TOE = &n
	}
	if c.has("txn") {
		var ok bool
		if set.TXN, ok = stringClaim(c, "txn"); !ok {
			return badRequest("The txn claim is not a string.")
		}
	}

	if c.has("sub") {
		if ssf {
			return badRequest("The sub claim must not be present in a Shared Signals SET; use sub_id.")
		}
		var ok bool
		if set.Sub, ok = stringClaim(c, "sub"); !ok {
			return badRequest("The sub claim is not a string.")
		}
	}
	if c.has("exp") {
		if ssf {
			return badRequest("The exp claim must not be present in a Shared Signals SET.")
		}
		ef, ok := floatClaim(c, "exp")
		if !ok {
			return badRequest("The exp claim is not a number.")
		}
		if now.Add(-v.cfg.MaxClockSkew).After(numericDate(ef)) {
			return badRequest("The SET expired (exp is in the past).")
		}
	}

	if raw, ok := c.get("sub_id"); ok {
		if e := v.checkSubID(raw, set); e != nil {
			return e
		}
		set.SubID = raw
	} else if ssf {
		return badRequest("The sub_id claim is required in a Shared Signals SET.")
	}

	return v.checkEvents(c, set)
}

func (v *Verifier) checkEvents(c members, set *SET) *Error {
	raw, ok := c.get("events")
	if !ok || !isObject(raw) {
		return badRequest("The events claim is missing or not a JSON object.")
	}
	events, ok := iterObject(raw)
	n, first := 0, events
	for events.next() {
		n++
	}
	if !ok || !events.ok() {
		return badRequest("The events claim is not a valid JSON object.")
	}
	if n == 0 {
		return badRequest("The events claim has no event.")
	}
	if v.cfg.Profile == ProfileSSF && n > 1 {
		return badRequest("A Shared Signals SET must carry exactly one event; this one has %d.", n)
	}
	if set.Events = set.Events[:0]; cap(set.Events) < n {
		set.Events = make([]Event, 0, n)
	}
	for events = first; events.next(); {
		name := string(events.name)
		if _, known := payloads[name]; !known && !isURI(name) {
			return badRequest("Event type %q is not a URI.", truncate(name, 128))
		}
		if !isObject(events.value) {
			return badRequest("The payload of event %q is not a JSON object.", truncate(name, 128))
		}
		ev := Event{Type: name, Payload: events.value}
		if e := v.checkPayload(ev, set); e != nil {
			return e
		}
		set.Events = append(set.Events, ev)
	}
	return nil
}

// isURI reports whether s is an absolute URI (a scheme and something after
// it), the form event identifiers must take.
func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "" || u.Path != "")
}
