package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpOpening checks that the first paragraph of setgate --help names
// the three ways SETs arrive: push (RFC 8935), poll (RFC 8936) and SSF
// streams.
func TestHelpOpening(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), args, map[string]string{}, &out, &out); err != nil {
				t.Fatal(err)
			}
			opening, _, _ := strings.Cut(out.String(), "\n\n")
			opening = strings.Join(strings.Fields(opening), " ")
			for _, want := range []string{"Security Event Tokens", "push (RFC 8935)", "poll (RFC 8936)", "OpenID Shared Signals (SSF 1.0)", "streams", "NATS JetStream"} {
				if !strings.Contains(opening, want) {
					t.Errorf("want %q in the first paragraph, got %q", want, opening)
				}
			}
		})
	}
}
