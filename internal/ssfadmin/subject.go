package ssfadmin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/setgate/setgate/verify"
)

// SubjectMember is a member of an RFC 9493 subject identifier that
// "setgate subject" takes as a flag of its own.
type SubjectMember struct {
	// Flag is the flag's name: Member with "-" for "_".
	Flag string
	// Member is the member's name in the subject identifier.
	Member string
	// Help is the flag's usage line.
	Help string
}

// SubjectMembers are the members with a flag of their own (RFC 9493 §3.2;
// SSF 1.0 §3).
func SubjectMembers() []SubjectMember {
	return []SubjectMember{
		{"email", "email", "email format: the address"},
		{"phone-number", "phone_number", "phone_number format: the E.164 number"},
		{"iss", "iss", "iss_sub and jwt_id formats: the issuer"},
		{"sub", "sub", "iss_sub format: the subject"},
		{"id", "id", "opaque format: the identifier"},
		{"uri", "uri", "account (acct: URI) and uri formats: the URI"},
		{"url", "url", "did format: the DID URL"},
		{"jti", "jti", "jwt_id format: the JWT ID"},
		{"assertion-id", "assertion_id", "saml_assertion_id format: the assertion ID (its issuer: --member issuer=…)"},
	}
}

// SubjectInput is a subject identifier as given on the command line:
// either Raw, the whole JSON object, or Format with its members.
type SubjectInput struct {
	// Format is the subject identifier format.
	Format string
	// Raw is the whole subject identifier as a JSON object.
	Raw string
	// Values are the members of [SubjectMembers] by member name; empty
	// values are left out.
	Values map[string]string
	// Members are any other members as name=value.
	Members []string
	// IPs are the addresses of the ip-addresses format.
	IPs []string
}

// BuildSubject makes the subject identifier object of in and checks it as
// a strict issuer checks a sub_id.
func BuildSubject(in SubjectInput) (json.RawMessage, error) {
	given := len(in.Members) > 0 || len(in.IPs) > 0
	for _, v := range in.Values {
		given = given || v != ""
	}
	var subject json.RawMessage
	switch {
	case in.Raw != "" && (in.Format != "" || given):
		return nil, errors.New("--subject gives the whole subject: leave out --format and the member flags")
	case in.Raw != "":
		subject = json.RawMessage(in.Raw)
	case in.Format == "":
		return nil, errors.New("name the subject: --format FORMAT with its members (e.g. --format email --email alice@example.com), or --subject JSON")
	default:
		obj := map[string]any{"format": in.Format}
		for _, m := range SubjectMembers() {
			if v := in.Values[m.Member]; v != "" {
				obj[m.Member] = v
			}
		}
		for _, kv := range in.Members {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || k == "format" {
				return nil, fmt.Errorf("--member %q: want name=value (not format)", kv)
			}
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("--member %q: %s is given twice", kv, k)
			}
			obj[k] = v
		}
		if len(in.IPs) > 0 {
			obj["ip-addresses"] = in.IPs
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		subject = b
	}
	if err := verify.CheckSubject(subject); err != nil {
		return nil, fmt.Errorf("the subject is not a valid subject identifier: %w", err)
	}
	return subject, nil
}
