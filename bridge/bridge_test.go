package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// getMsg returns the stored message with sequence seq.
func getMsg(tb testing.TB, b *Bridge, seq uint64) *jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, b.cfg.Stream)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		tb.Fatalf("get msg %d: %v", seq, err)
	}
	return m
}

// streamMsgs returns the number of messages in the stream.
func streamMsgs(tb testing.TB, js jetstream.JetStream, stream string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func TestPublishSET(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	set := testSET("jti-1", sessionRevoked)
	set.Warnings = []string{"reason_admin: not an object"}
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))

	res, err := b.PublishSET(context.Background(), "acme", nil, set, DeliveryPush, at)
	if err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	if res.Duplicate {
		t.Error("first publish reported as duplicate")
	}
	wantSubj := "secevent.caep.session-revoked.acme"
	if len(res.Subjects) != 1 || res.Subjects[0] != wantSubj {
		t.Fatalf("want subjects [%q], got %q", wantSubj, res.Subjects)
	}
	if len(res.Sequences) != 1 || res.Sequences[0] != 1 {
		t.Fatalf("want sequences [1], got %v", res.Sequences)
	}

	m := getMsg(t, b, 1)
	if m.Subject != wantSubj {
		t.Errorf("want subject %q, got %q", wantSubj, m.Subject)
	}
	wantHdr := map[string]string{
		"Content-Type":         "application/json",
		jetstream.MsgIDHeader:  MsgID(testIss, "jti-1", sessionRevoked),
		"Nats-Expected-Stream": "SECEVENTS",
		"Setgate-Issuer":       "acme",
		"Setgate-Iss":          testIss,
		"Setgate-Jti":          "jti-1",
		"Setgate-Event-Type":   sessionRevoked,
		"Setgate-Delivery":     "push",
	}
	for k, v := range wantHdr {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s: want %q, got %q", k, v, got)
		}
	}
	if id := m.Header.Get(jetstream.MsgIDHeader); len(id) != 24 {
		t.Errorf("want a 24-character Nats-Msg-Id, got %q", id)
	}

	// The body has exactly the documented members.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &raw); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, m.Data)
	}
	wantRaw := map[string]string{
		"issuer":           `"acme"`,
		"iss":              `"` + testIss + `"`,
		"jti":              `"jti-1"`,
		"iat":              `1700000001.5`,
		"aud":              `["https://setgate.example.com/"]`,
		"toe":              `1700000000`,
		"txn":              `"txn-1"`,
		"sub_id":           `{"format":"email","email":"user@acme.example"}`,
		"event_type":       `"` + sessionRevoked + `"`,
		"event":            `{"event_timestamp":1700000000,"n":0}`,
		"delivery":         `"push"`,
		"received_at":      `"2026-05-01T10:00:00.123456789Z"`,
		"set":              `"` + set.Raw + `"`,
		"payload_warnings": `["reason_admin: not an object"]`,
	}
	for k, v := range wantRaw {
		if got := string(raw[k]); got != v {
			t.Errorf("body %s: want %s, got %s", k, v, got)
		}
	}
	for k := range raw {
		if _, ok := wantRaw[k]; !ok {
			t.Errorf("body has unexpected member %q", k)
		}
	}

	var env Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatalf("decode envelope: %v", err)
	}
	if !env.ReceivedAt.Equal(at) || env.Delivery != DeliveryPush || env.IAT != "1700000001.5" {
		t.Errorf("envelope round trip: got %+v", env)
	}
}

func TestPublishSETOptionalMembers(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	set := testSET("jti-plain", sessionRevoked)
	set.TOE, set.TXN, set.SubID, set.Sub = nil, "", nil, "user-42"

	res, err := b.PublishSET(context.Background(), "acme", nil, set, DeliveryPoll, time.Now())
	if err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	m := getMsg(t, b, res.Sequences[0])
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"toe", "txn", "sub_id", "payload_warnings"} {
		if v, ok := raw[k]; ok {
			t.Errorf("absent claim %s published as %s", k, v)
		}
	}
	if got := string(raw["sub"]); got != `"user-42"` {
		t.Errorf("sub: want %q, got %s", `"user-42"`, got)
	}
	if got := m.Header.Get(HeaderDelivery); got != "poll" {
		t.Errorf("delivery header: want poll, got %q", got)
	}
}

func TestPublishSETOverride(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	res, err := b.PublishSET(context.Background(), "acme",
		map[string]string{sessionRevoked: "auth.logout"}, testSET("jti-o", sessionRevoked), DeliveryPush, time.Now())
	if err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	if want := "secevent.auth.logout.acme"; res.Subjects[0] != want || getMsg(t, b, res.Sequences[0]).Subject != want {
		t.Errorf("want subject %q, got %q", want, res.Subjects[0])
	}
}

func TestPublishSETDuplicate(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	ctx := context.Background()

	for _, types := range [][]string{{sessionRevoked}, {sessionRevoked, credentialChange}} {
		t.Run(fmt.Sprintf("%d events", len(types)), func(t *testing.T) {
			before := streamMsgs(t, b.JetStream(), "SECEVENTS")
			set := testSET(fmt.Sprintf("jti-dup-%d", len(types)), types...)
			first, err := b.PublishSET(ctx, "acme", nil, set, DeliveryPush, time.Now())
			if err != nil {
				t.Fatalf("first PublishSET: %v", err)
			}
			if first.Duplicate {
				t.Error("first publish reported as duplicate")
			}
			// The same SET again, by the other delivery and later: still a duplicate.
			second, err := b.PublishSET(ctx, "acme", nil, set, DeliveryPoll, time.Now().Add(time.Minute))
			if err != nil {
				t.Fatalf("second PublishSET: %v", err)
			}
			if !second.Duplicate {
				t.Error("second publish not reported as duplicate")
			}
			if fmt.Sprint(second.Sequences) != fmt.Sprint(first.Sequences) {
				t.Errorf("want the original sequences %v, got %v", first.Sequences, second.Sequences)
			}
			if got := streamMsgs(t, b.JetStream(), "SECEVENTS") - before; got != uint64(len(types)) {
				t.Errorf("want %d new messages, got %d", len(types), got)
			}
		})
	}

	t.Run("same jti other event type", func(t *testing.T) {
		if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-x", sessionRevoked), DeliveryPush, time.Now()); err != nil {
			t.Fatal(err)
		}
		res, err := b.PublishSET(ctx, "acme", nil, testSET("jti-x", sessionRevoked, credentialChange), DeliveryPush, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate {
			t.Error("a SET with one new event reported as duplicate")
		}
	})
}

func TestPublishSETMultiEvent(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	types := []string{sessionRevoked, credentialChange, riscBase + "account-disabled", "urn:example:custom"}

	res, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-multi", types...), DeliveryPoll, time.Now())
	if err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	if len(res.Subjects) != len(types) || len(res.Sequences) != len(types) {
		t.Fatalf("want %d subjects and sequences, got %v %v", len(types), res.Subjects, res.Sequences)
	}
	if got := streamMsgs(t, b.JetStream(), "SECEVENTS"); got != uint64(len(types)) {
		t.Fatalf("want %d messages, got %d", len(types), got)
	}
	ids := map[string]bool{}
	for i, typ := range types {
		m := getMsg(t, b, res.Sequences[i])
		if want := b.Subjects().For("acme", typ, nil); m.Subject != want || res.Subjects[i] != want {
			t.Errorf("event %d: want subject %q, got %q (result %q)", i, want, m.Subject, res.Subjects[i])
		}
		var env Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatal(err)
		}
		if env.EventType != typ || env.JTI != "jti-multi" {
			t.Errorf("event %d: want type %q, got %q", i, typ, env.EventType)
		}
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
	}
	if len(ids) != len(types) {
		t.Errorf("want %d distinct message ids, got %d", len(types), len(ids))
	}
}

func TestPublishSETNoEvents(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	_, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-none"), DeliveryPush, time.Now())
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("want a non-unavailable error, got %v", err)
	}
}

func TestPublishSETNATSDown(t *testing.T) {
	dir := t.TempDir()
	srv := runServer(t, -1, dir)
	cfg := testConfig(srv.ClientURL())
	cfg.PublishTimeout = 300 * time.Millisecond
	b := openBridge(t, cfg)
	ctx := context.Background()
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-before", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET before outage: %v", err)
	}
	tcpPort := srv.Addr().(*net.TCPAddr).Port

	srv.Shutdown()
	srv.WaitForShutdown()

	// No deadline on ctx: only the publish timeout bounds these calls.
	for _, types := range [][]string{{sessionRevoked}, {sessionRevoked, credentialChange}} {
		_, err := b.PublishSET(ctx, "acme", nil, testSET("jti-down", types...), DeliveryPush, time.Now())
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%d events while down: want ErrUnavailable, got %v", len(types), err)
		}
		t.Logf("while down: %v", err)
	}
	if err := b.Ready(ctx); err == nil {
		t.Error("Ready while down: want an error")
	}

	runServer(t, tcpPort, dir)
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, err := b.PublishSET(ctx, "acme", nil, testSET("jti-after", sessionRevoked, credentialChange), DeliveryPush, time.Now())
		return err
	})
	if err := b.Ready(ctx); err != nil {
		t.Errorf("Ready after restart: %v", err)
	}
	// jti-before survived in the store; jti-after stored once even if a
	// buffered attempt went out too.
	if got := streamMsgs(t, b.JetStream(), "SECEVENTS"); got < 3 {
		t.Errorf("want at least 3 messages after restart, got %d", got)
	}
	res, err := b.PublishSET(ctx, "acme", nil, testSET("jti-after", sessionRevoked, credentialChange), DeliveryPush, time.Now())
	if err != nil || !res.Duplicate {
		t.Errorf("republish after restart: want duplicate, got %+v, %v", res, err)
	}
}

func TestReady(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	ctx := context.Background()
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := b.JetStream().DeleteStream(ctx, "SECEVENTS"); err != nil {
		t.Fatal(err)
	}
	err := b.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), `"SECEVENTS"`) || !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Ready without stream: want an error naming SECEVENTS, got %v", err)
	}
	// Publishing without a stream fails as unavailable.
	_, err = b.PublishSET(ctx, "acme", nil, testSET("jti-nostream", sessionRevoked), DeliveryPush, time.Now())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PublishSET without stream: want ErrUnavailable, got %v", err)
	}
}

func TestOpenUnmanagedStream(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	cfg := testConfig(srv.ClientURL())
	cfg.StreamManage = false
	cfg.Stream = "OPS_EVENTS"

	_, err := Open(context.Background(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), `"OPS_EVENTS"`) || !strings.HasPrefix(err.Error(), "bridge: ") {
		t.Fatalf("Open without stream: want an error naming OPS_EVENTS, got %v", err)
	}

	// Once ops created it, Open succeeds and publishes into it.
	js := serverJS(t, srv.ClientURL())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "OPS_EVENTS", Subjects: []string{"secevent.>"}}); err != nil {
		t.Fatal(err)
	}
	b := openBridge(t, cfg)
	if _, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-ops", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	if got := streamMsgs(t, js, "OPS_EVENTS"); got != 1 {
		t.Errorf("want 1 message, got %d", got)
	}
}

func TestPublishSETWrongStream(t *testing.T) {
	// The subjects are captured by a stream that is not the configured one.
	srv := runServer(t, -1, t.TempDir())
	js := serverJS(t, srv.ClientURL())
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "SECEVENTS", Subjects: []string{"secevent.ssf.>"}},
		{Name: "OTHER", Subjects: []string{"secevent.caep.>"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(srv.ClientURL())
	cfg.StreamManage = false
	b := openBridge(t, cfg)
	_, err := b.PublishSET(ctx, "acme", nil, testSET("jti-wrong", sessionRevoked), DeliveryPush, time.Now())
	var apiErr *jetstream.APIError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) {
		t.Fatalf("want ErrUnavailable with the JetStream API error, got %v", err)
	}
	t.Logf("wrong stream: %v", err)
	if got := streamMsgs(t, js, "OTHER"); got != 0 {
		t.Errorf("want nothing stored in OTHER, got %d", got)
	}
}

func TestOpenConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"prefix with dot", func(c *Config) { c.SubjectPrefix = "sec.event" }, "subject prefix"},
		{"prefix wildcard", func(c *Config) { c.SubjectPrefix = "*" }, "subject prefix"},
		{"reserved prefix", func(c *Config) { c.SubjectPrefix = "setgate" }, "reserved"},
		{"stream with dot", func(c *Config) { c.Stream = "SEC.EVENTS" }, "stream name"},
		{"stream with space", func(c *Config) { c.Stream = "SEC EVENTS" }, "stream name"},
		{"replicas", func(c *Config) { c.StreamReplicas = 7 }, "replicas"},
		{"window over age", func(c *Config) { c.StreamMaxAge = time.Minute }, "duplicate window"},
		{"negative timeout", func(c *Config) { c.PublishTimeout = -time.Second }, "publish timeout"},
		{"cert without key", func(c *Config) { c.CertFile = "c.pem" }, "certificate and key"},
		{"creds and nkey", func(c *Config) { c.CredsFile, c.NKeyFile = "a", "b" }, "creds"},
		{"embedded without dir", func(c *Config) { c.URL = "" }, "data directory"},
		{"embedded with creds", func(c *Config) { c.URL, c.DataDir, c.CredsFile = "", "d", "a" }, "need a NATS URL"},
		{"embedded bad addr", func(c *Config) { c.URL, c.DataDir, c.EmbeddedAddr = "", "d", "localhost" }, "embedded NATS address"},
		{"embedded bad sync", func(c *Config) { c.URL, c.DataDir, c.EmbeddedSync = "", "d", "never" }, "embedded sync"},
		{"unreachable", func(c *Config) { c.URL = "nats://127.0.0.1:1" }, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("nats://127.0.0.1:4222")
			tt.mod(&cfg)
			_, err := Open(context.Background(), cfg, testLogger(t))
			if err == nil || !strings.HasPrefix(err.Error(), "bridge: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a bridge: error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("")
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.DataDir = dir
	ctx := context.Background()

	b, err := Open(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	url := b.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("want the embedded server's real client URL, got %q", url)
	}

	// A separate client (think `nats sub`) sees what is published.
	nc, err := nats.Connect(url, b.ConsumerOptions()...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	sub, err := nc.SubscribeSync("secevent.>")
	if err != nil {
		t.Fatal(err)
	}
	rej, err := nc.SubscribeSync("setgate.rejected.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-emb", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("next msg: %v", err)
	}
	if m.Subject != "secevent.caep.session-revoked.acme" {
		t.Errorf("want subject secevent.caep.session-revoked.acme, got %q", m.Subject)
	}

	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b.PublishRejection("acme", "invalid_key", "The signature does not verify.", "jti-bad", DeliveryPoll, at)
	rm, err := rej.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("rejection: %v", err)
	}
	want := `{"issuer":"acme","code":"invalid_key","description":"The signature does not verify.","jti":"jti-bad","delivery":"poll","received_at":"2026-05-01T12:00:00Z"}`
	if rm.Subject != "setgate.rejected.acme" || string(rm.Data) != want {
		t.Errorf("rejection: want %s on setgate.rejected.acme, got %s on %s", want, rm.Data, rm.Subject)
	}
	nc.Close()

	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !b.Conn().IsClosed() {
		t.Error("connection open after Close")
	}
	if nc, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("embedded server still accepts clients after Close")
	}
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-closed", sessionRevoked), DeliveryPush, time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("PublishSET after Close: want ErrUnavailable, got %v", err)
	}

	// The messages persist in the data directory.
	b2 := openBridge(t, cfg)
	if got := streamMsgs(t, b2.JetStream(), "SECEVENTS"); got != 1 {
		t.Fatalf("after reopen: want 1 message, got %d", got)
	}
	res, err := b2.PublishSET(ctx, "acme", nil, testSET("jti-emb", sessionRevoked), DeliveryPush, time.Now())
	if err != nil || !res.Duplicate {
		t.Errorf("republish after reopen: want duplicate, got %+v, %v", res, err)
	}
}

func TestEmbeddedErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	busy := runServer(t, -1, t.TempDir())
	tests := []struct {
		name, addr, dir, want string
	}{
		{"data dir is a file", "127.0.0.1:0", file, "not a directory"},
		{"data dir is a file, no listener", "", file, "JetStream"},
		{"port in use", busy.Addr().String(), t.TempDir(), "embedded NATS server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("")
			cfg.EmbeddedAddr, cfg.DataDir = tt.addr, tt.dir
			b, err := Open(context.Background(), cfg, testLogger(t))
			if err == nil {
				b.Close(context.Background())
				t.Fatal("Open: want an error")
			}
			if !strings.HasPrefix(err.Error(), "bridge: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a bridge: error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b, err := Open(context.Background(), testConfig(srv.ClientURL()), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b.Close(ctx) // a done context may cut the drain short; it must not hang.
	if !b.Conn().IsClosed() {
		checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if !b.Conn().IsClosed() {
				return errNotYet
			}
			return nil
		})
	}
}

func TestPublishRejectionInvalidIssuer(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	if got := RejectionSubject("acme"); got != "setgate.rejected.acme" {
		t.Errorf("want setgate.rejected.acme, got %q", got)
	}
	subj := RejectionSubject("a.b >")
	if toks := strings.Split(subj, "."); len(toks) != 3 || !isToken(toks[2]) {
		t.Fatalf("want three valid tokens, got %q", subj)
	}
	// Best effort: never panics or blocks, even for odd names.
	b.PublishRejection("a.b >", "invalid_request", "bad", "", DeliveryPush, time.Now())
}

func TestPublishSETConcurrent(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	const workers, each = 8, 25
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				types := []string{sessionRevoked}
				if i%2 == 1 {
					types = append(types, credentialChange)
				}
				// Every SET twice: the second must be a duplicate.
				set := testSET(fmt.Sprintf("jti-%d-%d", w, i), types...)
				for n := range 2 {
					res, err := b.PublishSET(context.Background(), "acme", nil, set, DeliveryPush, time.Now())
					if err == nil && res.Duplicate != (n == 1) {
						err = fmt.Errorf("%s publish %d: duplicate %v", set.JTI, n, res.Duplicate)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := streamMsgs(t, b.JetStream(), "SECEVENTS"), uint64(workers*(each+each/2)); got != want {
		t.Errorf("want %d messages, got %d", want, got)
	}
}
