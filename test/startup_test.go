package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// startFailing runs setgate serve with env over a working default (the
// issuers of is, loopback ports, embedded NATS in a temp dir) and expects
// it to exit non-zero on its own; it returns what it wrote to stderr.
func startFailing(t *testing.T, is *issuers, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong) // hang guard only
	defer cancel()
	vars := map[string]string{
		"SETGATE_ISSUERS_FILE":       is.file,
		"SETGATE_HTTP_ADDR":          "127.0.0.1:0",
		"SETGATE_ADMIN_ADDR":         "127.0.0.1:0",
		"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR":           t.TempDir(),
		"SETGATE_LOG_FORMAT":         "json",
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = childEnv(vars)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("setgate did not exit on its own; output:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v; output:\n%s", err, stderr.String())
	}
	return stderr.String()
}

// occupied listens on a loopback port for the rest of the test and
// returns its address.
func occupied(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestStartFailures: every failure to start exits non-zero with one line
// "setgate: <cause>" naming the part and the reason, never a panic.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	is := newIssuers(t)
	dir := t.TempDir()
	badCert := filepath.Join(dir, "cert.pem")
	writeFile(t, badCert, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	badKey := filepath.Join(dir, "key.pem")
	writeFile(t, badKey, "not a key\n")
	fifo := filepath.Join(dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoSecret := filepath.Join(dir, "issuers-fifo.yaml")
	data, err := os.ReadFile(is.file)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, fifoSecret, strings.Replace(string(data), filepath.Join(filepath.Dir(is.file), "acme.token"), fifo, 1))
	hugeIssuers := filepath.Join(dir, "huge.yaml")
	writeFile(t, hugeIssuers, string(data)+"# "+strings.Repeat("x", 2<<20)+"\n")

	pushAddr, adminAddr, natsAddr := occupied(t), occupied(t), occupied(t)
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the "setgate: " line
	}{
		{"NATS unreachable", map[string]string{"SETGATE_NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))}, []string{"NATS", "127.0.0.1"}},
		{"embedded NATS port in use", map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": natsAddr}, []string{"embedded NATS", natsAddr, "address already in use"}},
		{"push port in use", map[string]string{"SETGATE_HTTP_ADDR": pushAddr}, []string{"push listener on " + pushAddr + ": address already in use"}},
		{"admin port in use", map[string]string{"SETGATE_ADMIN_ADDR": adminAddr}, []string{"admin listener on " + adminAddr + ": address already in use"}},
		{"bad TLS certificate", map[string]string{"SETGATE_TLS_CERT_FILE": badCert, "SETGATE_TLS_KEY_FILE": badKey}, []string{"tls", badCert}},
		{"missing TLS key", map[string]string{"SETGATE_TLS_CERT_FILE": badCert, "SETGATE_TLS_KEY_FILE": filepath.Join(dir, "nope.pem")}, []string{"SETGATE_TLS_KEY_FILE", "nope.pem", "no such file"}},
		{"FIFO as TLS key", map[string]string{"SETGATE_TLS_CERT_FILE": badCert, "SETGATE_TLS_KEY_FILE": fifo}, []string{"SETGATE_TLS_KEY_FILE", fifo, "not a regular file"}},
		{"FIFO as NATS creds", map[string]string{"SETGATE_NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)), "SETGATE_NATS_CREDS_FILE": fifo}, []string{"SETGATE_NATS_CREDS_FILE", fifo, "not a regular file"}},
		{"FIFO as secret file", map[string]string{"SETGATE_ISSUERS_FILE": fifoSecret}, []string{`issuer "acme"`, "push.bearer_token_file", fifo, "not a regular file"}},
		{"2 MiB issuers file", map[string]string{"SETGATE_ISSUERS_FILE": hugeIssuers}, []string{hugeIssuers, "larger than 1 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := startFailing(t, is, tt.env)
			for _, bad := range []string{"panic", "goroutine "} {
				if strings.Contains(out, bad) {
					t.Fatalf("output contains %q:\n%s", bad, out)
				}
			}
			// Log records are JSON lines; the cause is the one plain line.
			var causes []string
			for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "{") {
					causes = append(causes, line)
				}
			}
			if len(causes) != 1 || !strings.HasPrefix(causes[0], "setgate: ") {
				t.Fatalf("want one line \"setgate: <cause>\" besides the JSON log, got %q; output:\n%s", causes, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(causes[0], w) {
					t.Errorf("want the cause to contain %q, got %q", w, causes[0])
				}
			}
			t.Logf("%s", causes[0])
		})
	}
}
