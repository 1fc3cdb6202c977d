package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/setgate/setgate/config"
)

// TestServerTLSFilesBounded: the push listener's TLS files are read with
// the same bounds; a FIFO as the key file is refused at once.
func TestServerTLSFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := serverTLS(config.Settings{TLSCertFile: cert, TLSKeyFile: fifo})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "SETGATE_TLS_KEY_FILE") || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("want an error naming SETGATE_TLS_KEY_FILE and the FIFO, got %v", err)
		}
	case <-time.After(reloadGuard): // only stops a hung test (reload_test.go)
		t.Fatal("serverTLS did not return")
	}
}
