package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// appendEnvelope appends env as JSON to dst, byte for byte what
// json.Marshal(env) writes (HTML-safe string escaping, raw members
// compacted, omitempty members left out), without reflection and with one
// allocation sized for the SET: the envelope is encoded once per event
// on the push path (README "Performance").
func appendEnvelope(dst []byte, env *Envelope) ([]byte, error) {
	var err error
	dst = append(dst, `{"issuer":`...)
	dst = appendString(dst, env.Issuer)
	dst = append(dst, `,"iss":`...)
	dst = appendString(dst, env.Iss)
	dst = append(dst, `,"jti":`...)
	dst = appendString(dst, env.JTI)
	dst = append(dst, `,"iat":`...)
	if dst, err = appendNumber(dst, env.IAT); err != nil {
		return nil, err
	}
	dst = append(dst, `,"aud":`...)
	if env.Aud == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, a := range env.Aud {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, a)
		}
		dst = append(dst, ']')
	}
	if env.TOE != "" {
		dst = append(dst, `,"toe":`...)
		if dst, err = appendNumber(dst, env.TOE); err != nil {
			return nil, err
		}
	}
	if env.TXN != "" {
		dst = append(dst, `,"txn":`...)
		dst = appendString(dst, env.TXN)
	}
	if len(env.SubID) > 0 {
		dst = append(dst, `,"sub_id":`...)
		if dst, err = appendRaw(dst, env.SubID); err != nil {
			return nil, err
		}
	}
	if env.Sub != "" {
		dst = append(dst, `,"sub":`...)
		dst = appendString(dst, env.Sub)
	}
	dst = append(dst, `,"event_type":`...)
	dst = appendString(dst, env.EventType)
	dst = append(dst, `,"event":`...)
	if dst, err = appendRaw(dst, env.Event); err != nil {
		return nil, err
	}
	dst = append(dst, `,"delivery":`...)
	dst = appendString(dst, string(env.Delivery))
	dst = append(dst, `,"received_at":`...)
	if y := env.ReceivedAt.Year(); y < 0 || y > 9999 {
		return nil, errors.New("bridge: received_at outside the years 0 to 9999")
	}
	dst = append(dst, '"')
	dst = env.ReceivedAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = append(dst, `,"set":`...)
	dst = appendString(dst, env.SET)
	if len(env.PayloadWarnings) > 0 {
		dst = append(dst, `,"payload_warnings":[`...)
		for i, w := range env.PayloadWarnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// envelopeSize is a capacity that holds env's JSON unless its strings
// need much escaping.
func envelopeSize(env *Envelope) int {
	n := 256 + len(env.Issuer) + len(env.Iss) + len(env.JTI) + len(env.IAT) + len(env.TOE) + len(env.TXN) +
		len(env.SubID) + len(env.Sub) + len(env.EventType) + len(env.Event) + len(env.SET)
	for _, a := range env.Aud {
		n += len(a) + 3
	}
	for _, w := range env.PayloadWarnings {
		n += len(w) + 3
	}
	return n
}

// appendNumber appends a json.Number as encoding/json does: "" as 0, an
// invalid number is an error.
func appendNumber(dst []byte, n json.Number) ([]byte, error) {
	if n == "" {
		return append(dst, '0'), nil
	}
	if !isNumber(string(n)) {
		return nil, errors.New("bridge: invalid number literal " + strconv.Quote(string(n)))
	}
	return append(dst, n...), nil
}

// isNumber reports whether s is a JSON number (RFC 8259 §6), nothing
// around it.
func isNumber(s string) bool {
	digits := func(s string) string {
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
		return s
	}
	s, _ = strings.CutPrefix(s, "-")
	switch {
	case s == "":
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = digits(s[1:])
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = digits(s[2:])
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
		}
		if s == "" || s[0] < '0' || s[0] > '9' {
			return false
		}
		s = digits(s)
	}
	return s == ""
}

// appendRaw appends raw JSON as encoding/json does for a json.RawMessage:
// compacted, with <, >, &, U+2028 and U+2029 escaped; nil is null, and
// empty but not nil is an error (not a JSON value), as json.Marshal has it.
func appendRaw(dst []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(dst, "null"...), nil
	}
	if len(raw) == 0 {
		return nil, errors.New("bridge: envelope: empty raw JSON member")
	}
	buf := bytes.NewBuffer(dst)
	start := buf.Len()
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if needsHTMLEscape(out[start:]) {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, out[start:])
		out = append(out[:start], esc.Bytes()...)
	}
	return out, nil
}

// needsHTMLEscape reports whether b holds <, > or & or may hold U+2028
// or U+2029 (whose UTF-8 encodings start with 0xE2).
func needsHTMLEscape(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML-safe: <, >, & as \u003c…; invalid UTF-8 as U+FFFD; U+2028 and
// U+2029 escaped).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
