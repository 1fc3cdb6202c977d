package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/setgate/setgate/bridge"
)

// TestLoadRefusesNATSURLCredentials: a user part in SETGATE_NATS_URL
// (user:password@ or token@, in any of its URLs) is refused with an error
// that names the variable, shows the URL without the user part, says what
// to use instead and holds no secret.
func TestLoadRefusesNATSURLCredentials(t *testing.T) {
	const secret = "s3cr3t-nats-password"
	tests := []struct {
		name, url, shown string
	}{
		{"user and password", "nats://svc:" + secret + "@nats:4222", "nats://nats:4222"},
		{"token", "nats://" + secret + "@nats:4222", "nats://nats:4222"},
		{"second of two", "nats://a:4222,tls://svc:" + secret + "@b:4222", "nats://a:4222,tls://b:4222"},
		{"no scheme", "svc:" + secret + "@nats:4222", "nats:4222"},
		{"password with a slash", "nats://svc:" + secret + "/x@nats:4222", "nats://nats:4222"},
		{"password with an at", "nats://svc:" + secret + "@x@nats:4222", "nats://nats:4222"},
		{"user only", "nats://svc@nats:4222", "nats://nats:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(map[string]string{"SETGATE_NATS_URL": tt.url})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, want := range []string{`environment: SETGATE_NATS_URL="` + tt.shown + `" has a user part`, "SETGATE_NATS_USER", "SETGATE_NATS_PASSWORD_FILE", "SETGATE_NATS_TOKEN_FILE"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("want an error with %q, got %v", want, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
	for _, ok := range []string{"", "nats://nats:4222", "nats://a:4222, nats://b:4222", "tls://nats.example:4222"} {
		if _, err := Load(map[string]string{"SETGATE_NATS_URL": ok}); err != nil {
			t.Errorf("%q: want no error, got %v", ok, err)
		}
	}
}

// TestValidateNATSLogin: one NATS login at a time, and a user with its
// password file.
func TestValidateNATSLogin(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string // "" = valid
	}{
		{"user and password", map[string]string{"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/pw"}, ""},
		{"token", map[string]string{"SETGATE_NATS_TOKEN_FILE": "/tok"}, ""},
		{"creds", map[string]string{"SETGATE_NATS_CREDS_FILE": "/c.creds"}, ""},
		{"user alone", map[string]string{"SETGATE_NATS_USER": "svc"},
			"environment: SETGATE_NATS_USER and SETGATE_NATS_PASSWORD_FILE go together"},
		{"password alone", map[string]string{"SETGATE_NATS_PASSWORD_FILE": "/pw"},
			"environment: SETGATE_NATS_USER and SETGATE_NATS_PASSWORD_FILE go together"},
		{"user and token", map[string]string{"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/pw", "SETGATE_NATS_TOKEN_FILE": "/tok"},
			"environment: SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE and SETGATE_NATS_TOKEN_FILE: set one NATS login, not two kinds at once"},
		{"creds and token", map[string]string{"SETGATE_NATS_CREDS_FILE": "/c.creds", "SETGATE_NATS_TOKEN_FILE": "/tok"},
			"environment: SETGATE_NATS_CREDS_FILE and SETGATE_NATS_TOKEN_FILE: set one NATS login, not two kinds at once"},
		{"nkey and user", map[string]string{"SETGATE_NATS_NKEY_FILE": "/n.nk", "SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/pw"},
			"environment: SETGATE_NATS_NKEY_FILE and SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE: set one NATS login, not two kinds at once"},
		{"creds and nkey", map[string]string{"SETGATE_NATS_CREDS_FILE": "/c.creds", "SETGATE_NATS_NKEY_FILE": "/n.nk"},
			"environment: SETGATE_NATS_CREDS_FILE and SETGATE_NATS_NKEY_FILE: set one NATS login, not two kinds at once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.vars)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("want %q, got %v", tt.want, err)
			}
		})
	}
}

// TestNATSLogin: the password and token files are read as secret files,
// trimmed; an unreadable, empty, oversized or non-regular file fails with
// an error naming the variable and the file, never the content.
func TestNATSLogin(t *testing.T) {
	const secret = "s3cr3t-nats-password"
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := file("big", secret+strings.Repeat(" ", MaxSecretFileBytes))
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		s       Settings
		want    bridge.Login
		wantErr []string
	}{
		{"none", Settings{}, bridge.Login{}, nil},
		{"user and password", Settings{NATSUser: "svc", NATSPasswordFile: file("pw", "  "+secret+"\n")},
			bridge.Login{User: "svc", Password: secret}, nil},
		{"token", Settings{NATSTokenFile: file("tok", secret+"\r\n")}, bridge.Login{Token: secret}, nil},
		{"missing password file", Settings{NATSUser: "svc", NATSPasswordFile: missing},
			bridge.Login{}, []string{"nats: SETGATE_NATS_PASSWORD_FILE: ", missing, "no such file"}},
		{"empty token file", Settings{NATSTokenFile: file("empty", " \n")},
			bridge.Login{}, []string{"nats: SETGATE_NATS_TOKEN_FILE: ", "is empty"}},
		{"FIFO", Settings{NATSTokenFile: fifo},
			bridge.Login{}, []string{"nats: SETGATE_NATS_TOKEN_FILE: ", fifo, "not a regular file (a FIFO)"}},
		{"directory", Settings{NATSUser: "svc", NATSPasswordFile: dir},
			bridge.Login{}, []string{"nats: SETGATE_NATS_PASSWORD_FILE: ", "a directory"}},
		{"too large", Settings{NATSTokenFile: big},
			bridge.Login{}, []string{"nats: SETGATE_NATS_TOKEN_FILE: ", big, "larger than 64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.NATSLogin()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("want %+v, got %+v", tt.want, got) // Secret prints redacted
				}
				if string(got.Password) != string(tt.want.Password) || string(got.Token) != string(tt.want.Token) {
					t.Fatal("the secret read differs from the file's")
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want an error with %q, got %v", w, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}
