package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangGuard returns a channel that fires shortly before the test's
// deadline (or after a minute without one): a hang detector, not a bound
// on speed.
func hangGuard(t *testing.T) <-chan time.Time {
	d := time.Minute
	if dl, ok := t.Deadline(); ok {
		d = time.Until(dl) - 5*time.Second
	}
	return time.After(d)
}

// loadInBackground runs LoadIssuers in a goroutine and returns its error;
// it fails the test if the load does not return on its own.
func loadInBackground(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := LoadIssuers(path, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-hangGuard(t):
		t.Fatalf("LoadIssuers(%s) did not return", path)
		return nil
	}
}

func issuersWithSecret(t *testing.T, dir, secretPath string) string {
	t.Helper()
	path := filepath.Join(dir, "issuers.yaml")
	yaml := "issuers:" + strings.Replace(goodIssuer, "/secrets/acme", secretPath, 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigReadsAreBounded: the issuers file and the secret files it
// names must be regular files of at most 1 MiB and 64 KiB; a FIFO or a
// device is refused at once (nothing writes to the FIFO here: a load that
// opened it for reading would block for ever), and every error names the
// file, and the issuer and key for a secret.
func TestConfigReadsAreBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "token.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big-token")
	if err := os.WriteFile(big, []byte(strings.Repeat("a", 100<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	limit := filepath.Join(dir, "limit-token")
	if err := os.WriteFile(limit, []byte(strings.Repeat("a", 64<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	hugeIssuers := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(hugeIssuers, []byte("issuers:"+goodIssuer+"# "+strings.Repeat("x", 2<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifoIssuers := filepath.Join(dir, "issuers.fifo")
	if err := syscall.Mkfifo(fifoIssuers, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		wantErr []string // substrings; nil: success
	}{
		{"FIFO as secret file", issuersWithSecret(t, t.TempDir(), fifo), []string{`issuer "acme"`, "push.bearer_token_file", fifo, "not a regular file", "FIFO"}},
		{"device as secret file", issuersWithSecret(t, t.TempDir(), "/dev/zero"), []string{`issuer "acme"`, "push.bearer_token_file", "/dev/zero", "not a regular file"}},
		{"directory as secret file", issuersWithSecret(t, t.TempDir(), dir), []string{"push.bearer_token_file", dir, "directory"}},
		{"100 KiB secret file", issuersWithSecret(t, t.TempDir(), big), []string{`issuer "acme"`, "push.bearer_token_file", big, "larger than 64 KiB"}},
		{"64 KiB secret file", issuersWithSecret(t, t.TempDir(), limit), nil},
		{"2 MiB issuers file", hugeIssuers, []string{"issuers file", hugeIssuers, "larger than 1 MiB"}},
		{"FIFO as issuers file", fifoIssuers, []string{"issuers file", fifoIssuers, "not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadInBackground(t, tt.path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error, got success")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want the error to contain %q, got %q", w, err)
				}
			}
			if strings.Contains(err.Error(), "aaaa") {
				t.Errorf("the error shows the secret: %q", err)
			}
		})
	}
}
