package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Credential is a transmitter's expected bearer token, kept only as its
// SHA-256 so that comparisons take constant time whatever the lengths.
type Credential struct {
	sum [sha256.Size]byte
	set bool
}

// NewCredential returns the credential for a bare bearer token (the
// content of push.bearer_token_file, without "Bearer ").
func NewCredential(token string) Credential {
	return Credential{sum: sha256.Sum256([]byte(token)), set: token != ""}
}

// matches reports, in constant time, whether presented is this token.
func (c Credential) matches(presented [sha256.Size]byte) bool {
	return c.set && subtle.ConstantTimeCompare(c.sum[:], presented[:]) == 1
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive, RFC 7235 §2.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
