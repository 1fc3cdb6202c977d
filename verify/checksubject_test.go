package verify_test

import (
	"encoding/json"
	"testing"

	"github.com/setgate/setgate/verify"
)

// TestCheckSubject: CheckSubject takes any bytes (an operator's input),
// not only a verified SET's: invalid JSON is not an object, and a repeated
// member or a member name that is not UTF-8 reads as encoding/json reads
// it (the last one wins; invalid bytes become U+FFFD).
func TestCheckSubject(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{name: "email", raw: `{"format":"email","email":"user@example.com"}`},
		{name: "not JSON", raw: `{"format":"email","email":`, want: "subject is not a JSON object"},
		{name: "trailing garbage", raw: `{"format":"email","email":"a@b.example"} x`, want: "subject is not a JSON object"},
		{name: "array", raw: `[]`, want: "subject is not a JSON object"},
		{name: "repeated member, last wins", raw: `{"format":"email","email":"no","email":"a@b.example"}`},
		{name: "repeated member, last loses", raw: `{"format":"email","email":"a@b.example","email":"no"}`, want: "subject.email is not an addr-spec email address"},
		{name: "name not UTF-8", raw: "{\"format\":\"email\",\"email\":\"a@b.example\",\"\xff\":1}", want: "subject (format email) has member \"\uFFFD\" that the format does not define"},
		{name: "escaped name", raw: `{"format":"email","em\u0061il":"a@b.example"}`},
		{name: "first undefined member by name", raw: `{"format":"email","email":"a@b.example","zz":1,"aa":2}`, want: `subject (format email) has member "aa" that the format does not define`},
		{name: "complex", raw: `{"format":"complex","user":{"format":"email","email":"a@b.example"},"device":{"format":"opaque","id":"d"}}`},
		{name: "complex member", raw: `{"format":"complex","user":{"format":"email"}}`, want: `subject.user (format email) is missing "email"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.CheckSubject(json.RawMessage(tt.raw))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("want %q, got %q", tt.want, got)
			}
		})
	}
}
