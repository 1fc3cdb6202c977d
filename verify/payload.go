package verify

import (
	"encoding/json"
	"fmt"
	"slices"
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
	kObject
	kStringArray
	kLangMap // object of BCP 47 tag -> string, at least one entry
)

type field struct {
	name     string
	kind     kind
	required bool
	enum     []string
}

// caepCommon are the optional claims every CAEP event may carry (CAEP §2).
var caepCommon = []field{
	{name: "event_timestamp", kind: kNumber},
	{name: "initiating_entity", kind: kString, enum: []string{"admin", "user", "policy", "system"}},
	{name: "reason_admin", kind: kLangMap},
	{name: "reason_user", kind: kLangMap},
	{name: "subject", kind: kObject},
}

var levels = []string{"LOW", "MEDIUM", "HIGH"}

// payloads maps each known event type to its payload fields (SPEC.md §7).
// Types not listed here are accepted with any object payload.
var payloads = map[string][]field{
	caepBase + "session-revoked":     caepCommon,
	caepBase + "token-claims-change": append([]field{{name: "claims", kind: kObject, required: true}}, caepCommon...),
	caepBase + "credential-change": append([]field{
		{name: "credential_type", kind: kString, required: true}, // open set: agreed types are allowed
		{name: "change_type", kind: kString, required: true, enum: []string{"create", "revoke", "update", "delete"}},
		{name: "friendly_name", kind: kString},
		{name: "x509_issuer", kind: kString},
		{name: "x509_serial", kind: kString},
		{name: "fido2_aaguid", kind: kString},
	}, caepCommon...),
	caepBase + "assurance-level-change": append([]field{
		{name: "namespace", kind: kString, required: true},
		{name: "current_level", kind: kString, required: true},
		{name: "previous_level", kind: kString},
		{name: "change_direction", kind: kString, enum: []string{"increase", "decrease"}},
	}, caepCommon...),
	caepBase + "device-compliance-change": append([]field{
		{name: "previous_status", kind: kString, required: true, enum: []string{"compliant", "not-compliant"}},
		{name: "current_status", kind: kString, required: true, enum: []string{"compliant", "not-compliant"}},
	}, caepCommon...),
	caepBase + "session-established": append([]field{
		{name: "fp_ua", kind: kString}, {name: "acr", kind: kString},
		{name: "amr", kind: kStringArray}, {name: "ext_id", kind: kString},
	}, caepCommon...),
	caepBase + "session-presented": append([]field{
		{name: "fp_ua", kind: kString}, {name: "ext_id", kind: kString},
	}, caepCommon...),
	caepBase + "risk-level-change": append([]field{
		{name: "principal", kind: kString, required: true},
		{name: "current_level", kind: kString, required: true, enum: levels},
		{name: "previous_level", kind: kString, enum: levels},
		{name: "risk_reason", kind: kString},
	}, caepCommon...),

	riscBase + "account-disabled": {
		{name: "reason", kind: kString, enum: []string{"hijacking", "bulk-account"}},
		{name: "subject", kind: kObject},
	},
	riscBase + "credential-compromise": append([]field{
		{name: "credential_type", kind: kString, required: true},
	}, caepCommon...),
	riscBase + "identifier-changed": {{name: "new-value", kind: kString}, {name: "subject", kind: kObject}},

	EventVerification: {{name: "state", kind: kString}},
	EventStreamUpdated: {
		{name: "status", kind: kString, required: true, enum: []string{"enabled", "paused", "disabled"}},
		{name: "reason", kind: kString},
	},
}

// checkPayload checks a known event's payload and, for a verification
// event, its state. Under lenient validation payload faults become
// warnings on set; state mismatches never do.
func (v *Verifier) checkPayload(ev Event, set *SET) *Error {
	fields, known := payloads[ev.Type]
	if !known {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev.Payload, &m); err != nil {
		return badRequest("The payload of event %q is not a JSON object.", ev.Type)
	}
	if msg := checkFields(m, fields); msg != "" {
		desc := fmt.Sprintf("Event Payload for %s does not conform: %s.", ev.Type, msg)
		if !v.cfg.Lenient {
			return badRequest("%s", desc)
		}
		set.Warnings = append(set.Warnings, desc)
	}
	if ev.Type == EventVerification {
		if state, ok := stringClaim(m, "state"); ok && !v.states.Pending(state) {
			return reject(CodeInvalidState, "The verification state does not match any state this receiver requested.")
		}
	}
	return nil
}

// checkFields returns "" when m fits fields, or a short English reason.
func checkFields(m map[string]json.RawMessage, fields []field) string {
	for _, f := range fields {
		raw, ok := m[f.name]
		if !ok || string(raw) == "null" {
			if f.required {
				return fmt.Sprintf("required field %q is missing", f.name)
			}
			continue
		}
		switch f.kind {
		case kString:
			s, ok := stringClaim(m, f.name)
			if !ok {
				return fmt.Sprintf("%q must be a string", f.name)
			}
			if f.required && s == "" {
				return fmt.Sprintf("%q must not be empty", f.name)
			}
			if f.enum != nil && !slices.Contains(f.enum, s) {
				return fmt.Sprintf("%q has unknown value %q (allowed: %v)", f.name, truncate(s, 64), f.enum)
			}
		case kNumber:
			if _, ok := numberClaim(m, f.name); !ok {
				return fmt.Sprintf("%q must be a number", f.name)
			}
		case kObject:
			if !isObject(raw) {
				return fmt.Sprintf("%q must be an object", f.name)
			}
		case kStringArray:
			var ss []string
			if json.Unmarshal(raw, &ss) != nil {
				return fmt.Sprintf("%q must be an array of strings", f.name)
			}
		case kLangMap:
			var lm map[string]string
			if !isObject(raw) || json.Unmarshal(raw, &lm) != nil || len(lm) == 0 {
				return fmt.Sprintf("%q must map language tags to strings", f.name)
			}
		}
	}
	return ""
}
