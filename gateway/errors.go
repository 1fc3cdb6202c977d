package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

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
	h.Set("Content-Type", "application/json")
	h.Set("Content-Language", "en")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="setgate"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Err: code, Description: description})
}

// writeUnavailable answers 503 with a Retry-After hint.
func writeUnavailable(w http.ResponseWriter, retryAfterSeconds int, description string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	writeError(w, http.StatusServiceUnavailable, "", description)
}
