package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeCPUProfile: setgate serve --cpuprofile FILE writes a pprof
// profile (gzip) when serve returns, here at once because NATS is
// unreachable; a path that cannot be created is a one-line error.
func TestServeCPUProfile(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"written on exit", filepath.Join(t.TempDir(), "cpu.pprof"), "NATS"},
		{"path not writable", filepath.Join(t.TempDir(), "missing", "cpu.pprof"), "--cpuprofile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{
				"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_NATS_URL": "nats://" + freeAddr(t),
				"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": startIssuers(t),
			}
			var out bytes.Buffer
			err := run(t.Context(), []string{"serve", "--cpuprofile", tt.path}, vars, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error naming %s, got %v", tt.wantErr, err)
			}
			if tt.wantErr != "NATS" {
				return
			}
			b, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("want a gzipped pprof profile, got %d bytes", len(b))
			}
		})
	}
}
