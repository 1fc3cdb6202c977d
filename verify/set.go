package verify

import "encoding/json"

// Profile selects how strictly a SET's shape is checked.
type Profile string

const (
	// ProfileSSF is the OpenID Shared Signals profile: explicit typ, sub_id
	// required, exactly one event, no sub and no exp. It is the default.
	ProfileSSF Profile = "ssf"
	// ProfileRFC8417 accepts plain RFC 8417 SETs: typ optional, sub and exp
	// allowed (exp is enforced), several events allowed, sub_id optional.
	ProfileRFC8417 Profile = "rfc8417"
)

// Header holds the JOSE header members of a SET that setgate reads.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Event is one member of a SET's events claim.
type Event struct {
	// Type is the event identifier URI.
	Type string
	// Payload is the event's JSON object, exactly as the issuer sent it.
	Payload json.RawMessage
}

// SET is a Security Event Token that passed every check of its issuer.
type SET struct {
	// Raw is the compact serialization as received.
	Raw string
	// Header is the decoded JOSE header.
	Header Header
	// Iss, JTI and IAT are the required claims. IAT keeps the JSON number
	// as sent (a NumericDate may have a fraction).
	Iss string
	JTI string
	IAT json.Number
	// Aud is the audience claim, always as a list.
	Aud []string
	// TOE and TXN are optional (nil/empty when absent).
	TOE *json.Number
	TXN string
	// SubID is the RFC 9493 subject identifier object, nil when absent.
	SubID json.RawMessage
	// Sub is the RFC 8417 sub claim (rfc8417 profile only), empty when absent.
	Sub string
	// Events holds the events in the order they appear in the token.
	Events []Event
	// Warnings lists the faults tolerated under lenient payload
	// validation, each a short phrase that does not change between
	// releases: "<event name>: <problem>" for an event payload, e.g.
	//
	//	credential-change: change_type "revoked" is not a CAEP value; read as "revoke"
	//
	// or "sub_id…" for a subject identifier (never quoting its values). It
	// is empty under strict validation. Payloads are kept as sent: a
	// warning says how a misspelled value reads, it does not rewrite it.
	Warnings []string
}
