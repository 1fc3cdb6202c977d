package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
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

// demoChildEnv marks the process TestDemoSIGHUP starts: it runs the
// demo through main, as the setgate binary does.
const demoChildEnv = "SETGATE_DEMO_SIGHUP_CHILD"

// TestDemoSIGHUP sends SIGHUP to a process running the demo (this test
// binary started again, running main with "demo"): the demo says it has
// nothing to reload and runs on — after the signal it still pushes and
// gets 202s and its admin server still answers — and SIGTERM still stops
// it cleanly. Without the demo's handling, SIGHUP's default action ends
// the process.
func TestDemoSIGHUP(t *testing.T) {
	if os.Getenv(demoChildEnv) == "1" {
		os.Args = []string{"setgate", "demo", "-interval", "50ms"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoSIGHUP$", "-test.count=1")
	cmd.Env = append(os.Environ(), demoChildEnv+"=1",
		"SETGATE_HTTP_ADDR=127.0.0.1:0", "SETGATE_ADMIN_ADDR=127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR=127.0.0.1:0")
	var out, errOut verbBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// waitFor waits until the demo's output after offset from contains
	// want, failing when the demo has ended.
	waitFor := func(what string, from int, want string) int {
		t.Helper()
		at := -1
		verbWaitUntil(t, what, func() bool {
			select {
			case <-exited:
				t.Fatalf("the demo ended (%v) while waiting for %s\nstdout:\n%s\nstderr:\n%s", waitErr, what, out.String(), errOut.String())
			default:
			}
			s := out.String()
			if i := strings.Index(s[from:], want); i >= 0 {
				at = from + i + len(want)
			}
			return at >= 0
		})
		return at
	}

	at := waitFor("the first 202", 0, "202 Accepted")
	admin := regexp.MustCompile(`admin (http://\S+),`).FindStringSubmatch(out.String())
	if admin == nil {
		t.Fatalf("no admin URL in the demo's output:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	at = waitFor("the demo's answer to SIGHUP", at, "SIGHUP: the demo's issuers are built in, there is no issuers file to reload; running on")
	waitFor("a 202 after SIGHUP", at, "202 Accepted")
	resp, err := http.Get(admin[1] + "/healthz")
	if err != nil {
		t.Fatalf("admin after SIGHUP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /healthz after SIGHUP: want 200, got %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-exited
	if waitErr != nil {
		t.Fatalf("demo after SIGTERM: %v\nstderr:\n%s", waitErr, errOut.String())
	}
	if !strings.Contains(out.String(), "stopping…") {
		t.Errorf("want the demo to say it is stopping, got:\n%s", out.String())
	}
}
