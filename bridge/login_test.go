package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The secrets of the login tests: none may appear in a log, an error or
// a URL shown.
const (
	loginUser     = "svc"
	loginPassword = "s3cr3t-nats-password"
	loginToken    = "s3cr3t-nats-token"
)

// runLoginServers starts two nats-servers with JetStream: one wanting user
// loginUser with loginPassword, one wanting loginToken.
func runLoginServers(tb testing.TB) (userURL, tokenURL string) {
	tb.Helper()
	users := runServerOpts(tb, &server.Options{Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		Users: []*server.User{{Username: loginUser, Password: loginPassword}}})
	token := runServerOpts(tb, &server.Options{Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		Authorization: loginToken})
	return users.ClientURL(), token.ClientURL()
}

// assertNoSecret fails when s holds any of the login secrets.
func assertNoSecret(tb testing.TB, what, s string) {
	tb.Helper()
	for _, secret := range []string{loginPassword, loginToken} {
		if strings.Contains(s, secret) {
			tb.Errorf("%s holds the secret %q:\n%s", what, secret, s)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in, want string
		userinfo bool
	}{
		{"", "", false},
		{"nats://nats:4222", "nats://nats:4222", false},
		{"nats://a:4222, nats://b:4222", "nats://a:4222, nats://b:4222", false},
		{"nats://svc:s3cr3t@nats:4222", "nats://nats:4222", true},
		{"nats://s3cr3t@nats:4222", "nats://nats:4222", true},
		{"tls://svc:s3cr3t@nats:4222", "tls://nats:4222", true},
		{"nats://a:4222,nats://svc:s3cr3t@b:4222", "nats://a:4222,nats://b:4222", true},
		{"svc:s3cr3t@nats:4222", "nats:4222", true},
		{"nats://svc:pa/ss@nats:4222", "nats://nats:4222", true},
		{"nats://svc:p@ss@nats:4222", "nats://nats:4222", true},
		{"nats://svc:p%zz@nats:4222", "nats://nats:4222", true},
		{"ws://svc:pw@nats:443/path", "ws://nats:443/path", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL: want %q, got %q", tt.want, got)
			}
			if got := URLHasUserinfo(tt.in); got != tt.userinfo {
				t.Errorf("URLHasUserinfo: want %v, got %v", tt.userinfo, got)
			}
		})
	}
}

// TestSecretNeverShown: a Config holding a login prints, logs and
// marshals without the secrets.
func TestSecretNeverShown(t *testing.T) {
	cfg := testConfig("nats://nats:4222")
	cfg.Login = Login{User: loginUser, Password: loginPassword, Token: loginToken}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "password", cfg.Login.Password)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "login", cfg.Login, "token", cfg.Login.Token)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ what, text string }{
		{"%v", fmt.Sprintf("%v", cfg)},
		{"%+v", fmt.Sprintf("%+v", cfg)},
		{"%#v", fmt.Sprintf("%#v", cfg)},
		{"%s", fmt.Sprintf("%s", cfg.Login.Password)},
		{"%q", fmt.Sprintf("%q", cfg.Login.Token)},
		{"%x", fmt.Sprintf("%x", cfg.Login.Token)},
		{"slog", logs.String()},
		{"json", string(js)},
	} {
		assertNoSecret(t, s.what, s.text)
	}
	if string(cfg.Login.Password) != loginPassword {
		t.Errorf("string(Secret) must be the value")
	}
}

// TestOpenLogin: Open logs in to a server that wants a user and password
// or a token with the Login; a wrong or missing one fails with an error
// that says which login was refused and holds no secret.
func TestOpenLogin(t *testing.T) {
	userURL, tokenURL := runLoginServers(t)
	tests := []struct {
		name    string
		url     string
		login   Login
		wantErr string // "" = connects
	}{
		{"user and password", userURL, Login{User: loginUser, Password: loginPassword}, ""},
		{"token", tokenURL, Login{Token: loginToken}, ""},
		{"wrong password", userURL, Login{User: loginUser, Password: "wrong-" + loginPassword}, `(the server refused user "svc" with the password file's password)`},
		{"wrong user", userURL, Login{User: "other", Password: loginPassword}, `(the server refused user "other" with the password file's password)`},
		{"wrong token", tokenURL, Login{Token: "wrong-" + loginToken}, "(the server refused the token file's token)"},
		{"token at the user server", userURL, Login{Token: loginToken}, "(the server refused the token file's token)"},
		{"no login", userURL, Login{}, "(the server wants a login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := testConfig(tt.url)
			cfg.Login = tt.login
			b, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer b.Close(context.Background())
				if _, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-login", sessionRevoked), DeliveryPush, time.Now()); err != nil {
					t.Fatalf("PublishSET: %v", err)
				}
				if b.ClientURL() != tt.url {
					t.Errorf("ClientURL: want %q, got %q", tt.url, b.ClientURL())
				}
			} else {
				if err == nil {
					b.Close(context.Background())
					t.Fatal("Open: want an error")
				}
				want := "bridge: connect to NATS at " + tt.url + ": nats: authorization violation " + tt.wantErr
				if !strings.HasPrefix(strings.ToLower(err.Error()), strings.ToLower(want)) || !errors.Is(err, nats.ErrAuthorization) {
					t.Errorf("want an error starting with %q, got %v", want, err)
				}
				assertNoSecret(t, "the error", err.Error())
			}
			assertNoSecret(t, "the log", logs.String())
		})
	}
}

// TestOpenURLSecretNeverShown: nats.go takes user:password@ or token@ in
// the URL as a login (config refuses it, but a Config built in code may
// hold one); the log, ClientURL (served on /issuers, logged by "setgate
// started") and Open's errors never show it.
func TestOpenURLSecretNeverShown(t *testing.T) {
	userURL, tokenURL := runLoginServers(t)
	with := func(u, userinfo string) string { return strings.Replace(u, "nats://", "nats://"+userinfo+"@", 1) }
	t.Run("connects", func(t *testing.T) {
		for _, tt := range []struct{ url, want string }{
			{with(userURL, loginUser+":"+loginPassword), userURL},
			{with(tokenURL, loginToken), tokenURL},
			{"nats://127.0.0.1:1," + with(tokenURL, loginToken), "nats://127.0.0.1:1," + tokenURL},
		} {
			var logs bytes.Buffer
			b, err := Open(context.Background(), testConfig(tt.url), slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("Open: %v", RedactURLError(err))
			}
			if b.ClientURL() != tt.want {
				t.Errorf("ClientURL: want %q, got %q", tt.want, b.ClientURL())
			}
			_ = b.Close(context.Background())
			assertNoSecret(t, "the log", logs.String())
			assertNoSecret(t, "ClientURL", b.ClientURL())
		}
	})
	t.Run("fails", func(t *testing.T) {
		for _, u := range []string{
			"nats://" + loginUser + ":" + loginPassword + "@127.0.0.1:1", // unreachable
			"nats://" + loginToken + "@127.0.0.1:1",
			with(userURL, loginUser+":wrong-"+loginPassword),               // refused
			"nats://" + loginUser + ":" + loginPassword + "/x@127.0.0.1:1", // url.Parse error quoting the URL
			"nats://" + loginUser + ":" + loginPassword + "%zz@127.0.0.1:1",
		} {
			var logs bytes.Buffer
			b, err := Open(context.Background(), testConfig(u), slog.New(slog.NewTextHandler(&logs, nil)))
			if err == nil {
				b.Close(context.Background())
				t.Fatalf("Open %s: want an error", RedactURL(u))
			}
			if !strings.HasPrefix(err.Error(), "bridge: connect to NATS at "+RedactURL(u)+": ") {
				t.Errorf("want the redacted URL in the error, got %v", err)
			}
			assertNoSecret(t, "the error", err.Error())
			assertNoSecret(t, "the log", logs.String())
		}
	})
}

// TestLoginKinds: one kind of login at a time, a user with its password,
// and only with an external server; Open and AuthOptions (tail, bench)
// refuse the rest alike.
func TestLoginKinds(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"user without password", func(c *Config) { c.Login.User = "svc" }, "bridge: a NATS user and its password go together"},
		{"password without user", func(c *Config) { c.Login.Password = "pw" }, "bridge: a NATS user and its password go together"},
		{"user and token", func(c *Config) { c.Login = Login{User: "svc", Password: "pw", Token: "t"} }, "not a user and password and a token"},
		{"creds and token", func(c *Config) { c.CredsFile, c.Login.Token = "a.creds", "t" }, "not a creds file and a token"},
		{"nkey and user", func(c *Config) { c.NKeyFile, c.Login = "a.nk", Login{User: "svc", Password: "pw"} }, "not an nkey file and a user and password"},
		{"creds and nkey", func(c *Config) { c.CredsFile, c.NKeyFile = "a", "b" }, "not a creds file and an nkey file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("nats://127.0.0.1:1")
			tt.mod(&cfg)
			_, err := Open(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: want an error with %q, got %v", tt.want, err)
			}
			if _, err := cfg.AuthOptions(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AuthOptions: want an error with %q, got %v", tt.want, err)
			}
		})
	}
	t.Run("embedded", func(t *testing.T) {
		for _, l := range []Login{{User: "svc", Password: "pw"}, {Token: "t"}} {
			cfg := testConfig("")
			cfg.DataDir, cfg.Login = t.TempDir(), l
			if _, err := Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "need a NATS URL") {
				t.Errorf("want an error saying a login needs a NATS URL, got %v", err)
			}
		}
	})
}

// FuzzRedactURL: whatever the text, RedactURL leaves no user part that
// nats.go (url.Parse, "nats://" added when a URL has no scheme) would read
// as a login, keeps the number of URLs, is idempotent, and changes a URL
// without @ not at all; URLHasUserinfo finds every URL nats.go would read a
// login from.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"nats://svc:pw@nats:4222", "nats://tok@a:1,nats://b:2", "svc:pw@nats:4222", "nats://svc:p/w@h:1", "tls://a:1, ws://u@b:2/p?q#f", "", ",", "@", "://@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := RedactURL(in)
		if n, m := strings.Count(in, ","), strings.Count(out, ","); n != m {
			t.Fatalf("RedactURL(%q) = %q: %d URLs became %d", in, out, n+1, m+1)
		}
		if RedactURL(out) != out {
			t.Fatalf("RedactURL(%q) = %q is not redacted again the same", in, out)
		}
		if URLHasUserinfo(out) {
			t.Fatalf("RedactURL(%q) = %q still has a user part", in, out)
		}
		if !strings.Contains(in, "@") && out != in {
			t.Fatalf("RedactURL(%q) = %q changed a URL without a user part", in, out)
		}
		for p := range strings.SplitSeq(in, ",") {
			p = strings.TrimSpace(p)
			if !strings.Contains(p, "://") {
				p = "nats://" + p
			}
			if u, err := url.Parse(p); err == nil && u.User != nil && !URLHasUserinfo(in) {
				t.Fatalf("URLHasUserinfo(%q) = false, but nats.go reads user %q from it", in, u.User.Username())
			}
		}
		for p := range strings.SplitSeq(out, ",") {
			if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
				t.Fatalf("RedactURL(%q) = %q: url.Parse still finds user %q", in, out, u.User.Username())
			}
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the connection's handler
// goroutines and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReconnectLogNeverShowsURLSecret: the "nats reconnected" line after a
// server restart shows the URL without a token in its user part, which
// nc.ConnectedUrlRedacted() would show.
func TestReconnectLogNeverShowsURLSecret(t *testing.T) {
	dir := t.TempDir()
	opts := func(port int) *server.Options {
		return &server.Options{Port: port, JetStream: true, StoreDir: dir, Authorization: loginToken}
	}
	srv := runServerOpts(t, opts(-1))
	port := srv.Addr().(*net.TCPAddr).Port
	logs := &syncBuffer{}
	b, err := Open(context.Background(), testConfig(strings.Replace(srv.ClientURL(), "nats://", "nats://"+loginToken+"@", 1)), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Open: %v", RedactURLError(err))
	}
	defer b.Close(context.Background())
	srv.Shutdown()
	srv.WaitForShutdown()
	runServerOpts(t, opts(port))
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "nats reconnected") {
			return errNotYet
		}
		return nil
	})
	if want := "url=nats://127.0.0.1:" + strconv.Itoa(port); !strings.Contains(logs.String(), want) {
		t.Errorf("want the reconnect logged with %s, got:\n%s", want, logs.String())
	}
	assertNoSecret(t, "the log", logs.String())
}
