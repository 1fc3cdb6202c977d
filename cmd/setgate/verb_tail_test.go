package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/verify"
)

// verbBuffer is a bytes.Buffer safe for one writer goroutine and a
// reading test.
type verbBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *verbBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *verbBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// verbWaitUntil polls cond until it holds or 10s pass.
func verbWaitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verbStartTail runs the tail verb with args until the test ends, and waits
// until it follows the stream.
func verbStartTail(tb testing.TB, args []string) (stdout, stderr *verbBuffer) {
	tb.Helper()
	return verbStartTailEnv(tb, args, map[string]string{})
}

// verbStartTailEnv is verbStartTail with the SETGATE_* variables vars.
func verbStartTailEnv(tb testing.TB, args []string, vars map[string]string) (stdout, stderr *verbBuffer) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &verbBuffer{}, &verbBuffer{}
	var err error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		err = tailVerb(ctx, args, vars, stdout, stderr)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
			if err != nil {
				tb.Errorf("tail: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("tail did not stop")
		}
	})
	verbWaitUntil(tb, "tail to start", func() bool {
		select {
		case <-stopped:
			tb.Fatalf("tail stopped early\n%s", stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), "following")
	})
	return stdout, stderr
}

// verbBridge starts an embedded NATS server with the stream.
func verbBridge(tb testing.TB) *bridge.Bridge {
	tb.Helper()
	b, err := bridge.Open(context.Background(), bridge.Config{
		EmbeddedAddr: "127.0.0.1:0", DataDir: tb.TempDir(), StreamManage: true, DuplicateWindow: time.Minute,
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func verbSET(jti, eventType, payload string) *verify.SET {
	return &verify.SET{
		Raw: "e30.e30.c2ln", Iss: "https://idp.acme.example/", JTI: jti, IAT: "1700000000",
		Aud:    []string{verbAudience},
		SubID:  json.RawMessage(`{"format":"email","email":"alice@acme.example"}`),
		Events: []verify.Event{{Type: eventType, Payload: json.RawMessage(payload)}},
	}
}

const (
	verbSessionRevoked  = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	verbAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
)

func TestTailVerb(t *testing.T) {
	publish := func(t *testing.T, b *bridge.Bridge, set *verify.SET) {
		t.Helper()
		if _, err := b.PublishSET(t.Context(), "acme", nil, set, bridge.DeliveryPush, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		args   []string
		before func(t *testing.T, b *bridge.Bridge) // publishes before tail starts
		after  func(t *testing.T, b *bridge.Bridge) // publishes once tail follows
		want   string                               // a line with this appears
		check  func(t *testing.T, out string)
	}{
		{
			name: "new events, one line each",
			after: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-1", verbSessionRevoked, `{"initiating_entity":"policy"}`))
			},
			want: "2026-01-02T03:04:05Z  secevent.caep.session-revoked.acme  acme  jti=jti-1  alice@acme.example  initiating_entity=policy",
		},
		{
			name: "json envelopes",
			args: []string{"--json"},
			after: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-2", verbAccountDisabled, `{"reason":"hijacking"}`))
			},
			want: `"jti":"jti-2"`,
			check: func(t *testing.T, out string) {
				var env struct {
					bridge.Envelope
					NATSSubject    string `json:"nats_subject"`
					StreamSequence uint64 `json:"stream_sequence"`
				}
				if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &env); err != nil {
					t.Fatalf("want one JSON envelope per line, got %v\n%s", err, out)
				}
				if env.Issuer != "acme" || env.JTI != "jti-2" || env.EventType != verbAccountDisabled || string(env.Event) != `{"reason":"hijacking"}` {
					t.Errorf("want the full envelope, got %+v", env)
				}
				// The stream held nothing before, so this is message 1.
				if env.NATSSubject != "secevent.risc.account-disabled.acme" || env.StreamSequence != 1 {
					t.Errorf("want nats_subject secevent.risc.account-disabled.acme and stream_sequence 1, got %q %d", env.NATSSubject, env.StreamSequence)
				}
				if !strings.HasPrefix(out, `{"nats_subject":"secevent.risc.account-disabled.acme","stream_sequence":1,"issuer":"acme",`) {
					t.Errorf("want the routing members first, got\n%s", out)
				}
			},
		},
		{
			name: "json sequence counts the stream",
			args: []string{"--json", "--all"},
			before: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-s1", verbSessionRevoked, `{}`))
				publish(t, b, verbSET("jti-s2", verbAccountDisabled, `{"reason":"hijacking"}`))
			},
			want: `{"nats_subject":"secevent.risc.account-disabled.acme","stream_sequence":2,"issuer":"acme","iss":"https://idp.acme.example/","jti":"jti-s2"`,
		},
		{
			name: "subject from sub when there is no sub_id",
			after: func(t *testing.T, b *bridge.Bridge) {
				set := verbSET("jti-sub", verbSessionRevoked, `{}`)
				set.SubID, set.Sub = nil, "user-42"
				publish(t, b, set)
			},
			want: "secevent.caep.session-revoked.acme  acme  jti=jti-sub  sub=user-42",
		},
		{
			name: "subject from the event payload (CAEP 1.0 legacy form)",
			after: func(t *testing.T, b *bridge.Bridge) {
				set := verbSET("jti-legacy", verbSessionRevoked, `{"subject":{"format":"iss_sub","iss":"https://idp.acme.example/","sub":"u7"},"initiating_entity":"admin"}`)
				set.SubID = nil
				publish(t, b, set)
			},
			want: "secevent.caep.session-revoked.acme  acme  jti=jti-legacy  u7 (iss https://idp.acme.example/)  initiating_entity=admin",
		},
		{
			name: "rejections as JSON",
			args: []string{"--rejected", "--json"},
			after: func(t *testing.T, b *bridge.Bridge) {
				b.PublishRejection("acme", "invalid_key", "The signature does not verify with the issuer's key.", "jti-bad",
					bridge.DeliveryPush, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			},
			want: `{"nats_subject":"setgate.rejected.acme","issuer":"acme","code":"invalid_key"`,
		},
		{
			name: "all from the start",
			args: []string{"--all"},
			before: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-old", verbSessionRevoked, `{}`))
			},
			want: "jti=jti-old",
		},
		{
			name: "new only by default",
			before: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-old", verbSessionRevoked, `{}`))
			},
			after: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-new", verbSessionRevoked, `{}`))
			},
			want: "jti=jti-new",
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "jti-old") {
					t.Errorf("want only new events, got\n%s", out)
				}
			},
		},
		{
			name: "subject filter",
			args: []string{"secevent.risc.>"},
			after: func(t *testing.T, b *bridge.Bridge) {
				publish(t, b, verbSET("jti-caep", verbSessionRevoked, `{}`))
				publish(t, b, verbSET("jti-risc", verbAccountDisabled, `{"reason":"bulk-account"}`))
			},
			want: "secevent.risc.account-disabled.acme  acme  jti=jti-risc  alice@acme.example  reason=bulk-account",
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "jti-caep") {
					t.Errorf("want only risc events, got\n%s", out)
				}
			},
		},
		{
			name: "rejections",
			args: []string{"--rejected"},
			after: func(t *testing.T, b *bridge.Bridge) {
				b.PublishRejection("acme", "invalid_key", "The signature does not verify with the issuer's key.", "jti-bad",
					bridge.DeliveryPush, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			},
			want: "2026-01-02T03:04:05Z  setgate.rejected.acme  acme  jti=jti-bad  REJECTED invalid_key: The signature does not verify with the issuer's key.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := verbBridge(t)
			if tt.before != nil {
				tt.before(t, b)
			}
			stdout, _ := verbStartTail(t, append([]string{"--server", b.ClientURL(), "--password-file", b.ConsumerPasswordFile()}, tt.args...))
			if tt.after != nil {
				tt.after(t, b)
			}
			verbWaitUntil(t, fmt.Sprintf("a line with %q", tt.want), func() bool { return strings.Contains(stdout.String(), tt.want) })
			if tt.check != nil {
				tt.check(t, stdout.String())
			}
		})
	}
}

// TestTailVerbErrors: each way tail cannot start is an error that names
// the cause. None of them waits for a timeout: the verb runs with a
// context without deadline, so a JetStream API request nobody answers
// would end in the library's 5 s timeout (context.DeadlineExceeded), which
// no error here may carry. A stream the embedded server's consumer user
// may not use is refused by the server at once, and whether it exists is
// read from the stream names.
func TestTailVerbErrors(t *testing.T) {
	b := verbBridge(t)
	if _, err := b.JetStream().CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	open := verbOpenServer(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no such stream", []string{"--server", b.ClientURL(), "--password-file", b.ConsumerPasswordFile(), "--stream", "NOPE"},
			fmt.Sprintf(`tail: stream "NOPE" not found at %s (is setgate serve running?)`, b.ClientURL())},
		{"stream of another reader", []string{"--server", b.ClientURL(), "--password-file", b.ConsumerPasswordFile(), "--stream", "OTHER"},
			`tail: consumer on OTHER for secevent.>: nats: permissions violation: Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.OTHER`},
		{"no such stream, unrestricted user", []string{"--server", open, "--stream", "NOPE"},
			fmt.Sprintf(`tail: stream "NOPE" not found at %s (is setgate serve running?)`, open)},
		{"no server", []string{"--server", "nats://127.0.0.1:1"}, "connect to NATS"},
		{"no password", []string{"--server", b.ClientURL()}, "wants user consumer"},
		{"missing password file", []string{"--server", b.ClientURL(), "--password-file", filepath.Join(t.TempDir(), "none")}, "consumer password file"},
		{"two subjects", []string{"a.>", "b.>"}, "at most one subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr verbBuffer
			err := tailVerb(t.Context(), tt.args, map[string]string{}, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want an error without waiting for a timeout, got %v", err)
			}
			if strings.Contains(stderr.String(), "permissions violation") {
				t.Errorf("the refusal is the error, not printed as well; stderr:\n%s", stderr.String())
			}
		})
	}
}

// verbOpenServer starts a nats-server with JetStream that lets anyone do
// anything, and returns its URL.
func verbOpenServer(tb testing.TB) string {
	tb.Helper()
	return verbNATSServer(tb, &server.Options{})
}

// verbNATSServer starts a nats-server with opts (its auth settings) on a
// random loopback port, with JetStream in a temporary directory, until the
// test ends, and returns its URL.
func verbNATSServer(tb testing.TB, opts *server.Options) string {
	tb.Helper()
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, tb.TempDir(), true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server not ready")
	}
	return srv.ClientURL()
}

// TestVerbsEndToEnd runs the real gateway, generates a transmitter key with
// send --gen-key, pushes with send, and sees the event with tail.
func TestVerbsEndToEnd(t *testing.T) {
	keyPath, tokenFile, issuers := verbKeyIssuer(t)
	vars := map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": issuers,
	}
	app := serveTest(t, nil, vars)

	// No --password-file: tail finds serve's password file from the same
	// variables.
	tailOut, _ := verbStartTailEnv(t, []string{"--server", app.NATSURL(), "--rejected"}, vars)
	send := func(extra ...string) (string, error) {
		var out bytes.Buffer
		err := sendVerb(t.Context(), append([]string{"--to", app.PushURL() + "/events/acme", "--key", keyPath, "--token-file", tokenFile,
			"--iss", "https://tx.example/", "--email", "bob@acme.example"}, extra...), &out, io.Discard)
		return out.String(), err
	}
	out, err := send("--aud", verbAudience, "--event", "caep.credential-change", "--payload", `{"credential_type":"fido2-roaming","change_type":"create"}`, "--jti", "e2e-1")
	if err != nil || out != "HTTP/1.1 202 Accepted\n" {
		t.Fatalf("send: want 202, got %v %q", err, out)
	}
	verbWaitUntil(t, "the event in tail", func() bool {
		return strings.Contains(tailOut.String(), "secevent.caep.credential-change.acme  acme  jti=e2e-1  bob@acme.example  change_type=create  credential_type=fido2-roaming")
	})

	out, err = send("--aud", "https://elsewhere.example/", "--jti", "e2e-2")
	if err == nil || !strings.Contains(out, "400 Bad Request") || !strings.Contains(err.Error(), "invalid_audience") {
		t.Fatalf("send: want 400 invalid_audience, got %v %q", err, out)
	}
	verbWaitUntil(t, "the rejection in tail", func() bool {
		return strings.Contains(tailOut.String(), "setgate.rejected.acme  acme  jti=e2e-2  REJECTED invalid_audience")
	})
}

// verbKeyIssuer generates a transmitter key with send --gen-key, serves its
// JWKS, and writes an issuers file trusting it for issuer acme with push
// token "push-token". It returns the key file, the token file and the
// issuers file.
func verbKeyIssuer(t *testing.T) (keyPath, tokenFile, issuers string) {
	t.Helper()
	keyPath, jwks := verbGenKey(t)
	rec := newVerbPushRecorder(t, http.StatusAccepted, "") // only its JWKS is used
	rec.setJWKS(jwks)
	dir := t.TempDir()
	tokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("push-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	issuers = filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(issuers, []byte(fmt.Sprintf(`issuers:
  - name: acme
    issuer: https://tx.example/
    audience: [%s]
    jwks_uri: %s/jwks
    algorithms: [ES256]
    push:
      bearer_token_file: %s
`, verbAudience, rec.srv.URL, tokenFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPath, tokenFile, issuers
}
