package present

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/setgate/setgate/bridge"
)

// Tail writes one line per stored event or announced rejection, as
// "setgate tail" prints them: a summary for people, or with JSON the
// message itself with where it was routed. It is safe for concurrent use
// (a consumer and a subscription call it from different goroutines).
type Tail struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// NewTail returns a Tail writing to w; asJSON prints each message as one
// JSON line (see [JSONWithRouting]).
func NewTail(w io.Writer, asJSON bool) *Tail { return &Tail{w: w, json: asJSON} }

func (p *Tail) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

// Event prints one stored event: data, a bridge.Envelope stored under
// subject at stream sequence seq (0 when unknown).
func (p *Tail) Event(subject string, seq uint64, data []byte) {
	if p.json {
		p.line(string(JSONWithRouting(data, subject, seq)))
		return
	}
	var env bridge.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		p.line(fmt.Sprintf("%s  (unreadable envelope: %v)", subject, err))
		return
	}
	fields := []string{
		env.ReceivedAt.UTC().Format(time.RFC3339),
		subject,
		env.Issuer,
		"jti=" + env.JTI,
	}
	if who := SubjectSummary(env.SubID, env.Sub, env.Event); who != "" {
		fields = append(fields, who)
	}
	fields = append(fields, payloadFacts(env.Event)...)
	if n := len(env.PayloadWarnings); n > 0 {
		fields = append(fields, fmt.Sprintf("warnings=%d", n))
	}
	p.line(strings.Join(fields, "  "))
}

// JSONWithRouting returns the JSON object body with "nats_subject" (and,
// when seq is not 0, "stream_sequence") put first, so a --json line says
// where the message was routed and where it sits in the stream. A body
// that is not a JSON object is carried as the string "unreadable".
func JSONWithRouting(body []byte, subject string, seq uint64) []byte {
	subj, _ := json.Marshal(subject)
	head := append([]byte(`{"nats_subject":`), subj...)
	if seq != 0 {
		head = fmt.Appendf(head, `,"stream_sequence":%d`, seq)
	}
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) < 2 || trimmed[0] != '{' {
		raw, _ := json.Marshal(string(body))
		return append(append(head, `,"unreadable":`...), append(raw, '}')...)
	}
	rest := bytes.TrimSpace(trimmed[1:])
	if rest[0] == '}' {
		return append(head, '}')
	}
	return append(append(head, ','), rest...)
}

// Rejection prints one announced rejection: data, a bridge.Rejection
// published on subject.
func (p *Tail) Rejection(subject string, data []byte) {
	if p.json {
		p.line(string(JSONWithRouting(data, subject, 0)))
		return
	}
	var r bridge.Rejection
	if err := json.Unmarshal(data, &r); err != nil {
		p.line(fmt.Sprintf("%s  (unreadable rejection: %v)", subject, err))
		return
	}
	p.line(strings.Join([]string{
		r.ReceivedAt.UTC().Format(time.RFC3339), subject, r.Issuer, "jti=" + r.JTI,
		"REJECTED " + r.Code + ": " + r.Description,
	}, "  "))
}

// SubjectSummary names the subject of a SET in a few characters: the
// email, phone number, iss_sub, opaque id, URI… of an RFC 9493 subject
// identifier (each member of an SSF complex subject, or the first alias)
// in sub_id, else the RFC 8417 sub claim, else the identifier in the event
// payload's "subject" member (the CAEP 1.0 legacy form, before SSF moved
// it to sub_id), formatted as sub_id is.
func SubjectSummary(subID json.RawMessage, sub string, event json.RawMessage) string {
	if s := rawIdentifierSummary(subID); s != "" {
		return s
	}
	if sub != "" {
		return "sub=" + sub
	}
	var payload struct {
		Subject json.RawMessage `json:"subject"`
	}
	if len(event) > 0 && json.Unmarshal(event, &payload) == nil {
		return rawIdentifierSummary(payload.Subject)
	}
	return ""
}

// rawIdentifierSummary is identifierSummary of a JSON subject identifier,
// or "" when raw is not a JSON object.
func rawIdentifierSummary(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return identifierSummary(m)
}

func identifierSummary(m map[string]json.RawMessage) string {
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(m[k], &s)
		return s
	}
	switch str("format") {
	case "email":
		return str("email")
	case "phone_number":
		return str("phone_number")
	case "iss_sub":
		return str("sub") + " (iss " + str("iss") + ")"
	case "opaque":
		return "id=" + str("id")
	case "account", "uri":
		return str("uri")
	case "did":
		return str("url")
	case "aliases":
		var ids []map[string]json.RawMessage
		_ = json.Unmarshal(m["identifiers"], &ids)
		if len(ids) > 0 {
			return identifierSummary(ids[0])
		}
		return "aliases"
	case "":
		// SSF complex subject: {"user": {...}, "device": {...}, ...}.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			var inner map[string]json.RawMessage
			if json.Unmarshal(m[k], &inner) == nil {
				if s := identifierSummary(inner); s != "" {
					parts = append(parts, k+"="+s)
				}
			}
		}
		return strings.Join(parts, " ")
	default:
		return "format=" + str("format")
	}
}

// factKeys are payload members worth a glance, in print order.
var factKeys = []string{
	"reason", "change_type", "credential_type", "current_status", "current_level",
	"initiating_entity", "new-value", "principal",
}

// payloadFacts returns key=value for the string members of payload named
// in factKeys.
func payloadFacts(payload json.RawMessage) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return nil
	}
	var facts []string
	for _, k := range factKeys {
		var s string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
			facts = append(facts, k+"="+s)
		}
	}
	return facts
}
