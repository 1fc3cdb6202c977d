package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Event type URI bases of the specifications setgate knows.
const (
	caepBase = "https://schemas.openid.net/secevent/caep/event-type/"
	riscBase = "https://schemas.openid.net/secevent/risc/event-type/"
	ssfBase  = "https://schemas.openid.net/secevent/ssf/event-type/"
)

// knownTypes maps every event type of CAEP 1.0, RISC 1.0 and SSF 1.0 to its
// "family.event" subject tokens. It is never modified.
var knownTypes = map[string]string{
	caepBase + "session-revoked":          "caep.session-revoked",
	caepBase + "token-claims-change":      "caep.token-claims-change",
	caepBase + "credential-change":        "caep.credential-change",
	caepBase + "assurance-level-change":   "caep.assurance-level-change",
	caepBase + "device-compliance-change": "caep.device-compliance-change",
	caepBase + "session-established":      "caep.session-established",
	caepBase + "session-presented":        "caep.session-presented",
	caepBase + "risk-level-change":        "caep.risk-level-change",

	riscBase + "account-credential-change-required": "risc.account-credential-change-required",
	riscBase + "account-purged":                     "risc.account-purged",
	riscBase + "account-disabled":                   "risc.account-disabled",
	riscBase + "account-enabled":                    "risc.account-enabled",
	riscBase + "identifier-changed":                 "risc.identifier-changed",
	riscBase + "identifier-recycled":                "risc.identifier-recycled",
	riscBase + "credential-compromise":              "risc.credential-compromise",
	riscBase + "opt-in":                             "risc.opt-in",
	riscBase + "opt-out-initiated":                  "risc.opt-out-initiated",
	riscBase + "opt-out-cancelled":                  "risc.opt-out-cancelled",
	riscBase + "opt-out-effective":                  "risc.opt-out-effective",
	riscBase + "recovery-activated":                 "risc.recovery-activated",
	riscBase + "recovery-information-changed":       "risc.recovery-information-changed",
	riscBase + "sessions-revoked":                   "risc.sessions-revoked",

	ssfBase + "verification":   "ssf.verification",
	ssfBase + "stream-updated": "ssf.stream-updated",
}

// maxSlugLen bounds the readable part of an unknown event type's token.
const maxSlugLen = 40

// Subjects maps event types to subjects of the form
// <prefix>.<family>.<event>.<issuer>, always four tokens.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subject mapping for prefix, which must be a single
// subject token of [A-Za-z0-9_-]+.
func NewSubjects(prefix string) (*Subjects, error) {
	if !isToken(prefix) {
		return nil, fmt.Errorf("bridge: subject prefix %q must be one token of [A-Za-z0-9_-]+", prefix)
	}
	return &Subjects{prefix: prefix}, nil
}

// Prefix returns the first token of every subject.
func (s *Subjects) Prefix() string { return s.prefix }

// For returns the subject for an event of type eventType from the issuer
// named issuerName. overrides (the issuer's configured subject overrides,
// may be nil) maps an event type URI to "family.event" and wins over the
// built-in mapping; an override that does not pass [ValidateOverride] is
// ignored. Known CAEP, RISC and SSF types map to their short names; any other
// type maps to "ext.<slug>-<first 8 hex digits of sha256(eventType)>". An
// issuer name that is not a valid token (config validation keeps them to
// [a-z0-9-]+) is mapped to a safe one the same way, so the result is always
// four valid tokens and depends only on the arguments.
func (s *Subjects) For(issuerName, eventType string, overrides map[string]string) string {
	return s.prefix + "." + eventTokens(eventType, overrides) + "." + issuerToken(issuerName)
}

// eventTokens returns the two "family.event" tokens that [Subjects.For]
// uses for eventType.
func eventTokens(eventType string, overrides map[string]string) string {
	if o, ok := overrides[eventType]; ok && ValidateOverride(o) == nil {
		return o
	}
	if t, ok := knownTypes[eventType]; ok {
		return t
	}
	return "ext." + hashedSlug(eventType)
}

// ValidateOverride reports whether v is a valid subject override: exactly
// two tokens "family.event", each of [a-z0-9_-]+, e.g. "caep.session-revoked".
func ValidateOverride(v string) error {
	family, event, ok := strings.Cut(v, ".")
	if !ok || !isLowerToken(family) || !isLowerToken(event) {
		return fmt.Errorf("bridge: subject override %q must be two tokens \"family.event\" of [a-z0-9_-]+", v)
	}
	return nil
}

// issuerToken returns name if it is a valid token, and otherwise a
// deterministic token derived from it.
func issuerToken(name string) string {
	if isToken(name) {
		return name
	}
	return hashedSlug(name)
}

// hashedSlug returns "<slug>-<8 hex>" for s: the slug is the last non-empty
// segment of s after '/', ':' or '#', lowercased, with every character
// outside [a-z0-9-] replaced by '-', trimmed of '-', at most maxSlugLen long,
// or "event" when nothing is left; the hex digits start sha256(s).
func hashedSlug(s string) string {
	segs := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ':' || r == '#' })
	last := ""
	if len(segs) > 0 {
		last = segs[len(segs)-1]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(last) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	slug := strings.Trim(b.String(), "-")
	if len(slug) > maxSlugLen {
		slug = strings.TrimRight(slug[:maxSlugLen], "-")
	}
	if slug == "" {
		slug = "event"
	}
	sum := sha256.Sum256([]byte(s))
	return slug + "-" + hex.EncodeToString(sum[:4])
}

// isToken reports whether s is a non-empty run of [A-Za-z0-9_-].
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isLowerToken reports whether s is a non-empty run of [a-z0-9_-].
func isLowerToken(s string) bool {
	return isToken(s) && strings.ToLower(s) == s
}
