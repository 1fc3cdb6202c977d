package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// hash8 is the first 8 hex digits of sha256(s).
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// checkSubject fails unless subj has four valid tokens.
func checkSubject(tb testing.TB, subj string) {
	tb.Helper()
	toks := strings.Split(subj, ".")
	if len(toks) != 4 {
		tb.Fatalf("subject %q: want 4 tokens, got %d", subj, len(toks))
	}
	for _, tok := range toks {
		if !isToken(tok) {
			tb.Fatalf("subject %q: invalid token %q", subj, tok)
		}
	}
}

func TestSubjectsFor(t *testing.T) {
	s, err := NewSubjects("secevent")
	if err != nil {
		t.Fatal(err)
	}
	long := "https://example.com/events/" + strings.Repeat("very-long-name-", 10)
	tests := []struct {
		name      string
		issuer    string
		eventType string
		overrides map[string]string
		want      string
	}{
		{name: "https url", issuer: "acme", eventType: "https://example.com/events/user-locked",
			want: "secevent.ext.user-locked-" + hash8("https://example.com/events/user-locked") + ".acme"},
		{name: "trailing slash", issuer: "acme", eventType: "https://example.com/events/user-locked/",
			want: "secevent.ext.user-locked-" + hash8("https://example.com/events/user-locked/") + ".acme"},
		{name: "urn", issuer: "acme", eventType: "urn:example:secevent:Account_Locked",
			want: "secevent.ext.account-locked-" + hash8("urn:example:secevent:Account_Locked") + ".acme"},
		{name: "fragment", issuer: "acme", eventType: "https://example.com/schema#PasswordReset",
			want: "secevent.ext.passwordreset-" + hash8("https://example.com/schema#PasswordReset") + ".acme"},
		{name: "weird chars", issuer: "acme", eventType: "https://x.example/ a.b*c>d é ",
			want: "secevent.ext.a-b-c-d-" + hash8("https://x.example/ a.b*c>d é ") + ".acme"},
		{name: "nothing usable", issuer: "acme", eventType: "https://x.example/***/",
			want: "secevent.ext.event-" + hash8("https://x.example/***/") + ".acme"},
		{name: "empty", issuer: "acme", eventType: "",
			want: "secevent.ext.event-" + hash8("") + ".acme"},
		{name: "very long", issuer: "acme", eventType: long,
			want: "secevent.ext." + strings.TrimRight(strings.Repeat("very-long-name-", 10)[:40], "-") + "-" + hash8(long) + ".acme"},
		{name: "misspelled known", issuer: "acme", eventType: caepBase + "session-revokd",
			want: "secevent.ext.session-revokd-" + hash8(caepBase+"session-revokd") + ".acme"},
		{name: "known under wrong family", issuer: "acme", eventType: riscBase + "session-revoked",
			want: "secevent.ext.session-revoked-" + hash8(riscBase+"session-revoked") + ".acme"},
		{name: "override wins", issuer: "acme", eventType: "https://example.com/events/user-locked",
			overrides: map[string]string{"https://example.com/events/user-locked": "acme.user-locked"},
			want:      "secevent.acme.user-locked.acme"},
		{name: "override of known type", issuer: "acme", eventType: sessionRevoked,
			overrides: map[string]string{sessionRevoked: "auth.logout"},
			want:      "secevent.auth.logout.acme"},
		{name: "override for another type", issuer: "acme", eventType: sessionRevoked,
			overrides: map[string]string{credentialChange: "auth.creds"},
			want:      "secevent.caep.session-revoked.acme"},
		{name: "invalid override ignored", issuer: "acme", eventType: sessionRevoked,
			overrides: map[string]string{sessionRevoked: "a.b.c"},
			want:      "secevent.caep.session-revoked.acme"},
		{name: "invalid issuer name", issuer: "ac.me*", eventType: sessionRevoked,
			want: "secevent.caep.session-revoked.ac-me-" + hash8("ac.me*")},
	}
	for uri, short := range knownTypes {
		tests = append(tests, struct {
			name      string
			issuer    string
			eventType string
			overrides map[string]string
			want      string
		}{name: "known " + short, issuer: "acme", eventType: uri, want: "secevent." + short + ".acme"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.For(tt.issuer, tt.eventType, tt.overrides)
			if got != tt.want {
				t.Errorf("want %q, got %q", tt.want, got)
			}
			checkSubject(t, got)
		})
	}
}

func TestKnownTypesComplete(t *testing.T) {
	want := map[string][]string{
		caepBase: {"session-revoked", "token-claims-change", "credential-change", "assurance-level-change",
			"device-compliance-change", "session-established", "session-presented", "risk-level-change"},
		riscBase: {"account-credential-change-required", "account-purged", "account-disabled", "account-enabled",
			"identifier-changed", "identifier-recycled", "credential-compromise", "opt-in", "opt-out-initiated",
			"opt-out-cancelled", "opt-out-effective", "recovery-activated", "recovery-information-changed", "sessions-revoked"},
		ssfBase: {"verification", "stream-updated"},
	}
	family := map[string]string{caepBase: "caep", riscBase: "risc", ssfBase: "ssf"}
	n := 0
	for base, suffixes := range want {
		for _, suffix := range suffixes {
			n++
			if got := knownTypes[base+suffix]; got != family[base]+"."+suffix {
				t.Errorf("%s: want %q, got %q", base+suffix, family[base]+"."+suffix, got)
			}
		}
	}
	if len(knownTypes) != n {
		t.Errorf("want %d known types, got %d", n, len(knownTypes))
	}
}

func TestNewSubjects(t *testing.T) {
	for _, p := range []string{"secevent", "Sec_Events-2"} {
		if _, err := NewSubjects(p); err != nil {
			t.Errorf("NewSubjects(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "a.b", "a*", ">", "a b", "é"} {
		if _, err := NewSubjects(p); err == nil || !strings.HasPrefix(err.Error(), "bridge: ") {
			t.Errorf("NewSubjects(%q): want a bridge: error, got %v", p, err)
		}
	}
}

func TestValidateOverride(t *testing.T) {
	tests := []struct {
		name    string
		v       string
		wantErr bool
	}{
		{name: "caep", v: "caep.session-revoked"},
		{name: "underscore and digits", v: "my_family.event_2"},
		{name: "empty", v: "", wantErr: true},
		{name: "one token", v: "caep", wantErr: true},
		{name: "three tokens", v: "caep.session.revoked", wantErr: true},
		{name: "empty family", v: ".revoked", wantErr: true},
		{name: "empty event", v: "caep.", wantErr: true},
		{name: "uppercase", v: "CAEP.session-revoked", wantErr: true},
		{name: "wildcard", v: "caep.*", wantErr: true},
		{name: "full wildcard", v: "caep.>", wantErr: true},
		{name: "space", v: "caep.session revoked", wantErr: true},
		{name: "non-ascii", v: "caep.sessión", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOverride(tt.v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, got %v", tt.wantErr, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "bridge: ") {
				t.Errorf("want a bridge: error, got %q", err)
			}
		})
	}
}

func FuzzSubjectsFor(f *testing.F) {
	for _, seed := range []string{"", sessionRevoked, "urn:a:b", "https://x/#frag", "a/b:c#d", "////", "é.*>", strings.Repeat("x", 200)} {
		f.Add(seed, "acme")
	}
	s, err := NewSubjects("secevent")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, eventType, issuer string) {
		got := s.For(issuer, eventType, nil)
		checkSubject(t, got)
		if again := s.For(issuer, eventType, nil); again != got {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
		if o := eventTokens(eventType, nil); ValidateOverride(o) != nil && !strings.HasPrefix(o, "ext.") {
			t.Fatalf("event tokens %q are not a valid pair", o)
		}
	})
}
