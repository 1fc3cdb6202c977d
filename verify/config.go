package verify

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is one issuer's verification settings (the issuers file entry,
// without the delivery parts).
type Config struct {
	// Name is setgate's short name for the issuer; used in logs only here.
	Name string
	// Issuer is the exact iss value SETs must carry.
	Issuer string
	// Audience lists the accepted aud values; a SET must name one of them.
	Audience []string
	// JWKSURI is where the issuer publishes its keys.
	JWKSURI string
	// Algorithms is the allow-list of JWS algorithms.
	Algorithms []string
	// Profile is ProfileSSF (default when empty) or ProfileRFC8417.
	Profile Profile
	// MaxClockSkew bounds how far in the future iat and nbf may be (and how far
	// past exp a SET is still accepted under rfc8417). Zero means 5m.
	MaxClockSkew time.Duration
	// MaxAge, when positive, refuses a SET whose iat is older than this
	// (invalid_request), so that replays older than the duplicate window
	// are shut out. Zero (the default) accepts any age: poll backlogs and
	// push retries can legitimately deliver old SETs.
	MaxAge time.Duration
	// Lenient accepts CAEP/RISC payload faults (a required field missing
	// or mistyped, a misspelled value such as change_type "revoked") and
	// subject identifier value faults (an email that is not an addr-spec,
	// a misspelled format name) with a warning in [SET.Warnings] instead of
	// rejecting them. Signature, issuer, audience and typing checks, the
	// structure of the SET and of sub_id, SSF verification and
	// stream-updated payloads and verification states are never relaxed.
	Lenient bool
}

// DefaultClockSkew is used when Config.MaxClockSkew is zero.
const DefaultClockSkew = 5 * time.Minute

// SupportedAlgorithms lists every algorithm an issuer may allow, in a
// stable order. HMAC and none are absent on purpose (RFC 8725 §3.1-3.2).
func SupportedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// FieldError is a configuration error that names the offending field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks c and returns the first problem as a *FieldError whose
// Field is the issuers-file key (issuer, audience, jwks_uri, algorithms,
// profile, max_clock_skew, max_age).
func (c *Config) Validate() error {
	if c.Issuer == "" {
		return &FieldError{"issuer", "is required"}
	}
	if c.Profile != ProfileRFC8417 { // SSF issuers are https URLs (SSF §7.1)
		if err := CheckEndpointURL(c.Issuer); err != nil {
			return &FieldError{"issuer", err.Error()}
		}
	}
	if len(c.Audience) == 0 {
		return &FieldError{"audience", "needs at least one value"}
	}
	for _, a := range c.Audience {
		if a == "" {
			return &FieldError{"audience", "has an empty value"}
		}
	}
	if c.JWKSURI == "" {
		return &FieldError{"jwks_uri", "is required (or set discovery: true)"}
	}
	if err := CheckEndpointURL(c.JWKSURI); err != nil {
		return &FieldError{"jwks_uri", err.Error()}
	}
	if len(c.Algorithms) == 0 {
		return &FieldError{"algorithms", "needs at least one algorithm"}
	}
	for _, a := range c.Algorithms {
		if _, ok := methods[a]; !ok {
			switch {
			case a == "none" || a == "NONE" || a == "None":
				return &FieldError{"algorithms", "\"none\" is never allowed: SETs must be signed (RFC 8725 §3.2)"}
			case len(a) >= 2 && (a[:2] == "HS" || a[:2] == "hs"):
				return &FieldError{"algorithms", fmt.Sprintf("%q is not allowed: HMAC with a published key is forgeable (RFC 8725 §3.1)", a)}
			default:
				return &FieldError{"algorithms", fmt.Sprintf("%q is not supported (supported: %v)", a, SupportedAlgorithms())}
			}
		}
	}
	switch c.Profile {
	case "", ProfileSSF, ProfileRFC8417:
	default:
		return &FieldError{"profile", fmt.Sprintf("%q is not a profile (ssf or rfc8417)", c.Profile)}
	}
	if c.MaxClockSkew < 0 {
		return &FieldError{"max_clock_skew", "must not be negative"}
	}
	if c.MaxAge < 0 {
		return &FieldError{"max_age", "must not be negative"}
	}
	return nil
}

// CheckEndpointURL accepts absolute https URLs, and http URLs only when the
// host is a loopback address (tests and the demo).
func CheckEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (plain http is allowed only for loopback hosts)")
	default:
		return fmt.Errorf("has unsupported scheme %q (want https)", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
