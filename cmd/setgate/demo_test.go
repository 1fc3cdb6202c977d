package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// TestDemoWatchLine follows the demo's "Watch with any NATS client" line:
// its server and password file let user consumer read the events, and
// an anonymous client is refused.
func TestDemoWatchLine(t *testing.T) {
	var out, errOut verbBuffer
	vars := map[string]string{
		"SETGATE_HTTP_ADDR":          "127.0.0.1:0",
		"SETGATE_ADMIN_ADDR":         "127.0.0.1:0",
		"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "-interval", "50ms"}, vars, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v\n%s", err, errOut.String())
		}
	})
	line := regexp.MustCompile(`nats sub 'secevent\.>' --server (\S+) --user consumer --password "\$\(cat (\S+)\)"`)
	var m []string
	verbWaitUntil(t, "the watch line", func() bool {
		m = line.FindStringSubmatch(out.String())
		return m != nil
	})
	server, file := m[1], m[2]
	if nc, err := nats.Connect(server); err == nil {
		nc.Close()
		t.Fatal("anonymous client admitted")
	}
	pw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(server, nats.UserInfo("consumer", strings.TrimSpace(string(pw))))
	if err != nil {
		t.Fatalf("connect as the watch line says: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("secevent.>")
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.NextMsg(30 * time.Second); err != nil || !strings.HasPrefix(msg.Subject, "secevent.") {
		t.Fatalf("want an event, got %v, %v", msg, err)
	}
}
