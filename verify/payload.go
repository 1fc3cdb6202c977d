package verify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Event type URIs setgate knows the payload of.
const (
	caepBase = "https://schemas.openid.net/secevent/caep/event-type/"
	riscBase = "https://schemas.openid.net/secevent/risc/event-type/"
	ssfBase  = "https://schemas.openid.net/secevent/ssf/event-type/"

	// EventVerification is the SSF verification event type.
	EventVerification = ssfBase + "verification"
	// EventStreamUpdated is the SSF stream-updated event type.
	EventStreamUpdated = ssfBase + "stream-updated"
)

type kind int

const (
	kString kind = iota
	kNumber
	kTimestamp // NumericDate in seconds
	kObject
	kStringArray
	kLangMap // object of BCP 47 tag -> string, at least one entry
	kSubject // subject identifier object (the legacy payload "subject")
)

// field describes one payload member.
type field struct {
	name     string
	kind     kind
	required bool
	// values are the registered values of a string field. A value that
	// differs from one only in case or separators ("_" for "-"), or that
	// aliases names, is a fault that reads as the registered value.
	values []string
	// open means values is not exhaustive: other values are types the
	// two parties agreed on, and are accepted.
	open bool
	// aliases maps other known spellings (normalized) to a registered
	// value, such as a past tense for a verb.
	aliases map[string]string
}

// eventDef describes the payload of one known event type.
type eventDef struct {
	// name is the short name warnings start with, e.g. "credential-change".
	name string
	// family names the specification in warnings: CAEP, RISC or SSF.
	family string
	fields []field
	// control marks SSF events setgate itself acts on (verification,
	// stream-updated): their payloads are never relaxed.
	control bool
	// identifier marks RISC identifier-changed and identifier-recycled,
	// whose subject must be an email address or a phone number.
	identifier bool
}

// Fields shared by several event types.
var (
	fEventTimestamp   = field{name: "event_timestamp", kind: kTimestamp}
	fInitiatingEntity = field{name: "initiating_entity", kind: kString, values: []string{"admin", "user", "policy", "system"}}
	fReasonAdmin      = field{name: "reason_admin", kind: kLangMap}
	fReasonUser       = field{name: "reason_user", kind: kLangMap}
	fSubject          = field{name: "subject", kind: kSubject}
	fCredentialType   = field{name: "credential_type", kind: kString, required: true, open: true, values: []string{
		"password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f",
		"verifiable-credential", "phone-voice", "phone-sms", "app",
	}}
	riskLevels   = []string{"LOW", "MEDIUM", "HIGH"}
	deviceStatus = []string{"compliant", "not-compliant"}
)

// caep defines a CAEP 1.0 event: its fields plus the optional claims every
// CAEP event may carry (CAEP §2) and the legacy payload subject.
func caep(name string, fields ...field) eventDef {
	fields = append(fields, fEventTimestamp, fInitiatingEntity, fReasonAdmin, fReasonUser, fSubject)
	return eventDef{name: name, family: "CAEP", fields: fields}
}

// risc defines a RISC 1.0 event: its fields plus the legacy payload
// subject.
func risc(name string, fields ...field) eventDef {
	return eventDef{name: name, family: "RISC", fields: append(fields, fSubject)}
}

// payloads maps each known event type to its payload (CAEP 1.0 §3, RISC 1.0
// §2, SSF 1.0 §8.1.4 and §8.1.5).
// Types not listed here are accepted with any object payload.
var payloads = func() map[string]eventDef {
	defs := []eventDef{
		caep("session-revoked"),
		caep("token-claims-change", field{name: "claims", kind: kObject, required: true}),
		caep("credential-change",
			fCredentialType,
			field{name: "change_type", kind: kString, required: true, values: []string{"create", "revoke", "update", "delete"},
				aliases: map[string]string{"created": "create", "revoked": "revoke", "updated": "update", "deleted": "delete"}},
			field{name: "friendly_name", kind: kString},
			field{name: "x509_issuer", kind: kString},
			field{name: "x509_serial", kind: kString},
			field{name: "fido2_aaguid", kind: kString},
		),
		caep("assurance-level-change",
			field{name: "namespace", kind: kString, required: true, open: true,
				values: []string{"RFC8176", "RFC6711", "ISO-IEC-29115", "NIST-IAL", "NIST-AAL", "NIST-FAL"}},
			field{name: "current_level", kind: kString, required: true},
			field{name: "previous_level", kind: kString},
			field{name: "change_direction", kind: kString, values: []string{"increase", "decrease"},
				aliases: map[string]string{"increased": "increase", "decreased": "decrease"}},
		),
		caep("device-compliance-change",
			field{name: "previous_status", kind: kString, required: true, values: deviceStatus,
				aliases: map[string]string{"noncompliant": "not-compliant"}},
			field{name: "current_status", kind: kString, required: true, values: deviceStatus,
				aliases: map[string]string{"noncompliant": "not-compliant"}},
		),
		caep("session-established",
			field{name: "fp_ua", kind: kString}, field{name: "acr", kind: kString},
			field{name: "amr", kind: kStringArray}, field{name: "ext_id", kind: kString},
		),
		caep("session-presented", field{name: "fp_ua", kind: kString}, field{name: "ext_id", kind: kString}),
		caep("risk-level-change",
			field{name: "principal", kind: kString, required: true},
			field{name: "current_level", kind: kString, required: true, values: riskLevels},
			field{name: "previous_level", kind: kString, values: riskLevels},
			field{name: "risk_reason", kind: kString},
		),

		risc("account-credential-change-required"),
		risc("account-purged"),
		risc("account-disabled", field{name: "reason", kind: kString, values: []string{"hijacking", "bulk-account"},
			aliases: map[string]string{"hijacked": "hijacking"}}),
		risc("account-enabled"),
		{name: "identifier-changed", family: "RISC", identifier: true,
			fields: []field{{name: "new-value", kind: kString}, fSubject}},
		{name: "identifier-recycled", family: "RISC", identifier: true, fields: []field{fSubject}},
		risc("credential-compromise", fCredentialType, fEventTimestamp, fReasonAdmin, fReasonUser),
		risc("opt-in"),
		risc("opt-out-initiated"),
		risc("opt-out-cancelled"),
		risc("opt-out-effective"),
		risc("recovery-activated"),
		risc("recovery-information-changed"),
		risc("sessions-revoked"), // deprecated for CAEP session-revoked, still valid

		{name: "verification", family: "SSF", control: true, fields: []field{{name: "state", kind: kString}}},
		{name: "stream-updated", family: "SSF", control: true, fields: []field{
			{name: "status", kind: kString, required: true, values: []string{"enabled", "paused", "disabled"}},
			{name: "reason", kind: kString},
		}},
	}
	m := make(map[string]eventDef, len(defs))
	for _, d := range defs {
		base := caepBase
		switch d.family {
		case "RISC":
			base = riscBase
		case "SSF":
			base = ssfBase
		}
		m[base+d.name] = d
	}
	return m
}()

// fault is one way a payload does not conform. desc completes "Event
// Payload for <type> does not conform: …" in a rejection; warn is the
// short, stable phrase a lenient warning carries after "<event name>: ".
type fault struct {
	desc, warn string
}

// sameFault is a fault that reads the same in a rejection and a warning.
func sameFault(s string) fault { return fault{s, s} }

// checkPayload checks a known event's payload and, for a verification
// event, its state. Under lenient validation payload faults become
// warnings on set (every fault, in field order); state mismatches and SSF
// control events never relax.
func (v *Verifier) checkPayload(ev Event, set *SET) *Error {
	def, known := payloads[ev.Type]
	if !known {
		return nil
	}
	var buf [8]member
	m, ok := scanObject(ev.Payload, buf[:0])
	if !ok {
		return badRequest("The payload of event %q is not a JSON object.", ev.Type)
	}
	if faults := def.check(m, set.SubID); len(faults) > 0 {
		if !v.cfg.Lenient || def.control {
			return badRequest("Event Payload for %s does not conform: %s.", ev.Type, faults[0].desc)
		}
		for _, f := range faults {
			set.Warnings = append(set.Warnings, def.name+": "+f.warn)
		}
	}
	if ev.Type == EventVerification {
		if id := v.states.Stream(); id != "" && namesOtherStream(set.SubID, id) {
			return badRequest("The verification event's sub_id names another stream than the one this receiver holds.")
		}
		if state, ok := stringClaim(m, "state"); ok && !v.states.Pending(state) {
			return reject(CodeInvalidState, "The verification state does not match any state this receiver requested.")
		}
	}
	return nil
}

// namesOtherStream reports whether a verification event's sub_id is an
// opaque identifier of another stream than id (SSF 1.0 §8.1.4.1: the
// subject of a verification event is the stream, {"format":"opaque",
// "id":<stream_id>}). An absent sub_id or one of another format names no
// stream and is let through.
func namesOtherStream(subID json.RawMessage, id string) bool {
	var s struct {
		Format string `json:"format"`
		ID     string `json:"id"`
	}
	if len(subID) == 0 || json.Unmarshal(subID, &s) != nil || s.Format != "opaque" {
		return false
	}
	return s.ID != id
}

// KnownEventTypes returns the event type URIs whose payload setgate
// knows and checks, sorted.
func KnownEventTypes() []string {
	out := make([]string, 0, len(payloads))
	for t := range payloads {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// check returns every fault of payload m, in field order. subID is the
// SET's sub_id (nil when absent).
func (d eventDef) check(m members, subID json.RawMessage) []fault {
	var faults []fault
	for _, f := range d.fields {
		faults = append(faults, f.check(m, d.family)...)
	}
	if d.identifier {
		faults = append(faults, checkIdentifierSubject(m, subID)...)
	}
	return faults
}

// check returns the faults of field f in payload m.
func (f field) check(m members, family string) []fault {
	raw, ok := m.get(f.name)
	if !ok || string(raw) == "null" {
		if f.required {
			return []fault{{fmt.Sprintf("required field %q is missing", f.name), f.name + " is missing"}}
		}
		return nil
	}
	wrongType := func(what string) []fault {
		return []fault{{fmt.Sprintf("%q must be %s", f.name, what), f.name + " is not " + what}}
	}
	switch f.kind {
	case kString:
		s, ok := knownClaim(m, f.name, f.values)
		if !ok {
			return wrongType("a string")
		}
		if f.required && s == "" {
			return []fault{{fmt.Sprintf("%q must not be empty", f.name), f.name + " is empty"}}
		}
		return f.checkValue(s, family)
	case kNumber, kTimestamp:
		x, ok := floatClaim(m, f.name)
		if !ok {
			return wrongType("a number")
		}
		// Seconds beyond 1e11 are after the year 5000: the value is in
		// milliseconds, as in early CAEP drafts' examples.
		if f.kind == kTimestamp && x >= 1e11 {
			return []fault{{fmt.Sprintf("%q is in milliseconds; NumericDate is in seconds", f.name), f.name + " is in milliseconds, not seconds"}}
		}
	case kObject:
		if !isObject(raw) {
			return wrongType("an object")
		}
	case kStringArray:
		var ss []string
		if json.Unmarshal(raw, &ss) != nil {
			return wrongType("an array of strings")
		}
	case kLangMap:
		// Early CAEP drafts sent the reason as a plain string.
		if _, isString := stringClaim(m, f.name); isString {
			return []fault{{fmt.Sprintf("%q must map language tags to strings, not be a plain string", f.name), f.name + " is a plain string, not a map of language tags"}}
		}
		if !isLangMap(raw) {
			return wrongType("a map of language tags to strings")
		}
	case kSubject:
		c := subjectChecker{legacy: true}
		var faults []fault
		if s := c.check(raw, f.name, true, true); s != "" {
			faults = append(faults, sameFault(s))
		}
		return append(faults, c.soft...)
	}
	return nil
}

// checkValue checks a string against the field's registered values.
func (f field) checkValue(s, family string) []fault {
	if f.values == nil || slices.Contains(f.values, s) {
		return nil
	}
	got := truncate(s, 32)
	key := normalize(s)
	canon, ok := f.aliases[key]
	for _, v := range f.values {
		if normalize(v) == key {
			canon, ok = v, true
		}
	}
	if ok {
		return []fault{{
			fmt.Sprintf("%q has value %q, which is not a %s value (did you mean %q?)", f.name, got, family, canon),
			fmt.Sprintf("%s %q is not a %s value; read as %q", f.name, got, family, canon),
		}}
	}
	if f.open {
		return nil // a type both parties agreed on
	}
	return []fault{{
		fmt.Sprintf("%q has unknown value %q (allowed: %s)", f.name, got, strings.Join(f.values, ", ")),
		fmt.Sprintf("%s %q is not a %s value", f.name, got, family),
	}}
}

// isLangMap reports whether raw is an object with at least one member
// whose every value is a string (or null), what encoding/json decodes
// into a non-empty map[string]string.
func isLangMap(raw json.RawMessage) bool {
	it, ok := iterObject(raw)
	if !ok {
		return false
	}
	n := 0
	for it.next() {
		if it.value[0] != '"' && string(it.value) != "null" {
			return false
		}
		n++
	}
	return it.ok() && n > 0
}

// checkIdentifierSubject checks RISC identifier-changed/-recycled: the
// subject (sub_id, or the payload subject) must be an email address or a
// phone number, and new-value, when present, must have the same form.
func checkIdentifierSubject(m members, subID json.RawMessage) []fault {
	subject, _ := m.get("subject")
	formats := append(principalFormats(subID, false), principalFormats(subject, true)...)
	email, phone := slices.Contains(formats, "email"), slices.Contains(formats, "phone_number")
	if !email && !phone {
		return []fault{{"the subject must be an email or phone_number identifier", "subject is not an email or phone_number identifier"}}
	}
	nv, ok := stringClaim(m, "new-value")
	if !ok || email && isAddrSpec(nv) || phone && isE164(nv) {
		return nil
	}
	want := "an email address"
	switch {
	case email && phone:
		want = "an email address or an E.164 telephone number"
	case phone:
		want = "an E.164 telephone number"
	}
	return []fault{{fmt.Sprintf("%q is not %s like the subject", "new-value", want), "new-value is not " + want}}
}

// normalize folds case and drops separators, so that spellings of one
// value compare equal ("verifiable_credential", "Verifiable-Credential").
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', '.':
			return -1
		}
		return toLowerASCII(r)
	}, s)
}

func toLowerASCII(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
