package gateway

import (
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/setgate/setgate/verify"
)

// errorBody is the RFC 8935 §2.4 error object.
type errorBody struct {
	Err         verify.Code `json:"err,omitempty"`
	Description string      `json:"description"`
}

// statusFor maps an error code to the HTTP status setgate answers with.
// Every SET error is 400 (RFC 8935 §2.3); the transmitter-credential codes
// use the general HTTP statuses.
func statusFor(code verify.Code) int {
	switch code {
	case verify.CodeAuthenticationFailed:
		return http.StatusUnauthorized
	case verify.CodeAccessDenied:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// writeError writes every non-2xx answer of the push receiver: a JSON
// body in English. code may be empty for errors that have no registered
// SET code (429, 503).
func writeError(w http.ResponseWriter, status int, code verify.Code, description string) {
	h := w.Header()
	// One allocation for the four values; each is a one-element window
	// with its capacity capped, so adding to one header cannot change
	// another.
	v := [...]string{"application/json", "en", "no-store", "nosniff"}
	h["Content-Type"] = v[0:1:1]
	h["Content-Language"] = v[1:2:2]
	h["Cache-Control"] = v[2:3:3]
	h["X-Content-Type-Options"] = v[3:4:4]
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="setgate"`)
	}
	w.WriteHeader(status)
	writeErrorBody(w, code, description)
}

// writeErrorBody writes the errorBody of code and description to w as
// json.NewEncoder(w).Encode does (a newline after the object), in pieces,
// without encoding reflection.
func writeErrorBody(w io.Writer, code verify.Code, description string) {
	if code != "" {
		_, _ = io.WriteString(w, `{"err":`)
		writeJSONString(w, string(code))
		_, _ = io.WriteString(w, `,"description":`)
	} else {
		_, _ = io.WriteString(w, `{"description":`)
	}
	writeJSONString(w, description)
	_, _ = io.WriteString(w, "}\n")
}

// writeJSONString writes s as a JSON string escaped as encoding/json
// escapes it (HTML-safe: <, > and & as \u003c…; invalid UTF-8 as U+FFFD;
// U+2028 and U+2029 escaped): unescaped runs are written as they are.
func writeJSONString(w io.Writer, s string) {
	const hex = "0123456789abcdef"
	_, _ = io.WriteString(w, `"`)
	start := 0
	esc := func(i, size int, e string) {
		_, _ = io.WriteString(w, s[start:i])
		_, _ = io.WriteString(w, e)
		start = i + size
	}
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			switch b {
			case '\\':
				esc(i, 1, `\\`)
			case '"':
				esc(i, 1, `\"`)
			case '\b':
				esc(i, 1, `\b`)
			case '\f':
				esc(i, 1, `\f`)
			case '\n':
				esc(i, 1, `\n`)
			case '\r':
				esc(i, 1, `\r`)
			case '\t':
				esc(i, 1, `\t`)
			default:
				u := [6]byte{'\\', 'u', '0', '0', hex[b>>4], hex[b&0xF]}
				esc(i, 1, string(u[:]))
			}
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			esc(i, size, `\ufffd`)
		case c == '\u2028':
			esc(i, size, `\u2028`)
		case c == '\u2029':
			esc(i, size, `\u2029`)
		}
		i += size
	}
	_, _ = io.WriteString(w, s[start:])
	_, _ = io.WriteString(w, `"`)
}

// writeUnavailable answers 503 with a Retry-After hint.
func writeUnavailable(w http.ResponseWriter, retryAfterSeconds int, description string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	writeError(w, http.StatusServiceUnavailable, "", description)
}
