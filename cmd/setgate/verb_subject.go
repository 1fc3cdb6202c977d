package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/setgate/setgate/internal/ssfadmin"
)

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
	values := make(map[string]*string)
	for _, m := range ssfadmin.SubjectMembers() {
		values[m.Member] = fs.String(m.Flag, "", m.Help)
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
	in := ssfadmin.SubjectInput{Format: *format, Raw: *raw, Values: map[string]string{}, Members: members, IPs: ips}
	for k, v := range values {
		in.Values[k] = *v
	}
	subject, err := ssfadmin.BuildSubject(in)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := withTimeout(ctx, *timeout)
	defer cancel()
	admin, _, err := openStreamAdmin(ctx, vars, *issuersPath, *name, *streamID, *asJSON, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	if action == "add" {
		var v *bool
		if setVerified {
			v = verified
		}
		err = admin.AddSubject(ctx, subject, v)
	} else {
		err = admin.RemoveSubject(ctx, subject)
	}
	if err != nil {
		return fmt.Errorf("subject %s: issuer %q: %w", action, admin.Issuer().Name, err)
	}
	return nil
}
