package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs one pass of the demo's script on random ports and checks
// that a reader sees events stored on their subjects and every kind of
// rejection.
func TestDemo(t *testing.T) {
	var out, errOut verbBuffer
	vars := map[string]string{
		"SETGATE_HTTP_ADDR":          "127.0.0.1:0",
		"SETGATE_ADMIN_ADDR":         "127.0.0.1:0",
		"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"demo", "-count", "14", "-interval", "100ms"}, vars, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"stored #1", "secevent.caep.session-revoked.acme-idp", "secevent.risc.account-disabled.globex-risc",
		"202 Accepted", "400 invalid_audience", "400 invalid_key", "400 invalid_request",
		"403 access_denied", "401 authentication_failed", "initech-poll", "setgate.rejected.acme-idp", "sgnl-ssf",
		"--user consumer --password \"$(cat ", "consumer.password)\"", "setgate tail --server nats://127.0.0.1:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q\n%s", want, got)
		}
	}
}
