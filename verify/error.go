package verify

import (
	"errors"
	"fmt"
)

// Code is a registered Security Event Token error code (RFC 8935 §2.4,
// IANA "Security Event Token Error Codes").
type Code string

// The registered codes setgate uses.
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeInvalidKey           Code = "invalid_key"
	CodeInvalidIssuer        Code = "invalid_issuer"
	CodeInvalidAudience      Code = "invalid_audience"
	CodeAuthenticationFailed Code = "authentication_failed"
	CodeAccessDenied         Code = "access_denied"
	CodeInvalidState         Code = "invalid_state"
)

// Error is a rejected SET: the code and description are safe to send to the
// transmitter; Err, if set, is the internal cause for logs only.
type Error struct {
	Code        Code
	Description string
	// JTI is the token's jti when it could be read, for logs and poll setErrs.
	JTI string
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("verify: %s: %s: %v", e.Code, e.Description, e.Err)
	}
	return fmt.Sprintf("verify: %s: %s", e.Code, e.Description)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code carried by err, or "" when err is not (and
// does not wrap) an [*Error].
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func reject(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return reject(CodeInvalidRequest, format, args...)
}
