package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
)

// The secrets of the NATS login tests: no log line, error, /issuers answer
// or verb output may show them.
const (
	natsLoginPassword = "s3cr3t-nats-password"
	natsLoginToken    = "s3cr3t-nats-token"
)

// natsLoginServer starts a nats-server with JetStream wanting user svc with
// natsLoginPassword (token false) or natsLoginToken (token true).
func natsLoginServer(tb testing.TB, token bool) string {
	tb.Helper()
	opts := &server.Options{}
	if token {
		opts.Authorization = natsLoginToken
	} else {
		opts.Users = []*server.User{{Username: "svc", Password: natsLoginPassword}}
	}
	return verbNATSServer(tb, opts)
}

// natsSecretFile writes secret to a file of its own and returns its path.
func natsSecretFile(tb testing.TB, secret string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// assertNoNATSSecret fails when text holds a NATS login secret.
func assertNoNATSSecret(tb testing.TB, what, text string) {
	tb.Helper()
	for _, secret := range []string{natsLoginPassword, natsLoginToken} {
		if strings.Contains(text, secret) {
			tb.Errorf("%s holds the secret %q:\n%s", what, secret, text)
		}
	}
}

// TestServeNATSLogin runs serve against a NATS server that wants a user and
// password, or a token, given as SETGATE_NATS_USER with
// SETGATE_NATS_PASSWORD_FILE or SETGATE_NATS_TOKEN_FILE: it starts, pushes
// land in the stream, tail and bench --url's check log in with the same
// variables, and no log line, /issuers answer or verb output shows the
// secret.
func TestServeNATSLogin(t *testing.T) {
	tests := []struct {
		name  string
		token bool
		login func(tb testing.TB) map[string]string
	}{
		{"user and password", false, func(tb testing.TB) map[string]string {
			return map[string]string{"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": natsSecretFile(tb, natsLoginPassword)}
		}},
		{"token", true, func(tb testing.TB) map[string]string {
			return map[string]string{"SETGATE_NATS_TOKEN_FILE": natsSecretFile(tb, natsLoginToken)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			natsURL := natsLoginServer(t, tt.token)
			keyPath, tokenFile, issuers := verbKeyIssuer(t)
			admin := freeAddr(t)
			vars := map[string]string{
				"SETGATE_HTTP_ADDR": freeAddr(t), "SETGATE_ADMIN_ADDR": admin, "SETGATE_NATS_URL": natsURL,
				"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": issuers,
				"SETGATE_LOG_FORMAT": "text", "SETGATE_LOG_LEVEL": "debug",
			}
			for k, v := range tt.login(t) {
				vars[k] = v
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr verbBuffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"serve"}, vars, &stdout, &stderr) }()
			verbWaitUntil(t, "serve to start", func() bool {
				select {
				case err := <-done:
					t.Fatalf("serve: %v\n%s", err, stderr.String())
				default:
				}
				return strings.Contains(stderr.String(), "setgate started")
			})

			// /issuers: the URL as configured, connected.
			resp, err := http.Get("http://" + admin + "/issuers")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var st gateway.State
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("/issuers: %v\n%s", err, body)
			}
			if !st.NATS.Connected || st.NATS.URL != natsURL {
				t.Errorf("/issuers nats: want connected to %s, got %+v", natsURL, st.NATS)
			}
			assertNoNATSSecret(t, "/issuers", string(body))

			// tail logs in with the same variables and sees a push.
			tailOut, tailErr := verbStartTailEnv(t, nil, vars)
			var sendOut verbBuffer
			if err := sendVerb(ctx, []string{"--to", "http://" + vars["SETGATE_HTTP_ADDR"] + "/events/acme", "--key", keyPath, "--token-file", tokenFile,
				"--iss", "https://tx.example/", "--aud", verbAudience, "--email", "bob@acme.example", "--jti", "login-1"}, &sendOut, io.Discard); err != nil {
				t.Fatalf("send: %v %s", err, sendOut.String())
			}
			verbWaitUntil(t, "the event in tail", func() bool { return strings.Contains(tailOut.String(), "jti=login-1") })

			// bench --url's check logs in with the same variables.
			s, err := config.Load(vars)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := benchNATS(s, "", "")
			if err != nil {
				t.Fatalf("bench's NATS check: %v", err)
			}
			nc.Close()

			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			assertNoNATSSecret(t, "serve's log", stderr.String())
			assertNoNATSSecret(t, "serve's output", stdout.String())
			assertNoNATSSecret(t, "tail's output", tailErr.String()+tailOut.String())
		})
	}
}

// TestServeNATSLoginErrors: serve refuses credentials in SETGATE_NATS_URL,
// two kinds of login at once and unreadable secret files, and a refused
// login fails the start with one line that says which login was refused;
// no error or log line shows a secret.
func TestServeNATSLoginErrors(t *testing.T) {
	userURL := natsLoginServer(t, false)
	tokenURL := natsLoginServer(t, true)
	withUserinfo := func(u, userinfo string) string { return strings.Replace(u, "nats://", "nats://"+userinfo+"@", 1) }
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"user and password in the URL", map[string]string{"SETGATE_NATS_URL": withUserinfo(userURL, "svc:"+natsLoginPassword)},
			[]string{`environment: SETGATE_NATS_URL="` + userURL + `" has a user part (user:password@ or token@), which is refused`, "SETGATE_NATS_PASSWORD_FILE"}},
		{"token in the URL", map[string]string{"SETGATE_NATS_URL": withUserinfo(tokenURL, natsLoginToken)},
			[]string{`environment: SETGATE_NATS_URL="` + tokenURL + `" has a user part`, "SETGATE_NATS_TOKEN_FILE"}},
		{"wrong password", map[string]string{"SETGATE_NATS_URL": userURL, "SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": natsSecretFile(t, "not-the-password")},
			[]string{"bridge: connect to NATS at " + userURL + ": nats: Authorization Violation", `(the server refused user "svc" with the password file's password)`}},
		{"wrong token", map[string]string{"SETGATE_NATS_URL": tokenURL, "SETGATE_NATS_TOKEN_FILE": natsSecretFile(t, "not-the-token")},
			[]string{"bridge: connect to NATS at " + tokenURL + ": nats: Authorization Violation", "(the server refused the token file's token)"}},
		{"no login", map[string]string{"SETGATE_NATS_URL": tokenURL},
			[]string{"nats: Authorization Violation", "(the server wants a login"}},
		{"user and token", map[string]string{"SETGATE_NATS_URL": userURL, "SETGATE_NATS_USER": "svc",
			"SETGATE_NATS_PASSWORD_FILE": natsSecretFile(t, natsLoginPassword), "SETGATE_NATS_TOKEN_FILE": natsSecretFile(t, natsLoginToken)},
			[]string{"SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE and SETGATE_NATS_TOKEN_FILE: set one NATS login, not two kinds at once"}},
		{"creds and password", map[string]string{"SETGATE_NATS_URL": userURL, "SETGATE_NATS_CREDS_FILE": natsSecretFile(t, "creds"),
			"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": natsSecretFile(t, natsLoginPassword)},
			[]string{"SETGATE_NATS_CREDS_FILE and SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE: set one NATS login"}},
		{"missing password file", map[string]string{"SETGATE_NATS_URL": userURL, "SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/nonexistent/pw"},
			[]string{"nats: SETGATE_NATS_PASSWORD_FILE: ", "/nonexistent/pw"}},
		{"login without NATS URL", map[string]string{"SETGATE_NATS_TOKEN_FILE": natsSecretFile(t, natsLoginToken)},
			[]string{"need a NATS URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, issuers := verbKeyIssuer(t)
			vars := map[string]string{
				"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
				"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": issuers, "SETGATE_LOG_FORMAT": "text", "SETGATE_LOG_LEVEL": "debug",
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			var stdout, stderr verbBuffer
			err := run(context.Background(), []string{"serve"}, vars, &stdout, &stderr)
			if err == nil {
				t.Fatal("serve: want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want an error with %q, got %v", w, err)
				}
			}
			assertNoNATSSecret(t, "the error", err.Error())
			assertNoNATSSecret(t, "serve's log", stderr.String()+stdout.String())
		})
	}
}

// TestTailNATSLoginErrors: tail refuses what serve refuses (the variables
// are the same) and a URL with a user part in --server.
func TestTailNATSLoginErrors(t *testing.T) {
	tokenURL := natsLoginServer(t, true)
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"token in SETGATE_NATS_URL", nil, map[string]string{"SETGATE_NATS_URL": strings.Replace(tokenURL, "nats://", "nats://"+natsLoginToken+"@", 1)},
			`environment: SETGATE_NATS_URL="` + tokenURL + `" has a user part`},
		{"token in --server", []string{"--server", strings.Replace(tokenURL, "nats://", "nats://"+natsLoginToken+"@", 1)}, map[string]string{},
			"tail: NATS URL " + tokenURL + " has a user part (user:password@ or token@), which is refused"},
		{"wrong token", nil, map[string]string{"SETGATE_NATS_URL": tokenURL, "SETGATE_NATS_TOKEN_FILE": natsSecretFile(t, "not-the-token")},
			"tail: connect to NATS at " + tokenURL + ": nats: Authorization Violation (the server refused the SETGATE_NATS_* login)"},
		{"token and nkey", nil, map[string]string{"SETGATE_NATS_URL": tokenURL, "SETGATE_NATS_TOKEN_FILE": natsSecretFile(t, natsLoginToken), "SETGATE_NATS_NKEY_FILE": "/n.nk"},
			"SETGATE_NATS_NKEY_FILE and SETGATE_NATS_TOKEN_FILE: set one NATS login, not two kinds at once"},
		{"unreadable token file", nil, map[string]string{"SETGATE_NATS_URL": tokenURL, "SETGATE_NATS_TOKEN_FILE": t.TempDir()},
			"tail: nats: SETGATE_NATS_TOKEN_FILE: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr verbBuffer
			err := tailVerb(t.Context(), tt.args, tt.vars, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error with %q, got %v", tt.want, err)
			}
			assertNoNATSSecret(t, "the error", err.Error())
			assertNoNATSSecret(t, "tail's output", stderr.String())
		})
	}
}
