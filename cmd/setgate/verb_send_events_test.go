package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// TestSendVerbEveryEventAccepted: for every event type setgate knows,
// "setgate send --event <type>" without --payload signs a SET that a
// strict issuer accepts.
func TestSendVerbEveryEventAccepted(t *testing.T) {
	keyPath, jwks := verbGenKey(t)
	rec := newVerbPushRecorder(t, http.StatusAccepted, "")
	rec.setJWKS(jwks)
	v, err := verify.New(t.Context(), verify.Config{
		Name: "acme", Issuer: "https://tx.example/", Audience: []string{verbAudience},
		JWKSURI: rec.srv.URL + "/jwks", Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	types := verify.KnownEventTypes()
	if len(types) < 20 {
		t.Fatalf("want every known event type, got %d", len(types))
	}
	for i, typ := range types {
		short := typ
		for family, base := range transmitter.EventFamilies() {
			if rest, ok := strings.CutPrefix(typ, base); ok {
				short = family + "." + rest
			}
		}
		t.Run(short, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := sendVerb(t.Context(), []string{"--to", rec.srv.URL + "/events/acme", "--key", keyPath,
				"--iss", "https://tx.example/", "--aud", verbAudience, "--email", "alice@acme.example", "--event", short}, &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\n%s", err, errOut.String())
			}
			reqs := rec.requests()
			got, err := v.Verify(t.Context(), reqs[i].body)
			if err != nil {
				t.Fatalf("a strict issuer refuses the default %s: %v", short, err)
			}
			if len(got.Warnings) != 0 || got.Events[0].Type != typ {
				t.Fatalf("want %s without warnings, got %s %q", typ, got.Events[0].Type, got.Warnings)
			}
		})
	}
}

// TestSendVerbIdentifierNeedsEmail: an identifier event without --email is
// refused before anything is sent.
func TestSendVerbIdentifierNeedsEmail(t *testing.T) {
	keyPath, _ := verbGenKey(t)
	rec := newVerbPushRecorder(t, http.StatusAccepted, "")
	err := sendVerb(t.Context(), []string{"--to", rec.srv.URL + "/events/acme", "--key", keyPath,
		"--iss", "https://tx.example/", "--event", "risc.identifier-changed"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--email") || len(rec.requests()) != 0 {
		t.Fatalf("want a refusal naming --email and nothing sent, got %v (%d sent)", err, len(rec.requests()))
	}
}
