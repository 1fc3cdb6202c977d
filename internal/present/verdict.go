package present

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/verify"
)

// Verdict is what "setgate verify" prints; with --json exactly this object.
type Verdict struct {
	Accepted    bool        `json:"accepted"`
	Issuer      string      `json:"issuer"`
	Code        verify.Code `json:"code"`
	Description string      `json:"description"`
	// Cause is the internal cause of a rejection (what the gateway logs,
	// never sends), e.g. why the JWKS could not be fetched.
	Cause string `json:"cause,omitempty"`
	JTI   string `json:"jti,omitempty"`
	// JWKS is the issuer's key cache after the verification: how many
	// keys were fetched and the last fetch error, if any.
	JWKS     *verify.KeyStatus `json:"jwks,omitempty"`
	Header   json.RawMessage   `json:"header"`
	Claims   json.RawMessage   `json:"claims"`
	Events   []VerdictEvent    `json:"events"`
	Warnings []string          `json:"warnings,omitempty"`
}

// VerdictEvent is one event of the SET with the subject it gets.
type VerdictEvent struct {
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Payload json.RawMessage `json:"payload"`
}

// Fill records the outcome of verifying raw: the decoded parts (best
// effort, so a rejected SET still shows what it says) and either the
// verified events or the rejection.
func (vd *Verdict) Fill(spec config.Issuer, subjects *bridge.Subjects, raw []byte, set *verify.SET, err error) {
	header, claims := decodeParts(string(raw))
	vd.Header, vd.Claims = header, claims
	if err == nil {
		vd.Accepted = true
		vd.JTI = set.JTI
		vd.Warnings = set.Warnings
		for _, ev := range set.Events {
			vd.Events = append(vd.Events, VerdictEvent{ev.Type, subjects.For(spec.Name, ev.Type, spec.Overrides), ev.Payload})
		}
		return
	}
	var ve *verify.Error
	if errors.As(err, &ve) {
		vd.Code, vd.Description, vd.JTI = ve.Code, ve.Description, ve.JTI
		if ve.Err != nil {
			vd.Cause = ve.Err.Error()
		}
	} else {
		vd.Description = err.Error()
	}
	for _, ev := range claimEvents(claims) {
		ev.Subject = subjects.For(spec.Name, ev.Type, spec.Overrides)
		vd.Events = append(vd.Events, ev)
	}
}

// decodeParts decodes the header and claims of a compact JWS leniently
// (padding tolerated): each is its JSON, or nil when it is not readable.
func decodeParts(raw string) (header, claims json.RawMessage) {
	parts := strings.Split(strings.TrimSpace(raw), ".")
	part := func(i int) json.RawMessage {
		if i >= len(parts) {
			return nil
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil || !json.Valid(b) {
			return nil
		}
		var out bytes.Buffer
		if json.Compact(&out, b) != nil {
			return nil
		}
		return out.Bytes()
	}
	if len(parts) < 2 {
		return nil, nil
	}
	return part(0), part(1)
}

// claimEvents returns the members of the events claim in document order,
// or nil when claims has no readable events object.
func claimEvents(claims json.RawMessage) []VerdictEvent {
	var c struct {
		Events json.RawMessage `json:"events"`
	}
	if len(claims) == 0 || json.Unmarshal(claims, &c) != nil || len(c.Events) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.Events))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var evs []VerdictEvent
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return evs
		}
		typ, _ := t.(string)
		var payload json.RawMessage
		if err := dec.Decode(&payload); err != nil {
			return evs
		}
		evs = append(evs, VerdictEvent{Type: typ, Payload: payload})
	}
	return evs
}

// Print writes the verdict: as one JSON object with asJSON, else as text
// for people.
func (vd *Verdict) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(vd)
	}
	vd.printText(w)
	return nil
}

func (vd *Verdict) printText(w io.Writer) {
	if vd.Accepted {
		fmt.Fprintf(w, "ACCEPTED by issuer %s: %d event(s) would be published\n", vd.Issuer, len(vd.Events))
	} else {
		fmt.Fprintf(w, "REJECTED by issuer %s\n", vd.Issuer)
		fmt.Fprintf(w, "  code:        %s\n", vd.Code)
		fmt.Fprintf(w, "  description: %s\n", vd.Description)
		if vd.Cause != "" {
			fmt.Fprintf(w, "  cause:       %s\n", vd.Cause)
		}
	}
	if vd.JTI != "" {
		fmt.Fprintf(w, "  jti:         %s\n", vd.JTI)
	}
	if vd.JWKS != nil {
		fmt.Fprintf(w, "  jwks:        %s: %d key(s)", vd.JWKS.URI, vd.JWKS.Keys)
		if vd.JWKS.LastError != "" {
			fmt.Fprintf(w, "; last fetch failed: %s", vd.JWKS.LastError)
		}
		fmt.Fprintln(w)
	}
	for _, warn := range vd.Warnings {
		fmt.Fprintf(w, "  warning:     %s\n", warn)
	}
	for _, p := range []struct {
		title string
		body  json.RawMessage
	}{{"Header", vd.Header}, {"Claims", vd.Claims}} {
		fmt.Fprintf(w, "\n%s:\n", p.title)
		var out bytes.Buffer
		if len(p.body) == 0 || json.Indent(&out, p.body, "  ", "  ") != nil {
			fmt.Fprintln(w, "  (not readable)")
			continue
		}
		fmt.Fprintf(w, "  %s\n", out.Bytes())
	}
	fmt.Fprintln(w, "\nEvents:")
	if len(vd.Events) == 0 {
		fmt.Fprintln(w, "  (none readable)")
	}
	for _, ev := range vd.Events {
		fmt.Fprintf(w, "  %s\n", ev.Type)
		fmt.Fprintf(w, "    subject: %s\n", ev.Subject)
		fmt.Fprintf(w, "    payload: %s\n", compactJSON(ev.Payload))
	}
}

func compactJSON(b json.RawMessage) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}
