package verify

import (
	"encoding/json"
	"net/netip"
	"slices"
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

// checkSubject validates a subject identifier object. Unknown formats are
// accepted (proprietary formats are allowed by agreement); registered ones
// must have exactly their members, non-empty.
func checkSubject(raw json.RawMessage, where string) *Error {
	return checkSubjectDepth(raw, where, true)
}

func checkSubjectDepth(raw json.RawMessage, where string, allowComplex bool) *Error {
	var m map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &m) != nil {
		return badRequest("%s is not a JSON object.", where)
	}
	format, ok := stringClaim(m, "format")
	if !ok || format == "" {
		return badRequest("%s has no format.", where)
	}
	if format == "complex" {
		if !allowComplex {
			return badRequest("%s nests a complex subject.", where)
		}
		if len(m) < 2 {
			return badRequest("%s is complex but names no subject.", where)
		}
		for name, member := range m {
			if name == "format" {
				continue
			}
			if e := checkSubjectDepth(member, where+"."+name, false); e != nil {
				return e
			}
		}
		return nil
	}
	required, known := subjectFormats[format]
	if !known {
		return nil
	}
	for name := range m {
		if name != "format" && !slices.Contains(required, name) {
			return badRequest("%s (format %s) has member %q that the format does not define.", where, format, truncate(name, 64))
		}
	}
	for _, name := range required {
		val, ok := m[name]
		if !ok {
			return badRequest("%s (format %s) is missing %q.", where, format, name)
		}
		switch name {
		case "identifiers":
			var ids []json.RawMessage
			if json.Unmarshal(val, &ids) != nil || len(ids) == 0 {
				return badRequest("%s.identifiers must be a non-empty array.", where)
			}
			for _, id := range ids {
				var inner map[string]json.RawMessage
				if json.Unmarshal(id, &inner) == nil {
					if f, _ := stringClaim(inner, "format"); f == "aliases" || f == "complex" {
						return badRequest("%s.identifiers must not nest aliases or complex subjects.", where)
					}
				}
				if e := checkSubjectDepth(id, where+".identifiers[]", false); e != nil {
					return e
				}
			}
		case "ip-addresses":
			var ips []string
			if json.Unmarshal(val, &ips) != nil || len(ips) == 0 {
				return badRequest("%s.ip-addresses must be a non-empty array of strings.", where)
			}
			for _, ip := range ips {
				if _, err := netip.ParseAddr(ip); err != nil {
					return badRequest("%s.ip-addresses has %q, which is not an IP address.", where, truncate(ip, 64))
				}
			}
		default:
			if s, ok := stringClaim(m, name); !ok || s == "" {
				return badRequest("%s.%s must be a non-empty string.", where, name)
			}
		}
	}
	return nil
}
