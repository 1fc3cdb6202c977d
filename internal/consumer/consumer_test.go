package consumer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
)

func TestDefaultURL(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{}, "nats://127.0.0.1:4222"},
		{map[string]string{"SETGATE_NATS_URL": "nats://a:4222,nats://b:4222"}, "nats://a:4222,nats://b:4222"},
		{map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": ":5222"}, "nats://127.0.0.1:5222"},
		{map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0"}, "nats://127.0.0.1:4222"},
	}
	for _, tt := range tests {
		s, err := config.Load(tt.vars)
		if err != nil {
			t.Fatal(err)
		}
		if got := DefaultURL(s); got != tt.want {
			t.Errorf("%v: want %q, got %q", tt.vars, tt.want, got)
		}
	}
}

// TestConnectLogin: against a real nats-server that wants user consumer,
// the password file's password logs in; a wrong one and none are refused
// with a hint at what to pass, and errors.Is still finds the cause.
func TestConnectLogin(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: bridge.ConsumerUser, Password: "right-password-0123456789"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	dir := t.TempDir()
	file := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := config.Load(map[string]string{"SETGATE_DATA_DIR": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, passwordFile, wantHint string
	}{
		{"right password", file("right", "right-password-0123456789"), ""},
		{"wrong password", file("wrong", "wrong-password-0123456789"), "with the password file's password was refused"},
		{"no password", "", "the embedded server wants user " + bridge.ConsumerUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := Connect(Options{Settings: s, URL: srv.ClientURL(), PasswordFile: tt.passwordFile})
			if tt.wantHint == "" {
				if err != nil {
					t.Fatal(err)
				}
				nc.Close()
				return
			}
			var ce *ConnectError
			if !errors.As(err, &ce) || !strings.Contains(ce.Hint, tt.wantHint) || !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("want a refusal with hint %q, got %v", tt.wantHint, err)
			}
		})
	}
}

// TestConnectURLUserinfo: a URL with a user part (--server, bench --nats)
// is refused before anything is dialled, with an error that shows the URL
// without it and says what to use instead; no error shows the secret.
func TestConnectURLUserinfo(t *testing.T) {
	const secret = "s3cr3t-nats-password"
	s, err := config.Load(map[string]string{"SETGATE_DATA_DIR": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ url, shown string }{
		{"nats://svc:" + secret + "@127.0.0.1:1", "nats://127.0.0.1:1"},
		{"nats://" + secret + "@127.0.0.1:1", "nats://127.0.0.1:1"},
		{"nats://127.0.0.1:2,nats://svc:" + secret + "/x@127.0.0.1:1", "nats://127.0.0.1:2,nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.shown, func(t *testing.T) {
			_, err := Connect(Options{Settings: s, URL: tt.url})
			want := "NATS URL " + tt.shown + " has a user part (user:password@ or token@), which is refused: remove it and pass --password-file"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("want an error starting with %q, got %v", want, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}

// TestConnectNATSLoginHint: with a SETGATE_NATS_* login set, a refusal
// names that login rather than the embedded server's consumer user.
func TestConnectNATSLoginHint(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Authorization: "right-token"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	s, err := config.Load(map[string]string{"SETGATE_NATS_URL": srv.ClientURL(), "SETGATE_NATS_TOKEN_FILE": "/unused"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Connect(Options{Settings: s, Options: []nats.Option{nats.Token("wrong-token")}})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Hint != " (the server refused the SETGATE_NATS_* login)" || ce.URL != srv.ClientURL() {
		t.Fatalf("want a refusal naming the SETGATE_NATS_* login, got %v", err)
	}
	nc, err := Connect(Options{Settings: s, Options: []nats.Option{nats.Token("right-token")}})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}
