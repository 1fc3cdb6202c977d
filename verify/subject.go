package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// subjectFormats lists the members each registered subject identifier
// format requires (RFC 9493 §3 and SSF §3). A registered format must carry
// exactly these members besides "format".
var subjectFormats = map[string][]string{
	"account":           {"uri"},
	"email":             {"email"},
	"iss_sub":           {"iss", "sub"},
	"opaque":            {"id"},
	"phone_number":      {"phone_number"},
	"did":               {"url"},
	"uri":               {"uri"},
	"aliases":           {"identifiers"},
	"jwt_id":            {"iss", "jti"},
	"saml_assertion_id": {"issuer", "assertion_id"},
	"ip-addresses":      {"ip-addresses"},
}

// subjectSyntax is the value syntax of the formats whose one member has
// one (RFC 9493 §3.2): the member, a check, and what the check wants.
var subjectSyntax = map[string]struct {
	member string
	ok     func(string) bool
	want   string
}{
	"account":      {"uri", isAcctURI, "an acct: URI"},
	"email":        {"email", isAddrSpec, "an addr-spec email address"},
	"phone_number": {"phone_number", isE164, "an E.164 telephone number"},
	"did":          {"url", isDIDURL, "a did: URL"},
	"uri":          {"uri", isAbsoluteURI, "an absolute URI"},
}

// legacyFormats maps format names that are not registered but plainly
// mean a registered one: RISC's "phone" and the legacy Google RISC
// transmitter's "iss-sub". Other misspellings are found by normalizing.
var legacyFormats = map[string]string{"phone": "phone_number"}

// registeredFormat returns the registered format a format name means: the
// name itself, or the registered format it misspells (different case, "-"
// for "_"). ok is false for proprietary formats.
func registeredFormat(format string) (canon string, exact, ok bool) {
	if format == "complex" {
		return format, true, true
	}
	if _, ok := subjectFormats[format]; ok {
		return format, true, true
	}
	key := normalize(format)
	if canon, ok := legacyFormats[key]; ok {
		return canon, false, true
	}
	for name := range subjectFormats {
		if normalize(name) == key {
			return name, false, true
		}
	}
	if key == "complex" {
		return "complex", false, true
	}
	return "", false, false
}

// subjectChecker validates subject identifier objects. A structural fault
// (a member missing, extra or of the wrong type) ends the check; value
// faults (an email that is not an addr-spec, a phone number that is not
// E.164, a misspelled format name) are collected in soft, which lenient
// validation turns into warnings. Faults are short clauses without a final
// period and never quote the subject's values.
type subjectChecker struct {
	// legacy accepts the legacy RISC form that names the format in
	// "subject_type" (payload subjects only; RISC 1.0 "Compatibility").
	legacy bool
	soft   []fault
}

// check returns the first structural fault of the subject at where, or
// "". allowComplex and allowAliases say whether the subject may be complex
// or aliases: a top-level subject may be either, a complex member may be
// aliases, an aliases identifier may be neither.
func (c *subjectChecker) check(raw json.RawMessage, where string, allowComplex, allowAliases bool) string {
	var buf [4]member
	m, ok := scanObject(raw, buf[:0])
	if !isObject(raw) || !ok {
		return where + " is not a JSON object"
	}
	format, ok := stringClaim(m, "format")
	if !m.has("format") && c.legacy {
		if _, ok := stringClaim(m, "subject_type"); ok {
			return "" // legacy RISC subject: its members are not defined anywhere
		}
	}
	if !ok || format == "" {
		return where + " has no format"
	}
	canon, exact, registered := registeredFormat(format)
	if !registered {
		return "" // proprietary formats are allowed by agreement
	}
	if !exact {
		got := truncate(format, 32)
		c.soft = append(c.soft, fault{
			fmt.Sprintf("%s format %q is not registered (did you mean %q?)", where, got, canon),
			fmt.Sprintf("%s format %q is not registered; read as %q", where, got, canon),
		})
	}
	switch {
	case canon == "complex" && !allowComplex:
		return where + " nests a complex subject"
	case canon == "aliases" && !allowAliases:
		return where + " nests an aliases subject"
	case canon == "complex":
		return c.complex(raw, where)
	}
	required := subjectFormats[canon]
	// The first undefined member in name order, as sorted map keys.
	var undefined []byte
	for _, mb := range m {
		if name := string(mb.name); name != "format" && !slices.Contains(required, name) &&
			(undefined == nil || bytes.Compare(mb.name, undefined) < 0) {
			undefined = mb.name
		}
	}
	if undefined != nil {
		return fmt.Sprintf("%s (format %s) has member %q that the format does not define", where, canon, truncate(string(undefined), 64))
	}
	for _, name := range required {
		val, ok := m.get(name)
		if !ok || string(val) == "null" {
			return fmt.Sprintf("%s (format %s) is missing %q", where, canon, name)
		}
		switch name {
		case "identifiers":
			var ids []json.RawMessage
			if json.Unmarshal(val, &ids) != nil || len(ids) == 0 {
				return where + ".identifiers must be a non-empty array"
			}
			for i, id := range ids {
				if f := c.check(id, fmt.Sprintf("%s.identifiers[%d]", where, i), false, false); f != "" {
					return f
				}
			}
		case "ip-addresses":
			var ips []string
			if json.Unmarshal(val, &ips) != nil || len(ips) == 0 {
				return where + ".ip-addresses must be a non-empty array of strings"
			}
			for _, ip := range ips {
				if _, err := netip.ParseAddr(ip); err != nil {
					c.soft = append(c.soft, sameFault(where+".ip-addresses has an entry that is not an IP address"))
					break
				}
			}
		default:
			s, ok := stringClaim(m, name)
			if !ok || s == "" {
				return fmt.Sprintf("%s.%s must be a non-empty string", where, name)
			}
			if syn, ok := subjectSyntax[canon]; ok && syn.member == name && !syn.ok(s) {
				c.soft = append(c.soft, sameFault(fmt.Sprintf("%s.%s is not %s", where, name, syn.want)))
			}
		}
	}
	return ""
}

// complex checks the named members of a complex subject (SSF §3.3), in
// the order the issuer wrote them. Each must be a simple subject.
func (c *subjectChecker) complex(raw json.RawMessage, where string) string {
	it, ok := iterObject(raw)
	if !ok {
		return where + " is not a JSON object"
	}
	n := 0
	for it.next() {
		if string(it.name) == "format" {
			continue
		}
		n++
		if f := c.check(it.value, where+"."+pathElem(string(it.name)), false, true); f != "" {
			return f
		}
	}
	if !it.ok() {
		return where + " is not a JSON object"
	}
	if n == 0 {
		return where + " is complex but names no subject"
	}
	return ""
}

// checkSubID validates the sub_id claim. Structural faults are rejected
// in both modes; value faults only under strict payload validation.
func (v *Verifier) checkSubID(raw json.RawMessage, set *SET) *Error {
	c := subjectChecker{}
	if f := c.check(raw, "sub_id", true, true); f != "" {
		return badRequest("%s.", f)
	}
	if len(c.soft) > 0 {
		if !v.cfg.Lenient {
			return badRequest("%s.", c.soft[0].desc)
		}
		for _, f := range c.soft {
			set.Warnings = append(set.Warnings, f.warn)
		}
	}
	return nil
}

// principalFormats returns the registered formats a subject identifies
// its principal by: its own format; for a complex subject, its user's;
// for aliases, every identifier's. legacy also reads "subject_type".
func principalFormats(raw json.RawMessage, legacy bool) []string {
	var buf [4]member
	m, ok := scanObject(raw, buf[:0])
	if !isObject(raw) || !ok {
		return nil
	}
	format, ok := stringClaim(m, "format")
	if !ok && legacy {
		format, _ = stringClaim(m, "subject_type")
	}
	canon, _, registered := registeredFormat(format)
	if !registered {
		return nil
	}
	switch canon {
	case "complex":
		user, _ := m.get("user")
		return principalFormats(user, false)
	case "aliases":
		var ids []json.RawMessage
		idents, _ := m.get("identifiers")
		_ = json.Unmarshal(idents, &ids)
		var out []string
		for _, id := range ids {
			out = append(out, principalFormats(id, false)...)
		}
		return out
	}
	return []string{canon}
}

// isAddrSpec reports whether s is a bare RFC 5322 addr-spec: no display
// name, angle brackets, comments or surrounding space.
func isAddrSpec(s string) bool {
	if isDotAtomAddr(s) {
		return true
	}
	if s != strings.TrimSpace(s) || strings.ContainsAny(s, "<>()\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == ""
}

// isDotAtomAddr reports whether s is the common form of an addr-spec,
// ASCII dot-atom "@" dot-atom (RFC 5322 §3.4.1, §3.2.3), which
// net/mail accepts as an address without display name; it saves the
// parser's allocations for most addresses.
func isDotAtomAddr(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && isDotAtom(local) && isDotAtom(domain)
}

// isDotAtom reports whether s is an ASCII RFC 5322 dot-atom-text: atext
// runs separated by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isE164 reports whether s is "+" and 7 to 15 digits, the first not 0 (no
// country code starts with 0).
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isAcctURI reports whether s is an RFC 7565 acct URI: "acct:" userpart
// "@" host, where userpart is non-empty and holds no unescaped "@".
func isAcctURI(s string) bool {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "acct") || hasSpaceOrCtl(rest) || strings.ContainsAny(rest, "/?#") {
		return false
	}
	user, host, ok := strings.Cut(rest, "@")
	return ok && user != "" && host != "" && !strings.Contains(host, "@")
}

// isDIDURL reports whether s is a DID or DID URL: "did:" method ":"
// method-specific-id, the method lower-case letters and digits (W3C DID
// Core §3.1).
func isDIDURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "did:")
	if !ok || hasSpaceOrCtl(rest) {
		return false
	}
	method, id, ok := strings.Cut(rest, ":")
	if !ok || method == "" || id == "" {
		return false
	}
	for _, r := range method {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	c := id[0]
	return c == '%' || c == '.' || c == '-' || c == '_' || c == ':' ||
		c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isAbsoluteURI reports whether s is an RFC 3986 absolute URI without
// spaces or control characters.
func isAbsoluteURI(s string) bool {
	return !hasSpaceOrCtl(s) && isURI(s)
}

// pathElem renders a member name for a path in a fault: as is when it is
// printable ASCII without quotes, dots or brackets, else quoted.
func pathElem(name string) string {
	name = truncate(name, 64)
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"\.[]`, r)
	}) {
		return strconv.Quote(name)
	}
	return name
}

func hasSpaceOrCtl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// CheckSubject checks a subject identifier object (RFC 9493; SSF 1.0 §3)
// as a strict issuer checks a SET's sub_id: a structural fault or a value
// fault (an email that is not an addr-spec, …) is an error.
func CheckSubject(raw json.RawMessage) error {
	if !json.Valid(raw) {
		// The checker reads values it was handed valid.
		return errors.New("subject is not a JSON object")
	}
	var c subjectChecker
	if f := c.check(raw, "subject", true, true); f != "" {
		return errors.New(f)
	}
	if len(c.soft) > 0 {
		return errors.New(c.soft[0].desc)
	}
	return nil
}
