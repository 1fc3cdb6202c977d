package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/setgate/setgate/config"
)

// TestStartChecksMaxBodyAgainstMaxPayload: serve refuses to start when a
// SET of SETGATE_MAX_BODY_BYTES could make a NATS message over the
// server's max_payload (it would pass the body limit, then never be
// stored), with an error naming the variable, both sizes and the largest
// value that fits; the defaults start, embedded and against a server
// with the default max_payload (1 MiB).
func TestStartChecksMaxBodyAgainstMaxPayload(t *testing.T) {
	external := func(maxPayload int32) string {
		srv, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload,
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		return srv.ClientURL()
	}
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"embedded, defaults", map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0"}, ""},
		{"external, default max_payload", map[string]string{"SETGATE_NATS_URL": external(0)}, ""},
		{"external, max_payload 64 KiB", map[string]string{"SETGATE_NATS_URL": external(64 << 10)},
			"environment: SETGATE_MAX_BODY_BYTES=65536: a SET that large can make a NATS message of 164325 bytes, " +
				"more than the NATS server's max_payload of 65536 bytes; set SETGATE_MAX_BODY_BYTES to at most 26020 or raise the server's max_payload"},
		{"external, max_payload 64 KiB, the largest body that fits", map[string]string{"SETGATE_NATS_URL": external(64 << 10), "SETGATE_MAX_BODY_BYTES": "26020"}, ""},
		{"embedded, body limit over 1 MiB's bound", map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0", "SETGATE_MAX_BODY_BYTES": "1048576"},
			"environment: SETGATE_MAX_BODY_BYTES=1048576: a SET that large can make a NATS message of 2621925 bytes, " +
				"more than the NATS server's max_payload of 1048576 bytes; set SETGATE_MAX_BODY_BYTES to at most 419236 or raise the server's max_payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_DATA_DIR": t.TempDir()}
			for k, v := range tt.vars {
				vars[k] = v
			}
			s, err := config.Load(vars)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			app, err := NewApp(ctx, s, nil, slog.New(slog.DiscardHandler))
			if err == nil {
				_ = app.close(ctx)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want a start, got %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("want the error\n%s\ngot\n%v", tt.wantErr, err)
			}
		})
	}
}
