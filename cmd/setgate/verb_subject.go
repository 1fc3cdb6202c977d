package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/setgate/setgate/verify"
)

// subjectMembers are the member flags of "setgate subject": each sets the
// subject identifier member of the same name (RFC 9493 §3.2; SSF 1.0 §3),
// "-" read as "_" where the member has one.
var subjectMembers = []struct{ flag, member, help string }{
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

// memberFlags collects repeated --member name=value flags.
type memberFlags []string

func (m *memberFlags) String() string     { return strings.Join(*m, ",") }
func (m *memberFlags) Set(v string) error { *m = append(*m, v); return nil }

// subjectVerb runs "setgate subject add|remove": it adds a subject to, or
// removes one from, an issuer's SSF stream (SSF 1.0 §8.1.3), with the
// stream block's credential, as the receiver's side of subject management.
func subjectVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("subject", "add|remove --issuer NAME --format FORMAT --<member> VALUE… [flags]", stdout,
		"Add a subject to, or remove one from, an issuer's SSF stream at its transmitter (SSF 1.0 §8.1.3),\n"+
			"with the issuers file's stream block credential. The subject is an RFC 9493 subject identifier:\n"+
			"--format names it and the member flags give its members, e.g.\n"+
			"  setgate subject add --issuer okta --format email --email alice@example.com\n"+
			"  setgate subject add --issuer okta --format iss_sub --iss https://idp.example/ --sub 42\n"+
			"or give the whole object with --subject JSON (aliases, complex, proprietary formats).\n"+
			"The stream is --stream-id, else stream.stream_id, else the only (or own) stream listed.",
		"ISSUERS_FILE", "PUBLIC_URL", "LOG_LEVEL", "LOG_FORMAT")
	issuersPath := fs.String("issuers", "", "issuers file (default $SETGATE_ISSUERS_FILE)")
	name := fs.String("issuer", "", "name of the issuer in the file (may be left out when one issuer has a stream block)")
	streamID := fs.String("stream-id", "", "the stream (default stream.stream_id, else the only or own stream)")
	format := fs.String("format", "", "subject identifier format: email, phone_number, iss_sub, opaque, account, uri, did, jwt_id, saml_assertion_id, ip-addresses, …")
	raw := fs.String("subject", "", "the whole subject identifier as a JSON object (instead of --format and members)")
	verified := fs.Bool("verified", false, "add: send verified: true (the receiver has verified the subject; SSF 1.0 §8.1.3.2)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	timeout := fs.Duration("timeout", time.Minute, "bound on the whole command")
	values := make(map[string]*string, len(subjectMembers))
	for _, m := range subjectMembers {
		values[m.member] = fs.String(m.flag, "", m.help)
	}
	var members memberFlags
	fs.Var(&members, "member", "any other member as name=value (repeatable)")
	var ips memberFlags
	fs.Var(&ips, "ip", "ip-addresses format: an IP address (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "add" && pos[0] != "remove") {
		fs.Usage()
		return fmt.Errorf("subject: want one action, add or remove; got %q", pos)
	}
	action := pos[0]
	fail := func(err error) error { return fmt.Errorf("subject %s: %w", action, err) }
	setVerified := false
	fs.Visit(func(f *flag.Flag) { setVerified = setVerified || f.Name == "verified" })
	if setVerified && action != "add" {
		return fail(errors.New("--verified is only for add"))
	}
	subject, err := buildSubject(*format, *raw, values, members, ips)
	if err != nil {
		return fail(err)
	}

	sc, _, err := openStreamCommand(ctx, vars, *issuersPath, *name, *timeout, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	defer sc.cancel()
	ctx = sc.ctx
	fail = func(err error) error { return fmt.Errorf("subject %s: issuer %q: %w", action, sc.spec.Name, err) }
	if *streamID != "" {
		sc.cfg.StreamID = *streamID
	}
	id, err := sc.streamID(ctx)
	if err != nil {
		return fail(err)
	}
	if action == "add" {
		var v *bool
		if setVerified {
			v = verified
		}
		err = sc.client.AddSubject(ctx, id, subject, v)
	} else {
		err = sc.client.RemoveSubject(ctx, id, subject)
	}
	if err != nil {
		return fail(err)
	}
	done := map[string]string{"add": "added to", "remove": "removed from"}[action]
	if *asJSON {
		sc.json = true
		return sc.printJSON(struct {
			Issuer   string          `json:"issuer"`
			StreamID string          `json:"stream_id"`
			Action   string          `json:"action"`
			Subject  json.RawMessage `json:"subject"`
		}{sc.spec.Name, id, action, subject})
	}
	fmt.Fprintf(stdout, "issuer %s: subject %s %s stream %s\n", sc.spec.Name, subject, done, id)
	return nil
}

// buildSubject makes the subject identifier object from --subject, or
// from --format and the member flags, and checks it as a strict issuer
// checks a sub_id.
func buildSubject(format, raw string, values map[string]*string, members, ips memberFlags) (json.RawMessage, error) {
	given := slices.ContainsFunc(subjectMembers, func(m struct{ flag, member, help string }) bool { return *values[m.member] != "" }) ||
		len(members) > 0 || len(ips) > 0
	var subject json.RawMessage
	switch {
	case raw != "" && (format != "" || given):
		return nil, errors.New("--subject gives the whole subject: leave out --format and the member flags")
	case raw != "":
		subject = json.RawMessage(raw)
	case format == "":
		return nil, errors.New("name the subject: --format FORMAT with its members (e.g. --format email --email alice@example.com), or --subject JSON")
	default:
		obj := map[string]any{"format": format}
		for _, m := range subjectMembers {
			if v := *values[m.member]; v != "" {
				obj[m.member] = v
			}
		}
		for _, kv := range members {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || k == "format" {
				return nil, fmt.Errorf("--member %q: want name=value (not format)", kv)
			}
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("--member %q: %s is given twice", kv, k)
			}
			obj[k] = v
		}
		if len(ips) > 0 {
			obj["ip-addresses"] = []string(ips)
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
