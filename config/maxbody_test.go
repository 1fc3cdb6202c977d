package config

import (
	"strings"
	"testing"

	"github.com/setgate/setgate/bridge"
)

// TestCheckMaxBody: SETGATE_MAX_BODY_BYTES is checked against the NATS
// server's max_payload with the message size bound of the bridge; the
// largest value it names is accepted, one more is not, and an unknown
// max_payload (0: not connected) is not held against it.
func TestCheckMaxBody(t *testing.T) {
	fits := bridge.MaxSETBytes(1<<20, "SECEVENTS")
	tests := []struct {
		name       string
		body       int64
		maxPayload int64
		wantErr    string
	}{
		{"default against 1 MiB", 65536, 1 << 20, ""},
		{"the largest that fits 1 MiB", fits, 1 << 20, ""},
		{"one more", fits + 1, 1 << 20, "SETGATE_MAX_BODY_BYTES=419237: a SET that large can make a NATS message of 1048578 bytes, more than the NATS server's max_payload of 1048576 bytes; set SETGATE_MAX_BODY_BYTES to at most 419236"},
		{"max_payload unknown", 1 << 30, 0, ""},
		{"max_payload below any SET", 1, 100, "set SETGATE_MAX_BODY_BYTES to at most 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			s.MaxBodyBytes = tt.body
			err := s.CheckMaxBody(tt.maxPayload)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want nil, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "environment: ") {
				t.Fatalf("want an environment error containing %q, got %v", tt.wantErr, err)
			}
		})
	}
}
