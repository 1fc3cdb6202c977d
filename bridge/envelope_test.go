package bridge

import (
	"bytes"
	"encoding/json"
	"net/textproto"
	"testing"
	"time"
)

// TestAppendEnvelope: the hand-written encoder writes exactly what
// json.Marshal writes for the same Envelope, and fails where it fails.
func TestAppendEnvelope(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 30, 0, 123456789, time.UTC)
	base := func() Envelope {
		return Envelope{
			Issuer: "acme", Iss: "https://idp.acme.example/", JTI: "jti-1", IAT: "1733130000", Aud: []string{"https://setgate.example/"},
			EventType: sessionRevoked, Event: json.RawMessage(`{"initiating_entity":"policy"}`), Delivery: DeliveryPush,
			ReceivedAt: at, SET: "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
		}
	}
	tests := []struct {
		name    string
		edit    func(*Envelope)
		wantErr bool
	}{
		{"minimal", func(*Envelope) {}, false},
		{"every member", func(e *Envelope) {
			e.TOE, e.TXN, e.Sub = "1733129999.5", "txn-1", "bob"
			e.SubID = json.RawMessage(`{"format":"email","email":"bob@acme.example"}`)
			e.PayloadWarnings = []string{"event: member x is not a string", "second"}
			e.Aud = []string{"a", "b"}
			e.Delivery = DeliveryPoll
		}, false},
		{"nil aud and empty event", func(e *Envelope) { e.Aud, e.Event = nil, nil }, false},
		{"empty aud", func(e *Envelope) { e.Aud = []string{} }, false},
		{"strings that need escaping", func(e *Envelope) {
			e.Issuer, e.JTI = "a\"b\\c\n\r\t\b\f\x01<>&", "\u2028\u2029é\xff\xfe日本"
			e.Sub = "</script>"
		}, false},
		{"raw members with whitespace and HTML", func(e *Envelope) {
			e.Event = json.RawMessage("{ \"reason\" : \"<b>&amp;\u2028\" ,\n \"n\": [1, 2] }")
			e.SubID = json.RawMessage(" {\"format\": \"opaque\", \"id\": \"x\"} ")
		}, false},
		{"numbers", func(e *Envelope) { e.IAT, e.TOE = "-0.5e+10", "0" }, false},
		{"empty iat", func(e *Envelope) { e.IAT = "" }, false},
		{"received_at with zone and no nanoseconds", func(e *Envelope) {
			e.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
		}, false},
		{"invalid number", func(e *Envelope) { e.IAT = "12abc" }, true},
		{"number with spaces", func(e *Envelope) { e.IAT = " 12" }, true},
		{"invalid raw event", func(e *Envelope) { e.Event = json.RawMessage(`{"a":`) }, true},
		{"year out of range", func(e *Envelope) { e.ReceivedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base()
			tt.edit(&env)
			want, wantErr := json.Marshal(env)
			got, err := appendEnvelope(nil, &env)
			if (err != nil) != tt.wantErr || (wantErr != nil) != tt.wantErr {
				t.Fatalf("want error %v, got %v (json.Marshal: %v)", tt.wantErr, err, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("want %s, got %s", want, got)
			}
		})
	}
}

// FuzzAppendEnvelope: for any strings, numbers and raw members the
// encoder agrees with json.Marshal, bytes and errors alike.
func FuzzAppendEnvelope(f *testing.F) {
	f.Add("acme", "jti\u2028<&>", "1733130000", "", `{"a":1}`, `{"format":"email","email":"x@y"}`, "\xff")
	f.Add("", "", "-1.5E-3", "0", " { } ", "", "")
	f.Add("a\x00b", "\"", "01", "1.", "[1,", "null", "warn")
	f.Fuzz(func(t *testing.T, s1, s2, iat, toe, event, subID, warn string) {
		env := Envelope{
			Issuer: s1, Iss: s2, JTI: s1 + s2, IAT: json.Number(iat), TOE: json.Number(toe), Aud: []string{s2, s1},
			TXN: s2, SubID: json.RawMessage(subID), Sub: s1, EventType: s2, Event: json.RawMessage(event),
			Delivery: Delivery(s1), ReceivedAt: time.Unix(int64(len(s1))*1e9+7, 0).UTC(), SET: s1, PayloadWarnings: []string{warn},
		}
		want, wantErr := json.Marshal(env)
		got, err := appendEnvelope(nil, &env)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("want error %v, got %v", wantErr, err)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("want %s, got %s", want, got)
		}
	})
}

// TestMessageHeaders: the message's header names are canonical (as
// Header.Set would store them), so Header.Get finds each one, and the
// body is the envelope json.Marshal would write.
func TestMessageHeaders(t *testing.T) {
	subjects, err := NewSubjects("secevent")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bridge{subjects: subjects, cfg: Config{Stream: "SECEVENTS"}}
	set := testSET("", sessionRevoked)
	at := time.Now()
	m, err := b.message("acme", nil, set, set.Events[0], DeliveryPoll, at)
	if err != nil {
		t.Fatal(err)
	}
	for k := range m.Header {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("want canonical header name %q, got %q", c, k)
		}
	}
	for name, want := range map[string]string{
		"Content-Type": "application/json", "Nats-Msg-Id": MsgID(set.Iss, set.JTI, sessionRevoked),
		"Nats-Expected-Stream": b.cfg.Stream,
		HeaderIssuer:           "acme", HeaderIss: set.Iss, HeaderJTI: set.JTI, HeaderEventType: sessionRevoked, HeaderDelivery: "poll",
	} {
		if got := m.Header.Get(name); got != want || len(m.Header[name]) != 1 {
			t.Errorf("header %s: want [%q], got %q", name, want, m.Header[name])
		}
	}
	m.Header.Add(HeaderIssuer, "appended")
	if got := m.Header.Get(HeaderIss); got != set.Iss {
		t.Errorf("appending to one header changed another: %s is %q", HeaderIss, got)
	}
}
