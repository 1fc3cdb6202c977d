package verify

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzPayload feeds arbitrary JSON to the subject and payload checks of
// every known event type, below the signature check FuzzVerify rarely gets
// past. Whatever the input: no panic; strict rejects exactly what lenient
// warns about; warnings are single short lines.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"credential_type":"verifiable_credential","change_type":"revoked"}`,
		`{"subject":{"format":"complex","user":{"format":"aliases","identifiers":[{"format":"email","email":"a@b"}]}}}`,
		`{"new-value":"+12065550100","subject":{"subject_type":"phone","phone":"+1"}}`,
		`{"event_timestamp":1615304991643,"reason_admin":"x","initiating_entity":"ADMIN"}`,
		`{"subject":{"format":"did","url":"did:a:"}}`,
		`{"subject":{"format":"ip-addresses","ip-addresses":["::1","x"]}}`,
	} {
		f.Add([]byte(s), []byte(`{"format":"email","email":"user@example.com"}`))
	}
	f.Add([]byte(`{"status":"PAUSED"}`), []byte(`{"format":"Phone","phone_number":"+1 206"}`))
	f.Add([]byte(`{}`), []byte(`{"format":"aliases","identifiers":[{"format":"aliases"}]}`))

	strict := &Verifier{cfg: Config{}, states: NewStates(nil)}
	loose := &Verifier{cfg: Config{Lenient: true}, states: NewStates(nil)}
	f.Fuzz(func(t *testing.T, payload, subID []byte) {
		if !json.Valid(payload) || !json.Valid(subID) || !isObject(payload) {
			return
		}
		var sSet, lSet SET
		sErr, lErr := strict.checkSubID(subID, &sSet), loose.checkSubID(subID, &lSet)
		if (sErr == nil) != (lErr == nil && len(lSet.Warnings) == 0) {
			t.Fatalf("sub_id: strict %v, lenient %v %q", sErr, lErr, lSet.Warnings)
		}
		for typ, def := range payloads {
			if def.name == "verification" {
				continue // its state check depends on requested states
			}
			ev := Event{Type: typ, Payload: payload}
			s, l := SET{SubID: subID}, SET{SubID: subID}
			sErr, lErr := strict.checkPayload(ev, &s), loose.checkPayload(ev, &l)
			if def.control {
				if (sErr == nil) != (lErr == nil) || len(l.Warnings) > 0 {
					t.Fatalf("%s: strict %v, lenient %v %q", def.name, sErr, lErr, l.Warnings)
				}
				continue
			}
			if lErr != nil || (sErr == nil) != (len(l.Warnings) == 0) {
				t.Fatalf("%s: strict %v, lenient %v %q", def.name, sErr, lErr, l.Warnings)
			}
			for _, w := range l.Warnings {
				if !strings.HasPrefix(w, def.name+": ") || strings.ContainsAny(w, "\r\n") || len(w) > 400 {
					t.Fatalf("%s: bad warning %q", def.name, w)
				}
			}
		}
	})
}
