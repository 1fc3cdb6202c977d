package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setgate/setgate/config"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startIssuers writes an issuers file whose JWKS is never fetched before
// the failures below.
func startIssuers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "issuers.yaml")
	yaml := "issuers:" + strings.Replace(goodIssuer, "/secrets/acme", filepath.Join(dir, "token"), 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStartFailureStopsWhatStarted: serve returns the start error (no
// panic) and leaves nothing behind: after NATS was unreachable the push
// and admin ports, bound before, are free again; with the push port in use
// the embedded NATS server was never started (its store is empty).
func TestStartFailureStopsWhatStarted(t *testing.T) {
	t.Run("NATS unreachable", func(t *testing.T) {
		push, admin := freeAddr(t), freeAddr(t)
		vars := map[string]string{
			"SETGATE_HTTP_ADDR": push, "SETGATE_ADMIN_ADDR": admin, "SETGATE_NATS_URL": "nats://" + freeAddr(t),
			"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": startIssuers(t),
		}
		s, err := config.Load(vars)
		if err != nil {
			t.Fatal(err)
		}
		err = serve(context.Background(), s, vars, slog.New(slog.DiscardHandler), func(*App) { t.Error("started") })
		if err == nil || !strings.Contains(err.Error(), "NATS") {
			t.Fatalf("want an error naming NATS, got %v", err)
		}
		for _, addr := range []string{push, admin} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("%s still bound after the failed start: %v", addr, err)
			}
			ln.Close()
		}
	})
	t.Run("push port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		dataDir := t.TempDir()
		vars := map[string]string{
			"SETGATE_HTTP_ADDR": busy.Addr().String(), "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
			"SETGATE_DATA_DIR": dataDir, "SETGATE_ISSUERS_FILE": startIssuers(t),
		}
		s, err := config.Load(vars)
		if err != nil {
			t.Fatal(err)
		}
		err = serve(context.Background(), s, vars, slog.New(slog.DiscardHandler), func(*App) { t.Error("started") })
		want := "push listener on " + busy.Addr().String() + ": address already in use"
		if err == nil || err.Error() != want {
			t.Fatalf("want %q, got %v", want, err)
		}
		if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
			t.Errorf("the embedded NATS server was started: %s holds %v", dataDir, entries)
		}
	})
}
