package bridge

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strconv"
	"testing"
)

// TestMsgID: the Nats-Msg-Id is the documented function of iss, jti and
// the event type (stable across calls and releases: a retry after a
// restart must map to the same id), 24 base64url characters, and differs
// whenever one of the three differs, including when NUL-free inputs are
// split at another place.
func TestMsgID(t *testing.T) {
	const (
		iss = "https://idp.acme.example/"
		jti = "3d0c3cf797584bd193bd0fb1bd4e7d30"
		typ = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	)
	// README "Subjects and messages": base64url (no padding) of the first
	// 18 bytes of SHA-256(iss NUL jti NUL event type), computed here
	// without MsgID, and pinned as a literal so a change of format cannot
	// go unnoticed.
	sum := sha256.Sum256([]byte(iss + "\x00" + jti + "\x00" + typ))
	for _, want := range []string{base64.RawURLEncoding.EncodeToString(sum[:18]), "AMLm47tI4lI2jqNhaLOGa-TD"} {
		if got := MsgID(iss, jti, typ); got != want {
			t.Fatalf("want %q, got %q", want, got)
		}
	}
	if MsgID(iss, jti, typ) != MsgID(iss, jti, typ) {
		t.Fatal("want the same id for the same inputs")
	}
	shape := regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`)

	tests := []struct {
		name          string
		iss, jti, typ string
	}{
		{"base", iss, jti, typ},
		{"other iss", "https://idp.other.example/", jti, typ},
		{"other jti", iss, jti + "x", typ},
		{"other type", iss, jti, "https://schemas.openid.net/secevent/caep/event-type/credential-change"},
		{"boundary moved iss/jti", iss + "3", jti[1:], typ},
		{"boundary moved jti/type", iss, jti + "h", typ[1:]},
		{"empty jti", iss, "", typ},
		{"empty all", "", "", ""},
		{"non-ASCII", "https://idp.example/ü", "jti-ü", typ},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := MsgID(tt.iss, tt.jti, tt.typ)
			if !shape.MatchString(id) {
				t.Errorf("want 24 base64url characters, got %q (%d)", id, len(id))
			}
			if other, dup := seen[id]; dup {
				t.Errorf("want distinct ids, got %q for %q and %q", id, tt.name, other)
			}
			seen[id] = tt.name
		})
	}

	// Many distinct jtis of one issuer and type: no two ids equal.
	ids := make(map[string]int, 100_000)
	for i := range 100_000 {
		id := MsgID(iss, "jti-"+strconv.Itoa(i), typ)
		if j, dup := ids[id]; dup {
			t.Fatalf("want distinct ids, got %q for jti %d and %d", id, i, j)
		}
		ids[id] = i
	}
}
