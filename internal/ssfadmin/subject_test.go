package ssfadmin

import "testing"

// TestBuildSubject: member flags make RFC 9493 subjects of each format;
// what a strict issuer would refuse is refused.
func TestBuildSubject(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		raw     string
		values  map[string]string
		members []string
		ips     []string
		want    string // "" wants an error
	}{
		{name: "ip-addresses", format: "ip-addresses", ips: []string{"192.0.2.1", "2001:db8::1"}, want: `{"format":"ip-addresses","ip-addresses":["192.0.2.1","2001:db8::1"]}`},
		{name: "account", format: "account", values: map[string]string{"uri": "acct:alice@example.com"}, want: `{"format":"account","uri":"acct:alice@example.com"}`},
		{name: "jwt_id", format: "jwt_id", values: map[string]string{"iss": "https://idp.example/", "jti": "j1"}, want: `{"format":"jwt_id","iss":"https://idp.example/","jti":"j1"}`},
		{name: "did", format: "did", values: map[string]string{"url": "did:example:123"}, want: `{"format":"did","url":"did:example:123"}`},
		{name: "aliases as JSON", raw: `{"format":"aliases","identifiers":[{"format":"email","email":"a@example.com"}]}`, want: `{"format":"aliases","identifiers":[{"format":"email","email":"a@example.com"}]}`},
		{name: "account not acct", format: "account", values: map[string]string{"uri": "https://x.example/"}},
		{name: "phone not E.164", format: "phone_number", values: map[string]string{"phone_number": "555-0100"}},
		{name: "member twice", format: "email", values: map[string]string{"email": "a@example.com"}, members: []string{"email=b@example.com"}},
		{name: "member without =", format: "opaque", members: []string{"id"}},
		{name: "not JSON", raw: `{"format":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildSubject(SubjectInput{Format: tt.format, Raw: tt.raw, Values: tt.values, Members: tt.members, IPs: tt.ips})
			switch {
			case tt.want == "" && err == nil:
				t.Fatalf("want an error, got %s", got)
			case tt.want != "" && err != nil:
				t.Fatalf("want %s, got %v", tt.want, err)
			case tt.want != "" && string(got) != tt.want:
				t.Fatalf("want %s, got %s", tt.want, got)
			}
		})
	}
}
