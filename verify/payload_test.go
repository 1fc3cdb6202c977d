package verify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/setgate/setgate/verify"
)

// Every CAEP 1.0, RISC 1.0 and SSF event type.
const (
	evSessionPres = caepBase + "session-presented"

	evAcctCredChg  = riscBase + "account-credential-change-required"
	evAcctPurged   = riscBase + "account-purged"
	evAcctEnabled  = riscBase + "account-enabled"
	evIDChanged    = riscBase + "identifier-changed"
	evIDRecycled   = riscBase + "identifier-recycled"
	evCredCompro   = riscBase + "credential-compromise"
	evOptIn        = riscBase + "opt-in"
	evOptOutInit   = riscBase + "opt-out-initiated"
	evOptOutCancel = riscBase + "opt-out-cancelled"
	evOptOutEff    = riscBase + "opt-out-effective"
	evRecoveryAct  = riscBase + "recovery-activated"
	evRecoveryInfo = riscBase + "recovery-information-changed"
	evSessionsRev  = riscBase + "sessions-revoked"
)

// outcome is what strict and lenient validation make of one row.
type outcome struct {
	// hard: rejected with invalid_request in both modes.
	hard bool
	// warns: rejected with invalid_request under strict; accepted under
	// lenient with exactly these warnings. Neither: accepted by both
	// without warnings.
	warns []string
}

var accepted = outcome{}

var rejected = outcome{hard: true}

func warns(w ...string) outcome { return outcome{warns: w} }

// modeVerifiers returns a strict and a lenient verifier for the test issuer.
func modeVerifiers(t *testing.T) (strict, loose *verify.Verifier) {
	t.Helper()
	srv := newJWKSServer(t, defaultJWKS(t)...)
	return newVerifier(t, srv.URL, nil), newVerifier(t, srv.URL, func(c *verify.Config, _ *verify.Options) { c.Lenient = true })
}

// checkOutcome verifies tok under both modes and checks want. descPrefix,
// when set, is how a strict rejection's description must start.
func checkOutcome(t *testing.T, strict, loose *verify.Verifier, tok string, want outcome, descPrefix string, pii []string) {
	t.Helper()
	const IR = verify.CodeInvalidRequest
	switch {
	case want.hard:
		wantCode(t, strict, tok, IR)
		wantCode(t, loose, tok, IR)
		return
	case len(want.warns) == 0:
		for _, v := range []*verify.Verifier{strict, loose} {
			if s, _ := wantCode(t, v, tok, ""); len(s.Warnings) != 0 {
				t.Errorf("want no warnings, got %q", s.Warnings)
			}
		}
		return
	}
	_, e := wantCode(t, strict, tok, IR)
	if !strings.HasPrefix(e.Description, descPrefix) {
		t.Errorf("want a description starting %q, got %q", descPrefix, e.Description)
	}
	s, _ := wantCode(t, loose, tok, "")
	if !slices.Equal(s.Warnings, want.warns) {
		t.Errorf("want warnings\n\t%q\ngot\n\t%q", want.warns, s.Warnings)
	}
	for _, w := range s.Warnings {
		if len(w) > 120 || strings.ContainsAny(w, "\r\n") || strings.HasSuffix(w, ".") {
			t.Errorf("warning %q is not one short phrase", w)
		}
		for _, p := range pii {
			if strings.Contains(w, p) {
				t.Errorf("warning %q quotes the subject value %q", w, p)
			}
		}
	}
}

// subjectValues returns the string values of a subject identifier, which
// warnings must not quote.
func subjectValues(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		if len(x) >= 4 { // shorter values occur in any sentence
			out = append(out, x)
		}
	case map[string]any:
		for k, e := range x {
			if k != "format" {
				out = append(out, subjectValues(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, subjectValues(e)...)
		}
	case []string:
		for _, e := range x {
			out = append(out, subjectValues(e)...)
		}
	}
	return out
}

// TestSubjectFormats has a valid and an invalid row for every RFC 9493 and
// SSF subject identifier format, checked as sub_id under strict and
// lenient validation.
func TestSubjectFormats(t *testing.T) {
	t.Parallel()
	strict, loose := modeVerifiers(t)
	type obj = map[string]any
	email := obj{"format": "email", "email": "user@example.com"}
	phone := obj{"format": "phone_number", "phone_number": "+12065550100"}

	rows := []struct {
		name string
		sub  any
		want outcome
	}{
		// account
		{"account", obj{"format": "account", "uri": "acct:example.user@service.example.com"}, accepted},
		{"account upper-case scheme", obj{"format": "account", "uri": "ACCT:user@example.com"}, accepted},
		{"account percent-encoded @ in userpart", obj{"format": "account", "uri": "acct:user%40home@example.com"}, accepted},
		{"account mailto URI", obj{"format": "account", "uri": "mailto:user@example.com"}, warns("sub_id.uri is not an acct: URI")},
		{"account without host", obj{"format": "account", "uri": "acct:user"}, warns("sub_id.uri is not an acct: URI")},
		{"account without userpart", obj{"format": "account", "uri": "acct:@example.com"}, warns("sub_id.uri is not an acct: URI")},
		{"account two @", obj{"format": "account", "uri": "acct:a@b@example.com"}, warns("sub_id.uri is not an acct: URI")},
		{"account bare address", obj{"format": "account", "uri": "user@example.com"}, warns("sub_id.uri is not an acct: URI")},
		{"account missing uri", obj{"format": "account"}, rejected},
		{"account uri number", obj{"format": "account", "uri": 7}, rejected},

		// email
		{"email", email, accepted},
		{"email internationalized", obj{"format": "email", "email": "jané@exämple.com"}, accepted},
		{"email quoted local part", obj{"format": "email", "email": `"john doe"@example.com`}, accepted},
		{"email with a display name", obj{"format": "email", "email": "Jane <jane@example.com>"}, warns("sub_id.email is not an addr-spec email address")},
		{"email in angle brackets", obj{"format": "email", "email": "<jane@example.com>"}, warns("sub_id.email is not an addr-spec email address")},
		{"email without @", obj{"format": "email", "email": "jane"}, warns("sub_id.email is not an addr-spec email address")},
		{"email with a trailing space", obj{"format": "email", "email": "jane@example.com "}, warns("sub_id.email is not an addr-spec email address")},
		{"email with two dots", obj{"format": "email", "email": "jane..doe@example.com"}, warns("sub_id.email is not an addr-spec email address")},
		{"email missing", obj{"format": "email"}, rejected},
		{"email empty", obj{"format": "email", "email": ""}, rejected},
		{"email extra member", obj{"format": "email", "email": "user@example.com", "verified": true}, rejected},

		// phone_number
		{"phone_number", phone, accepted},
		{"phone_number 7 digits", obj{"format": "phone_number", "phone_number": "+6841234"}, accepted},
		{"phone_number 15 digits", obj{"format": "phone_number", "phone_number": "+123456789012345"}, accepted},
		{"phone_number with spaces", obj{"format": "phone_number", "phone_number": "+1 206 555 0100"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number with dashes", obj{"format": "phone_number", "phone_number": "+1-206-555-0100"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number without +", obj{"format": "phone_number", "phone_number": "12065550100"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number 6 digits", obj{"format": "phone_number", "phone_number": "+123456"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number 16 digits", obj{"format": "phone_number", "phone_number": "+1234567890123456"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number country code 0", obj{"format": "phone_number", "phone_number": "+0123456789"}, warns("sub_id.phone_number is not an E.164 telephone number")},
		{"phone_number as a number", obj{"format": "phone_number", "phone_number": 12065550100}, rejected},

		// iss_sub
		{"iss_sub", obj{"format": "iss_sub", "iss": "https://other.example/", "sub": "145234573"}, accepted},
		{"iss_sub missing iss", obj{"format": "iss_sub", "sub": "145234573"}, rejected},
		{"iss_sub empty sub", obj{"format": "iss_sub", "iss": testIssuer, "sub": ""}, rejected},

		// opaque
		{"opaque", obj{"format": "opaque", "id": "11112222333344445555"}, accepted},
		{"opaque id number", obj{"format": "opaque", "id": 1111}, rejected},
		{"opaque id null", obj{"format": "opaque", "id": nil}, rejected},

		// did
		{"did", obj{"format": "did", "url": "did:example:123456"}, accepted},
		{"did URL with path and fragment", obj{"format": "did", "url": "did:web:example.com:user:alice/path?x=1#key-1"}, accepted},
		{"did https URL", obj{"format": "did", "url": "https://example.com/alice"}, warns("sub_id.url is not a did: URL")},
		{"did upper-case method", obj{"format": "did", "url": "did:Example:123"}, warns("sub_id.url is not a did: URL")},
		{"did upper-case scheme", obj{"format": "did", "url": "DID:example:123"}, warns("sub_id.url is not a did: URL")},
		{"did without id", obj{"format": "did", "url": "did:example:"}, warns("sub_id.url is not a did: URL")},
		{"did missing url", obj{"format": "did", "uri": "did:example:123"}, rejected},

		// uri
		{"uri", obj{"format": "uri", "uri": "https://user.example.com/"}, accepted},
		{"uri urn", obj{"format": "uri", "uri": "urn:uuid:4e851e98-83c4-4743-a5da-150ecb53042f"}, accepted},
		{"uri relative", obj{"format": "uri", "uri": "user.example.com/alice"}, warns("sub_id.uri is not an absolute URI")},
		{"uri with a space", obj{"format": "uri", "uri": "https://example.com/a b"}, warns("sub_id.uri is not an absolute URI")},
		{"uri empty", obj{"format": "uri", "uri": ""}, rejected},

		// aliases
		{"aliases", obj{"format": "aliases", "identifiers": []any{email, phone, obj{"format": "x-acme", "n": 1}}}, accepted},
		{"aliases of one", obj{"format": "aliases", "identifiers": []any{email}}, accepted},
		{"aliases empty", obj{"format": "aliases", "identifiers": []any{}}, rejected},
		{"aliases not an array", obj{"format": "aliases", "identifiers": email}, rejected},
		{"aliases nesting aliases", obj{"format": "aliases", "identifiers": []any{obj{"format": "aliases", "identifiers": []any{email}}}}, rejected},
		{"aliases nesting complex", obj{"format": "aliases", "identifiers": []any{obj{"format": "complex", "user": email}}}, rejected},
		{"aliases with a bad identifier", obj{"format": "aliases", "identifiers": []any{email, obj{"format": "opaque"}}}, rejected},
		{"aliases with a bad email", obj{"format": "aliases", "identifiers": []any{phone, obj{"format": "email", "email": "jane"}}},
			warns("sub_id.identifiers[1].email is not an addr-spec email address")},

		// jwt_id (SSF)
		{"jwt_id", obj{"format": "jwt_id", "iss": "https://idp.example.com/987654321/", "jti": "B70BA622-9515-4353-A866-823539EECBC8"}, accepted},
		{"jwt_id missing jti", obj{"format": "jwt_id", "iss": "https://idp.example.com/"}, rejected},

		// saml_assertion_id (SSF)
		{"saml_assertion_id", obj{"format": "saml_assertion_id", "issuer": "https://idp.example.com/", "assertion_id": "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6"}, accepted},
		{"saml_assertion_id with iss for issuer", obj{"format": "saml_assertion_id", "iss": "https://idp.example.com/", "assertion_id": "_8e8d"}, rejected},
		{"saml_assertion_id missing assertion_id", obj{"format": "saml_assertion_id", "issuer": "https://idp.example.com/"}, rejected},

		// ip-addresses (SSF)
		{"ip-addresses", obj{"format": "ip-addresses", "ip-addresses": []string{"10.29.37.75", "2001:db8::1"}}, accepted},
		{"ip-addresses bad address", obj{"format": "ip-addresses", "ip-addresses": []string{"10.29.37.75", "10.0.0.300"}},
			warns("sub_id.ip-addresses has an entry that is not an IP address")},
		{"ip-addresses CIDR", obj{"format": "ip-addresses", "ip-addresses": []string{"10.0.0.0/8"}},
			warns("sub_id.ip-addresses has an entry that is not an IP address")},
		{"ip-addresses a string", obj{"format": "ip-addresses", "ip-addresses": "10.29.37.75"}, rejected},
		{"ip-addresses numbers", obj{"format": "ip-addresses", "ip-addresses": []int{1}}, rejected},

		// complex (SSF)
		{"complex", obj{"format": "complex",
			"user":        obj{"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "99beb27c"},
			"device":      obj{"format": "opaque", "id": "d1"},
			"session":     obj{"format": "opaque", "id": "dMTlD|1600802906337.16|16008.16"},
			"application": obj{"format": "x-acme-app", "app": "crm"},
			"tenant":      obj{"format": "opaque", "id": "123456789"},
			"org_unit":    obj{"format": "opaque", "id": "ou-7"},
			"group":       obj{"format": "uri", "uri": "https://idp.example.com/groups/admins"},
		}, accepted},
		{"complex with an aliases member", obj{"format": "complex", "user": obj{"format": "aliases", "identifiers": []any{email, phone}}}, accepted},
		{"complex nesting complex", obj{"format": "complex", "user": obj{"format": "complex", "device": obj{"format": "opaque", "id": "d1"}}}, rejected},
		{"complex without members", obj{"format": "complex"}, rejected},
		{"complex member a string", obj{"format": "complex", "user": "alice"}, rejected},
		{"complex member without format", obj{"format": "complex", "user": obj{"email": "user@example.com"}}, rejected},
		{"complex member with a bad email", obj{"format": "complex", "device": obj{"format": "opaque", "id": "d1"}, "user": obj{"format": "email", "email": "Jane <jane@example.com>"}},
			warns("sub_id.user.email is not an addr-spec email address")},

		// Misspelled format names read as the registered format.
		{"format Email", obj{"format": "Email", "email": "user@example.com"}, warns(`sub_id format "Email" is not registered; read as "email"`)},
		{"format iss-sub", obj{"format": "iss-sub", "iss": testIssuer, "sub": "s"}, warns(`sub_id format "iss-sub" is not registered; read as "iss_sub"`)},
		{"format phone", obj{"format": "phone", "phone_number": "+12065550100"}, warns(`sub_id format "phone" is not registered; read as "phone_number"`)},
		{"format phone with a phone member", obj{"format": "phone", "phone": "+12065550100"}, rejected},
		{"format Email and a bad address", obj{"format": "Email", "email": "jane"}, warns(
			`sub_id format "Email" is not registered; read as "email"`, "sub_id.email is not an addr-spec email address")},

		// Anything else.
		{"proprietary format", obj{"format": "x-acme-employee", "badge": 1234}, accepted},
		{"not an object", "user@example.com", rejected},
		{"no format", obj{"email": "user@example.com"}, rejected},
		{"legacy subject_type in sub_id", obj{"subject_type": "email", "email": "user@example.com"}, rejected},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			tok := tokClaims(subID(row.sub))(t)
			checkOutcome(t, strict, loose, tok, row.want, "sub_id", subjectValues(row.sub))
		})
	}
}

// TestEventPayloads has valid and invalid rows for every CAEP 1.0, RISC
// 1.0 and SSF event type and every registered value, under strict and
// lenient validation.
func TestEventPayloads(t *testing.T) {
	t.Parallel()
	strict, loose := modeVerifiers(t)
	type obj = map[string]any
	now := testNow.Unix()
	emailSub := obj{"format": "email", "email": "john.doe@example.com"}
	phoneSub := obj{"format": "phone_number", "phone_number": "+12065550100"}
	issSub := obj{"format": "iss_sub", "iss": testIssuer, "sub": "7375626A656374"}
	badSubject := obj{"subject": obj{"format": "email"}}
	cred := func(credType, change string) obj { return obj{"credential_type": credType, "change_type": change} }

	type row struct {
		name    string
		typ     string
		payload any
		sub     any // sub_id; nil keeps the base email subject
		want    outcome
	}
	rows := []row{
		// CAEP session-revoked and the claims common to CAEP events.
		{"session-revoked", evSessionRevok, obj{"event_timestamp": now, "initiating_entity": "policy",
			"reason_admin": obj{"en": "Landspeed Policy Violation: C076E82F"},
			"reason_user":  obj{"en": "Access attempt from multiple regions.", "es-410": "Intento de acceso desde varias regiones."}}, nil, accepted},
		{"session-revoked empty", evSessionRevok, obj{}, nil, accepted},
		{"session-revoked bad initiating_entity", evSessionRevok, obj{"initiating_entity": "robot"}, nil,
			warns(`session-revoked: initiating_entity "robot" is not a CAEP value`)},
		{"session-revoked initiating_entity in capitals", evSessionRevok, obj{"initiating_entity": "ADMIN"}, nil,
			warns(`session-revoked: initiating_entity "ADMIN" is not a CAEP value; read as "admin"`)},
		{"session-revoked reason_admin plain string", evSessionRevok, obj{"reason_admin": "Landspeed Policy Violation"}, nil,
			warns("session-revoked: reason_admin is a plain string, not a map of language tags")},
		{"session-revoked reason_user empty", evSessionRevok, obj{"reason_user": obj{}}, nil,
			warns("session-revoked: reason_user is not a map of language tags to strings")},
		{"session-revoked reason_user with a number", evSessionRevok, obj{"reason_user": obj{"en": 1}}, nil,
			warns("session-revoked: reason_user is not a map of language tags to strings")},
		{"session-revoked event_timestamp in milliseconds", evSessionRevok, obj{"event_timestamp": 1615304991643}, nil,
			warns("session-revoked: event_timestamp is in milliseconds, not seconds")},
		{"session-revoked event_timestamp string", evSessionRevok, obj{"event_timestamp": "1615304991"}, nil,
			warns("session-revoked: event_timestamp is not a number")},
		{"session-revoked payload subject", evSessionRevok, obj{"subject": emailSub}, nil, accepted},
		{"session-revoked bad payload subject", evSessionRevok, badSubject, nil,
			warns(`session-revoked: subject (format email) is missing "email"`)},
		{"session-revoked payload subject bad phone", evSessionRevok, obj{"subject": obj{"format": "phone_number", "phone_number": "555-0100"}}, nil,
			warns("session-revoked: subject.phone_number is not an E.164 telephone number")},
		{"session-revoked several faults", evSessionRevok, obj{"initiating_entity": "User", "event_timestamp": "now", "reason_admin": "x"}, nil,
			warns("session-revoked: event_timestamp is not a number",
				`session-revoked: initiating_entity "User" is not a CAEP value; read as "user"`,
				"session-revoked: reason_admin is a plain string, not a map of language tags")},

		// CAEP token-claims-change.
		{"token-claims-change", evTokenClaims, obj{"claims": obj{"role": "ro-admin"}, "event_timestamp": now}, nil, accepted},
		{"token-claims-change missing claims", evTokenClaims, obj{"event_timestamp": now}, nil, warns("token-claims-change: claims is missing")},
		{"token-claims-change claims null", evTokenClaims, obj{"claims": nil}, nil, warns("token-claims-change: claims is missing")},
		{"token-claims-change claims a string", evTokenClaims, obj{"claims": "role=admin"}, nil, warns("token-claims-change: claims is not an object")},

		// CAEP credential-change.
		{"credential-change FIDO2", evCredChange, obj{"credential_type": "fido2-roaming", "change_type": "create",
			"fido2_aaguid": "accced6a-63f5-490a-9eea-e59bc1896cfc", "friendly_name": "Jane's USB authenticator",
			"x509_issuer": "CN=CA", "x509_serial": "0a1b"}, nil, accepted},
		{"credential-change agreed credential_type", evCredChange, cred("x-acme-badge", "revoke"), nil, accepted},
		{"credential-change missing change_type", evCredChange, obj{"credential_type": "password"}, nil,
			warns("credential-change: change_type is missing")},
		{"credential-change missing credential_type", evCredChange, obj{"change_type": "update"}, nil,
			warns("credential-change: credential_type is missing")},
		{"credential-change empty payload", evCredChange, obj{}, nil,
			warns("credential-change: credential_type is missing", "credential-change: change_type is missing")},
		{"credential-change empty credential_type", evCredChange, cred("", "create"), nil, warns("credential-change: credential_type is empty")},
		{"credential-change credential_type number", evCredChange, obj{"credential_type": 1, "change_type": "create"}, nil,
			warns("credential-change: credential_type is not a string")},
		{"credential-change unknown change_type", evCredChange, cred("password", "rotate"), nil,
			warns(`credential-change: change_type "rotate" is not a CAEP value`)},
		{"credential-change change_type revoked", evCredChange, cred("password", "revoked"), nil,
			warns(`credential-change: change_type "revoked" is not a CAEP value; read as "revoke"`)},
		{"credential-change change_type created", evCredChange, cred("password", "created"), nil,
			warns(`credential-change: change_type "created" is not a CAEP value; read as "create"`)},
		{"credential-change change_type updated", evCredChange, cred("password", "updated"), nil,
			warns(`credential-change: change_type "updated" is not a CAEP value; read as "update"`)},
		{"credential-change change_type deleted", evCredChange, cred("password", "deleted"), nil,
			warns(`credential-change: change_type "deleted" is not a CAEP value; read as "delete"`)},
		{"credential-change change_type Update", evCredChange, cred("password", "Update"), nil,
			warns(`credential-change: change_type "Update" is not a CAEP value; read as "update"`)},
		{"credential-change verifiable_credential", evCredChange, cred("verifiable_credential", "create"), nil,
			warns(`credential-change: credential_type "verifiable_credential" is not a CAEP value; read as "verifiable-credential"`)},
		{"credential-change FIDO2_Platform", evCredChange, cred("FIDO2_Platform", "create"), nil,
			warns(`credential-change: credential_type "FIDO2_Platform" is not a CAEP value; read as "fido2-platform"`)},
		{"credential-change phone_sms", evCredChange, cred("phone_sms", "delete"), nil,
			warns(`credential-change: credential_type "phone_sms" is not a CAEP value; read as "phone-sms"`)},
		{"credential-change both misspelled", evCredChange, cred("fido_u2f", "revoked"), nil,
			warns(`credential-change: credential_type "fido_u2f" is not a CAEP value; read as "fido-u2f"`,
				`credential-change: change_type "revoked" is not a CAEP value; read as "revoke"`)},
		{"credential-change friendly_name number", evCredChange, obj{"credential_type": "pin", "change_type": "create", "friendly_name": 7}, nil,
			warns("credential-change: friendly_name is not a string")},

		// CAEP assurance-level-change.
		{"assurance-level-change", evAssurance, obj{"namespace": "NIST-AAL", "current_level": "nist-aal2", "previous_level": "nist-aal1", "change_direction": "increase"}, nil, accepted},
		{"assurance-level-change custom namespace", evAssurance, obj{"namespace": "Retinal Scan", "current_level": "hi-res-scan"}, nil, accepted},
		{"assurance-level-change missing namespace", evAssurance, obj{"current_level": "nist-aal2"}, nil, warns("assurance-level-change: namespace is missing")},
		{"assurance-level-change missing current_level", evAssurance, obj{"namespace": "RFC8176"}, nil, warns("assurance-level-change: current_level is missing")},
		{"assurance-level-change namespace nist_aal", evAssurance, obj{"namespace": "nist_aal", "current_level": "nist-aal2"}, nil,
			warns(`assurance-level-change: namespace "nist_aal" is not a CAEP value; read as "NIST-AAL"`)},
		{"assurance-level-change change_direction increased", evAssurance, obj{"namespace": "NIST-AAL", "current_level": "2", "change_direction": "increased"}, nil,
			warns(`assurance-level-change: change_direction "increased" is not a CAEP value; read as "increase"`)},
		{"assurance-level-change change_direction sideways", evAssurance, obj{"namespace": "NIST-AAL", "current_level": "2", "change_direction": "sideways"}, nil,
			warns(`assurance-level-change: change_direction "sideways" is not a CAEP value`)},
		{"assurance-level-change previous_level number", evAssurance, obj{"namespace": "NIST-AAL", "current_level": "2", "previous_level": 1}, nil,
			warns("assurance-level-change: previous_level is not a string")},

		// CAEP device-compliance-change.
		{"device-compliance-change", evDevice, obj{"previous_status": "compliant", "current_status": "not-compliant"}, nil, accepted},
		{"device-compliance-change back to compliant", evDevice, obj{"previous_status": "not-compliant", "current_status": "compliant"}, nil, accepted},
		{"device-compliance-change missing previous_status", evDevice, obj{"current_status": "compliant"}, nil,
			warns("device-compliance-change: previous_status is missing")},
		{"device-compliance-change non-compliant", evDevice, obj{"previous_status": "compliant", "current_status": "non-compliant"}, nil,
			warns(`device-compliance-change: current_status "non-compliant" is not a CAEP value; read as "not-compliant"`)},
		{"device-compliance-change not_compliant", evDevice, obj{"previous_status": "not_compliant", "current_status": "compliant"}, nil,
			warns(`device-compliance-change: previous_status "not_compliant" is not a CAEP value; read as "not-compliant"`)},
		{"device-compliance-change broken", evDevice, obj{"previous_status": "compliant", "current_status": "broken"}, nil,
			warns(`device-compliance-change: current_status "broken" is not a CAEP value`)},

		// CAEP session-established and session-presented.
		{"session-established", evSessionEst, obj{"fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611", "acr": "AAL2", "amr": []string{"otp"}, "ext_id": "12345", "event_timestamp": now}, nil, accepted},
		{"session-established amr a string", evSessionEst, obj{"amr": "pwd"}, nil, warns("session-established: amr is not an array of strings")},
		{"session-established acr number", evSessionEst, obj{"acr": 2}, nil, warns("session-established: acr is not a string")},
		{"session-presented", evSessionPres, obj{"fp_ua": "abb0b6e7", "ext_id": "12345", "event_timestamp": now}, nil, accepted},
		{"session-presented ext_id number", evSessionPres, obj{"ext_id": 12345}, nil, warns("session-presented: ext_id is not a string")},

		// CAEP risk-level-change.
		{"risk-level-change LOW", evRisk, obj{"principal": "USER", "current_level": "LOW", "previous_level": "HIGH", "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH"}, nil, accepted},
		{"risk-level-change MEDIUM", evRisk, obj{"principal": "DEVICE", "current_level": "MEDIUM", "previous_level": "LOW"}, nil, accepted},
		{"risk-level-change HIGH", evRisk, obj{"principal": "SESSION", "current_level": "HIGH", "previous_level": "MEDIUM"}, nil, accepted},
		{"risk-level-change other principal", evRisk, obj{"principal": "APPLICATION", "current_level": "LOW"}, nil, accepted},
		{"risk-level-change missing principal", evRisk, obj{"current_level": "LOW"}, nil, warns("risk-level-change: principal is missing")},
		{"risk-level-change missing current_level", evRisk, obj{"principal": "USER"}, nil, warns("risk-level-change: current_level is missing")},
		{"risk-level-change level in lower case", evRisk, obj{"principal": "USER", "current_level": "high"}, nil,
			warns(`risk-level-change: current_level "high" is not a CAEP value; read as "HIGH"`)},
		{"risk-level-change CRITICAL", evRisk, obj{"principal": "USER", "current_level": "CRITICAL"}, nil,
			warns(`risk-level-change: current_level "CRITICAL" is not a CAEP value`)},
		{"risk-level-change bad previous_level", evRisk, obj{"principal": "USER", "current_level": "LOW", "previous_level": "NONE"}, nil,
			warns(`risk-level-change: previous_level "NONE" is not a CAEP value`)},

		// RISC events without attributes: valid, and a bad payload subject.
		{"account-credential-change-required", evAcctCredChg, obj{}, nil, accepted},
		{"account-credential-change-required bad subject", evAcctCredChg, badSubject, nil,
			warns(`account-credential-change-required: subject (format email) is missing "email"`)},
		{"account-purged", evAcctPurged, obj{}, nil, accepted},
		{"account-purged subject a string", evAcctPurged, obj{"subject": "user@example.com"}, nil,
			warns("account-purged: subject is not a JSON object")},
		{"account-enabled", evAcctEnabled, obj{"subject": issSub}, nil, accepted},
		{"account-enabled bad subject", evAcctEnabled, obj{"subject": obj{"id": "x"}}, nil, warns("account-enabled: subject has no format")},
		{"opt-in", evOptIn, obj{}, nil, accepted},
		{"opt-in bad subject", evOptIn, badSubject, nil, warns(`opt-in: subject (format email) is missing "email"`)},
		{"opt-out-initiated", evOptOutInit, obj{}, nil, accepted},
		{"opt-out-initiated bad subject", evOptOutInit, badSubject, nil, warns(`opt-out-initiated: subject (format email) is missing "email"`)},
		{"opt-out-cancelled", evOptOutCancel, obj{}, nil, accepted},
		{"opt-out-cancelled bad subject", evOptOutCancel, badSubject, nil, warns(`opt-out-cancelled: subject (format email) is missing "email"`)},
		{"opt-out-effective", evOptOutEff, obj{}, nil, accepted},
		{"opt-out-effective bad subject", evOptOutEff, badSubject, nil, warns(`opt-out-effective: subject (format email) is missing "email"`)},
		{"recovery-activated", evRecoveryAct, obj{}, nil, accepted},
		{"recovery-activated bad subject", evRecoveryAct, badSubject, nil, warns(`recovery-activated: subject (format email) is missing "email"`)},
		{"recovery-information-changed", evRecoveryInfo, obj{}, nil, accepted},
		{"recovery-information-changed bad subject", evRecoveryInfo, badSubject, nil,
			warns(`recovery-information-changed: subject (format email) is missing "email"`)},
		{"sessions-revoked (deprecated)", evSessionsRev, obj{}, nil, accepted},
		{"sessions-revoked bad subject", evSessionsRev, badSubject, nil, warns(`sessions-revoked: subject (format email) is missing "email"`)},

		// RISC account-disabled.
		{"account-disabled", evAcctDisable, obj{}, nil, accepted},
		{"account-disabled hijacking", evAcctDisable, obj{"reason": "hijacking"}, nil, accepted},
		{"account-disabled bulk-account", evAcctDisable, obj{"reason": "bulk-account"}, nil, accepted},
		{"account-disabled legacy subject_type", evAcctDisable, obj{"reason": "hijacking",
			"subject": obj{"subject_type": "iss-sub", "iss": testIssuer, "sub": "7375626A656374"}}, nil, accepted},
		{"account-disabled spam", evAcctDisable, obj{"reason": "spam"}, nil, warns(`account-disabled: reason "spam" is not a RISC value`)},
		{"account-disabled bulk_account", evAcctDisable, obj{"reason": "bulk_account"}, nil,
			warns(`account-disabled: reason "bulk_account" is not a RISC value; read as "bulk-account"`)},
		{"account-disabled hijacked", evAcctDisable, obj{"reason": "hijacked"}, nil,
			warns(`account-disabled: reason "hijacked" is not a RISC value; read as "hijacking"`)},
		{"account-disabled reason number", evAcctDisable, obj{"reason": 1}, nil, warns("account-disabled: reason is not a string")},

		// RISC identifier-changed and identifier-recycled.
		{"identifier-changed email", evIDChanged, obj{"new-value": "john.roe@example.com"}, emailSub, accepted},
		{"identifier-changed phone", evIDChanged, obj{"new-value": "+12065550199"}, phoneSub, accepted},
		{"identifier-changed without new-value", evIDChanged, obj{}, emailSub, accepted},
		{"identifier-changed complex user email", evIDChanged, obj{}, obj{"format": "complex", "user": emailSub, "tenant": obj{"format": "opaque", "id": "t"}}, accepted},
		{"identifier-changed aliases with a phone", evIDChanged, obj{"new-value": "+12065550199"}, obj{"format": "aliases", "identifiers": []any{issSub, phoneSub}}, accepted},
		{"identifier-changed legacy payload subject", evIDChanged, obj{"subject": obj{"subject_type": "email", "email": "john.doe@example.com"}}, issSub, accepted},
		{"identifier-changed iss_sub", evIDChanged, obj{"new-value": "john.roe@example.com"}, issSub,
			warns("identifier-changed: subject is not an email or phone_number identifier")},
		{"identifier-changed complex device email", evIDChanged, obj{}, obj{"format": "complex", "user": issSub, "device": emailSub},
			warns("identifier-changed: subject is not an email or phone_number identifier")},
		{"identifier-changed new-value not an email", evIDChanged, obj{"new-value": "John Roe"}, emailSub,
			warns("identifier-changed: new-value is not an email address")},
		{"identifier-changed new-value not a phone", evIDChanged, obj{"new-value": "john.roe@example.com"}, phoneSub,
			warns("identifier-changed: new-value is not an E.164 telephone number")},
		{"identifier-changed new-value number", evIDChanged, obj{"new-value": 5}, emailSub,
			warns("identifier-changed: new-value is not a string")},
		{"identifier-recycled email", evIDRecycled, obj{}, emailSub, accepted},
		{"identifier-recycled phone", evIDRecycled, obj{}, phoneSub, accepted},
		{"identifier-recycled opaque", evIDRecycled, obj{}, obj{"format": "opaque", "id": "u1"},
			warns("identifier-recycled: subject is not an email or phone_number identifier")},
		{"identifier-recycled proprietary", evIDRecycled, obj{}, obj{"format": "x-acme", "mail": "a@example.com"},
			warns("identifier-recycled: subject is not an email or phone_number identifier")},

		// RISC credential-compromise.
		{"credential-compromise", evCredCompro, obj{"credential_type": "password", "event_timestamp": now, "reason_admin": obj{"en": "Found in a breach"}, "reason_user": obj{"en": "Change your password"}}, nil, accepted},
		{"credential-compromise agreed type", evCredCompro, obj{"credential_type": "x-acme-token"}, nil, accepted},
		{"credential-compromise missing credential_type", evCredCompro, obj{}, nil, warns("credential-compromise: credential_type is missing")},
		{"credential-compromise verifiable_credential", evCredCompro, obj{"credential_type": "verifiable_credential"}, nil,
			warns(`credential-compromise: credential_type "verifiable_credential" is not a RISC value; read as "verifiable-credential"`)},
		{"credential-compromise reason_admin string", evCredCompro, obj{"credential_type": "pin", "reason_admin": "breach"}, nil,
			warns("credential-compromise: reason_admin is a plain string, not a map of language tags")},

		// SSF control events are never relaxed.
		{"verification without state", evVerify, obj{}, nil, accepted},
		{"verification state a number", evVerify, obj{"state": 1}, nil, rejected},
		{"stream-updated enabled", evStreamUpd, obj{"status": "enabled"}, nil, accepted},
		{"stream-updated paused", evStreamUpd, obj{"status": "paused", "reason": "Internal error"}, nil, accepted},
		{"stream-updated disabled", evStreamUpd, obj{"status": "disabled"}, nil, accepted},
		{"stream-updated missing status", evStreamUpd, obj{"reason": "maintenance"}, nil, rejected},
		{"stream-updated PAUSED", evStreamUpd, obj{"status": "PAUSED"}, nil, rejected},
		{"stream-updated reason number", evStreamUpd, obj{"status": "paused", "reason": 5}, nil, rejected},
	}
	for _, ct := range []string{"password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f",
		"verifiable-credential", "phone-voice", "phone-sms", "app"} {
		rows = append(rows,
			row{"credential-change " + ct, evCredChange, cred(ct, "update"), nil, accepted},
			row{"credential-compromise " + ct, evCredCompro, obj{"credential_type": ct}, nil, accepted})
	}
	for _, change := range []string{"create", "revoke", "update", "delete"} {
		rows = append(rows, row{"credential-change " + change, evCredChange, cred("password", change), nil, accepted})
	}
	for _, ie := range []string{"admin", "user", "policy", "system"} {
		rows = append(rows, row{"session-revoked initiating_entity " + ie, evSessionRevok, obj{"initiating_entity": ie}, nil, accepted})
	}
	for _, ns := range []string{"RFC8176", "RFC6711", "ISO-IEC-29115", "NIST-IAL", "NIST-AAL", "NIST-FAL"} {
		rows = append(rows, row{"assurance-level-change " + ns, evAssurance, obj{"namespace": ns, "current_level": "2", "change_direction": "decrease"}, nil, accepted})
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			mut := []func(map[string]any){ev(row.typ, row.payload)}
			if row.sub != nil {
				mut = append(mut, subID(row.sub))
			}
			tok := tokClaims(mut...)(t)
			checkOutcome(t, strict, loose, tok, row.want, "Event Payload for "+row.typ+" does not conform: ", nil)
		})
	}
}

// TestLenientWarningOrder checks that sub_id warnings come before payload
// warnings, and that the payload is published exactly as sent.
func TestLenientWarningOrder(t *testing.T) {
	t.Parallel()
	_, loose := modeVerifiers(t)
	tok := tokClaims(
		subID(map[string]any{"format": "phone_number", "phone_number": "+1 206 555 0100"}),
		rawEvents(`{"`+evCredChange+`":{"credential_type":"verifiable_credential","change_type":"revoked"}}`),
	)(t)
	s, _ := wantCode(t, loose, tok, "")
	want := []string{
		"sub_id.phone_number is not an E.164 telephone number",
		`credential-change: credential_type "verifiable_credential" is not a CAEP value; read as "verifiable-credential"`,
		`credential-change: change_type "revoked" is not a CAEP value; read as "revoke"`,
	}
	if !slices.Equal(s.Warnings, want) {
		t.Errorf("want warnings\n\t%q\ngot\n\t%q", want, s.Warnings)
	}
	if got := string(s.Events[0].Payload); got != `{"credential_type":"verifiable_credential","change_type":"revoked"}` {
		t.Errorf("want the payload as sent, got %s", got)
	}
}

// TestLenientNeverRelaxes sends tokens whose payload lenient validation
// would tolerate, each with one more fault that it must not: signature,
// issuer, audience, typing, algorithm, key, SSF profile, sub_id structure
// and verification state. Strict and lenient must give the same code.
func TestLenientNeverRelaxes(t *testing.T) {
	t.Parallel()
	strict, loose := modeVerifiers(t)
	r := keys()
	const (
		IR = verify.CodeInvalidRequest
		IK = verify.CodeInvalidKey
		II = verify.CodeInvalidIssuer
		IA = verify.CodeInvalidAudience
		IS = verify.CodeInvalidState
	)
	// claims are the base claims with a payload that lenient validation
	// accepts with warnings.
	claims := func(mut ...func(map[string]any)) map[string]any {
		c := baseClaims()
		ev(evCredChange, map[string]any{"credential_type": "verifiable_credential", "change_type": "revoked"})(c)
		for _, m := range mut {
			m(c)
		}
		return c
	}
	signed := func(header map[string]any, mut ...func(map[string]any)) tokFunc {
		return func(tb testing.TB) string { return sign(tb, r.rsa, header, claims(mut...)) }
	}
	hdr := func(mut func(h map[string]any)) map[string]any {
		h := baseHeader("RS256", r.rsa)
		mut(h)
		return h
	}
	rows := []struct {
		name string
		tok  tokFunc
		code verify.Code
	}{
		{"bad signature", func(tb testing.TB) string {
			h, c, s := parts(tb, signed(baseHeader("RS256", r.rsa))(tb))
			sig := mustB64(tb, s)
			sig[0] ^= 1
			return h + "." + c + "." + b64(sig)
		}, IK},
		{"signed by another key", func(tb testing.TB) string {
			return sign(tb, r.attacker, baseHeader("RS256", r.attacker), claims())
		}, IK},
		{"unknown kid", signed(hdr(func(h map[string]any) { h["kid"] = "nope" })), IK},
		{"alg none", func(tb testing.TB) string {
			return sign(tb, nil, map[string]any{"typ": "secevent+jwt", "alg": "none"}, claims())
		}, IK},
		{"HS256", func(tb testing.TB) string {
			return sign(tb, []byte("shared-secret-that-is-long-enough"), map[string]any{"typ": "secevent+jwt", "alg": "HS256"}, claims())
		}, IK},
		{"other issuer", signed(baseHeader("RS256", r.rsa), set("iss", "https://other.example.com/")), II},
		{"other audience", signed(baseHeader("RS256", r.rsa), set("aud", "https://other.example.com/")), IA},
		{"no audience", signed(baseHeader("RS256", r.rsa), del("aud")), IA},
		{"typ JWT", signed(hdr(func(h map[string]any) { h["typ"] = "JWT" })), IR},
		{"typ missing", signed(hdr(func(h map[string]any) { delete(h, "typ") })), IR},
		{"crit", signed(hdr(func(h map[string]any) { h["crit"] = []string{"x"}; h["x"] = 1 })), IR},
		{"sub present", signed(baseHeader("RS256", r.rsa), set("sub", "user@example.com")), IR},
		{"exp present", signed(baseHeader("RS256", r.rsa), set("exp", testNow.Unix()+60)), IR},
		{"sub_id missing", signed(baseHeader("RS256", r.rsa), del("sub_id")), IR},
		{"sub_id structure", signed(baseHeader("RS256", r.rsa), subID(map[string]any{"format": "email"})), IR},
		{"two events", signed(baseHeader("RS256", r.rsa), func(c map[string]any) {
			c["events"].(map[string]any)[evSessionRevok] = map[string]any{}
		}), IR},
		{"iat in the future", signed(baseHeader("RS256", r.rsa), set("iat", testNow.Unix()+3600)), IR},
		{"verification state not requested", tokClaims(ev(evVerify, map[string]any{"state": "never-requested"})), IS},
		{"stream-updated bad status", tokClaims(ev(evStreamUpd, map[string]any{"status": "stopped"})), IR},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			tok := row.tok(t)
			wantCode(t, strict, tok, row.code)
			wantCode(t, loose, tok, row.code)
		})
	}
	t.Run("the payload alone passes lenient only", func(t *testing.T) {
		t.Parallel()
		tok := signed(baseHeader("RS256", r.rsa))(t)
		wantCode(t, strict, tok, IR)
		if s, _ := wantCode(t, loose, tok, ""); len(s.Warnings) != 2 {
			t.Errorf("want two warnings, got %q", s.Warnings)
		}
	})
}
