package bridge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openEmbedded opens a bridge with an embedded server listening on a
// random loopback port, its data in a temp dir.
func openEmbedded(tb testing.TB, change func(*Config)) *Bridge {
	tb.Helper()
	cfg := testConfig("")
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.DataDir = tb.TempDir()
	if change != nil {
		change(&cfg)
	}
	return openBridge(tb, cfg)
}

// consumerConn is a client logged in at b's listener as ConsumerUser. The
// permission violations the server reports arrive on violations.
type consumerConn struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func connectConsumer(tb testing.TB, b *Bridge) *consumerConn {
	tb.Helper()
	c := &consumerConn{violations: make(chan error, 64)}
	opts := append(b.ConsumerOptions(), nats.Name("test-consumer"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.violations <- err:
			default:
			}
		}))
	var err error
	if c.nc, err = nats.Connect(b.ClientURL(), opts...); err != nil {
		tb.Fatalf("connect as %s: %v", ConsumerUser, err)
	}
	tb.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		tb.Fatal(err)
	}
	return c
}

// refused waits for the server's permissions violation naming subject.
func (c *consumerConn) refused(tb testing.TB, subject string) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.violations:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			tb.Fatalf("no permissions violation reported for %s", subject)
		}
	}
}

// streamState returns the stream's message count and last sequence, read
// with setgate's own connection.
func streamState(tb testing.TB, b *Bridge) (uint64, uint64) {
	tb.Helper()
	s, err := b.JetStream().Stream(context.Background(), b.cfg.Stream)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// TestConsumerMayRead proves each read a consumer needs works as
// ConsumerUser: core subscriptions, stream info, message and direct get,
// ordered, durable pull (create, fetch, ack) and push consumers, consumer
// info, list and delete.
func TestConsumerMayRead(t *testing.T) {
	b := openEmbedded(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Direct get needs the stream to allow it; setgate's own user may
	// change the stream.
	if _, err := b.JetStream().UpdateStream(ctx, jetstream.StreamConfig{
		Name: "SECEVENTS", Subjects: []string{"secevent.>"}, Storage: jetstream.FileStorage,
		MaxAge: 168 * time.Hour, Duplicates: time.Hour, AllowDirect: true,
	}); err != nil {
		t.Fatalf("allow direct get: %v", err)
	}
	c := connectConsumer(t, b)
	live, err := c.nc.SubscribeSync("secevent.>")
	if err != nil {
		t.Fatal(err)
	}
	rej, err := c.nc.SubscribeSync("setgate.rejected.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-read", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	b.PublishRejection("acme", "invalid_key", "no", "jti-bad", DeliveryPush, time.Now())
	const subject = "secevent.caep.session-revoked.acme"
	if m, err := live.NextMsg(10 * time.Second); err != nil || m.Subject != subject {
		t.Fatalf("core subscription: want a message on %s, got %v, %v", subject, m, err)
	}
	if m, err := rej.NextMsg(10 * time.Second); err != nil || m.Subject != "setgate.rejected.acme" {
		t.Fatalf("rejection subscription: want a message on setgate.rejected.acme, got %v, %v", m, err)
	}

	s, err := c.js.Stream(ctx, "SECEVENTS")
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream info: want 1 message, got %d", n)
	}
	readOne := func(name string, cons jetstream.Consumer) {
		t.Helper()
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("%s fetch: %v", name, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Subject() != subject {
				t.Errorf("%s: want %s, got %s", name, subject, m.Subject())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("%s ack: %v", name, err)
			}
		}
		if n != 1 || batch.Error() != nil {
			t.Fatalf("%s: want 1 message, got %d (%v)", name, n, batch.Error())
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"account info, stream names and list", func(t *testing.T) {
			if _, err := c.js.AccountInfo(ctx); err != nil {
				t.Fatalf("account info: %v", err)
			}
			names := c.js.StreamNames(ctx)
			var got []string
			for n := range names.Name() {
				got = append(got, n)
			}
			if names.Err() != nil || !slices.Contains(got, "SECEVENTS") {
				t.Fatalf("stream names: want SECEVENTS among %v (%v)", got, names.Err())
			}
			list := c.js.ListStreams(ctx)
			n := 0
			for range list.Info() {
				n++
			}
			if list.Err() != nil || n == 0 {
				t.Fatalf("stream list: got %d streams (%v)", n, list.Err())
			}
		}},
		{"message get", func(t *testing.T) {
			if m, err := s.GetMsg(ctx, 1); err != nil || m.Subject != subject {
				t.Fatalf("want message 1 on %s, got %v, %v", subject, m, err)
			}
		}},
		{"direct get", func(t *testing.T) {
			if m, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject)); err != nil || m.Subject != subject {
				t.Fatalf("direct get by sequence: %v, %v", m, err)
			}
			if m, err := s.GetLastMsgForSubject(ctx, subject); err != nil || m.Subject != subject {
				t.Fatalf("direct get last by subject: %v, %v", m, err)
			}
		}},
		{"ordered consumer", func(t *testing.T) {
			cons, err := c.js.OrderedConsumer(ctx, "SECEVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"secevent.>"}})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if m := <-batch.Messages(); m == nil || m.Subject() != subject {
				t.Fatalf("want a message on %s, got %v (%v)", subject, m, batch.Error())
			}
		}},
		{"durable pull consumer", func(t *testing.T) {
			cons, err := c.js.CreateOrUpdateConsumer(ctx, "SECEVENTS", jetstream.ConsumerConfig{
				Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "secevent.caep.>",
			})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			readOne("durable", cons)
			info, err := cons.Info(ctx)
			if err != nil || info.NumAckPending != 0 || info.Delivered.Consumer != 1 {
				t.Fatalf("info after ack: want 1 delivered, 0 pending, got %+v, %v", info, err)
			}
			names := s.ConsumerNames(ctx)
			found := false
			for n := range names.Name() {
				found = found || n == "audit"
			}
			if names.Err() != nil || !found {
				t.Fatalf("consumer names: audit missing (%v)", names.Err())
			}
			if err := c.js.DeleteConsumer(ctx, "SECEVENTS", "audit"); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}},
		{"legacy durable create", func(t *testing.T) {
			// nats.go's older JetStreamContext creates durables on
			// $JS.API.CONSUMER.DURABLE.CREATE.<stream>.<name>.
			old, err := c.nc.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			sub, err := old.PullSubscribe("secevent.>", "legacy", nats.BindStream("SECEVENTS"))
			if err != nil {
				t.Fatalf("pull subscribe: %v", err)
			}
			msgs, err := sub.Fetch(1, nats.MaxWait(5*time.Second))
			if err != nil || len(msgs) != 1 {
				t.Fatalf("fetch: want 1 message, got %d, %v", len(msgs), err)
			}
			if err := msgs[0].AckSync(); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}},
		{"push consumer", func(t *testing.T) {
			cons, err := c.js.CreateOrUpdatePushConsumer(ctx, "SECEVENTS", jetstream.ConsumerConfig{
				Name: "pusher", DeliverSubject: c.nc.NewInbox(), AckPolicy: jetstream.AckExplicitPolicy,
				FlowControl: true, IdleHeartbeat: time.Second,
			})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			got := make(chan jetstream.Msg, 1)
			cc, err := cons.Consume(func(m jetstream.Msg) {
				_ = m.Ack()
				select {
				case got <- m:
				default:
				}
			})
			if err != nil {
				t.Fatalf("consume: %v", err)
			}
			defer cc.Stop()
			select {
			case m := <-got:
				if m.Subject() != subject {
					t.Fatalf("want %s, got %s", subject, m.Subject())
				}
			case <-ctx.Done():
				t.Fatal("push consumer delivered nothing")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
	select {
	case err := <-c.violations:
		t.Errorf("a read was refused: %v", err)
	default:
	}
}

// TestConsumerMayNotWrite proves ConsumerUser cannot put anything into the
// stream or take anything out of it (issue: embedded NATS accepted anyone).
func TestConsumerMayNotWrite(t *testing.T) {
	b := openEmbedded(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-first", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET: %v", err)
	}
	msgs, last := streamState(t, b)
	c := connectConsumer(t, b)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }

	tests := []struct {
		name    string
		subject string // the subject the server must refuse
		do      func() error
	}{
		{"publish a fake envelope", "secevent.caep.session-revoked.acme", func() error {
			return c.nc.Publish("secevent.caep.session-revoked.acme", []byte(`{"issuer":"acme","jti":"forged"}`))
		}},
		{"publish the Nats-Msg-Id of a coming SET", "secevent.caep.session-revoked.acme", func() error {
			m := nats.NewMsg("secevent.caep.session-revoked.acme")
			m.Header.Set(jetstream.MsgIDHeader, MsgID(testIss, "jti-coming", sessionRevoked))
			m.Data = []byte(`{}`)
			return c.nc.PublishMsg(m)
		}},
		{"publish a rejection", "setgate.rejected.acme", func() error {
			return c.nc.Publish("setgate.rejected.acme", []byte(`{}`))
		}},
		{"purge the stream", "$JS.API.STREAM.PURGE.SECEVENTS", func() error {
			s, err := c.js.Stream(ctx, "SECEVENTS")
			if err != nil {
				return err
			}
			ctx, cancel := short()
			defer cancel()
			return s.Purge(ctx)
		}},
		{"delete the stream", "$JS.API.STREAM.DELETE.SECEVENTS", func() error {
			ctx, cancel := short()
			defer cancel()
			return c.js.DeleteStream(ctx, "SECEVENTS")
		}},
		{"delete a message", "$JS.API.STREAM.MSG.DELETE.SECEVENTS", func() error {
			s, err := c.js.Stream(ctx, "SECEVENTS")
			if err != nil {
				return err
			}
			ctx, cancel := short()
			defer cancel()
			return s.DeleteMsg(ctx, 1)
		}},
		{"update the stream", "$JS.API.STREAM.UPDATE.SECEVENTS", func() error {
			ctx, cancel := short()
			defer cancel()
			_, err := c.js.UpdateStream(ctx, jetstream.StreamConfig{Name: "SECEVENTS", Subjects: []string{"secevent.>", "forged.>"}})
			return err
		}},
		{"create a stream", "$JS.API.STREAM.CREATE.SHADOW", func() error {
			ctx, cancel := short()
			defer cancel()
			_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHADOW", Subjects: []string{"shadow.>"}})
			return err
		}},
		{"write the lease bucket", "$KV." + LeaseBucket + ".acme", func() error {
			return c.nc.Publish("$KV."+LeaseBucket+".acme", []byte(`forged`))
		}},
		{"publish to setgate's own inbox", "_SETGATE_INBOX.x", func() error {
			return c.nc.Publish("_SETGATE_INBOX.x", []byte(`{"stream":"SECEVENTS","seq":1}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.do() // a core publish returns nil: the refusal comes asynchronously
			c.refused(t, tt.subject)
		})
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, l := streamState(t, b); m != msgs || l != last {
		t.Fatalf("stream changed: want %d messages up to %d, got %d up to %d", msgs, last, m, l)
	}
	// The SET whose Nats-Msg-Id the consumer tried to take is stored.
	res, err := b.PublishSET(ctx, "acme", nil, testSET("jti-coming", sessionRevoked), DeliveryPush, time.Now())
	if err != nil || res.Duplicate {
		t.Fatalf("the real SET: want stored, got %+v, %v", res, err)
	}
	if _, err := b.JetStream().Stream(ctx, "SHADOW"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream SHADOW: want not found, got %v", err)
	}
}

// TestEmbeddedListenerRefusesOthers: no anonymous client, no wrong
// password, not setgate's internal user with a guessed password.
func TestEmbeddedListenerRefusesOthers(t *testing.T) {
	b := openEmbedded(t, nil)
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo(ConsumerUser, "wrong-password-wrong-password")}},
		{"empty password", []nats.Option{nats.UserInfo(ConsumerUser, "")}},
		{"internal user", []nats.Option{nats.UserInfo(internalUser, "guess")}},
		{"token", []nats.Option{nats.Token("anything")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(b.ClientURL(), append(tt.opts, nats.Timeout(5*time.Second))...)
			if err == nil {
				nc.Close()
				t.Fatal("want the connection refused")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("want %v, got %v", nats.ErrAuthorization, err)
			}
		})
	}
}

func TestEmbeddedWithoutListener(t *testing.T) {
	dir := t.TempDir()
	b := openEmbedded(t, func(c *Config) { c.EmbeddedAddr, c.DataDir = "", dir })
	if b.srv.Addr() != nil || b.ClientURL() != "" || b.ConsumerOptions() != nil || b.ConsumerPasswordFile() != "" {
		t.Fatalf("want no listener, got addr %v, url %q", b.srv.Addr(), b.ClientURL())
	}
	if _, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-1", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("PublishSET in-process: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ConsumerPasswordFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no listener, yet a password file: %v", err)
	}
}

func TestConsumerPasswordFileGenerated(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("")
	cfg.EmbeddedAddr, cfg.DataDir = "127.0.0.1:0", dir
	b := openBridge(t, cfg)
	path := filepath.Join(dir, ConsumerPasswordFileName)
	if b.ConsumerPasswordFile() != path {
		t.Fatalf("want password file %s, got %s", path, b.ConsumerPasswordFile())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("want mode 0600, got %v", fi.Mode().Perm())
	}
	pw, err := ReadConsumerPassword(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 43 || strings.ContainsAny(pw, " \n+/=") {
		t.Errorf("want 32 random bytes as 43 base64url characters, got %d characters", len(pw))
	}
	nc, err := nats.Connect(b.ClientURL(), nats.UserInfo(ConsumerUser, pw))
	if err != nil {
		t.Fatalf("connect with the file's password: %v", err)
	}
	nc.Close()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A restart keeps the password.
	b2 := openBridge(t, cfg)
	if again, err := ReadConsumerPassword(path); err != nil || again != pw {
		t.Fatalf("password changed across a restart (%v)", err)
	}
	nc, err = nats.Connect(b2.ClientURL(), nats.UserInfo(ConsumerUser, pw))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	nc.Close()
}

func TestConsumerPasswordFileGiven(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret", "password")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	const pw = "$2a$ an operator's password that looks like a bcrypt hash"
	if err := os.WriteFile(path, []byte("  "+pw+"\n\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	b := openEmbedded(t, func(c *Config) { c.ConsumerPasswordFile = path })
	nc, err := nats.Connect(b.ClientURL(), nats.UserInfo(ConsumerUser, pw))
	if err != nil {
		t.Fatalf("connect with the given password: %v", err)
	}
	nc.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("the given file was changed: %v, %v", fi.Mode(), err)
	}
}

func TestConsumerPasswordFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
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
	const secret = "0123456789abcdef-secret"
	tests := []struct {
		name, path, want string
	}{
		{"fifo", fifo, "not a regular file"},
		{"directory", dir, "not a regular file"},
		{"too large", write("large", secret+strings.Repeat("x", maxPasswordFile)), "larger than 4096 bytes"},
		{"empty", write("empty", "\n"), "at least 16 characters"},
		{"too short", write("short", "short\n"), "at least 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("")
			cfg.EmbeddedAddr, cfg.DataDir, cfg.ConsumerPasswordFile = "127.0.0.1:0", t.TempDir(), tt.path
			b, err := Open(context.Background(), cfg, testLogger(t))
			if err == nil {
				b.Close(context.Background())
				t.Fatal("Open: want an error")
			}
			if !strings.HasPrefix(err.Error(), "bridge: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a bridge: error containing %q, got %v", tt.want, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestEmbeddedSync(t *testing.T) {
	tests := []struct {
		sync string
		want bool
	}{
		{"", true},
		{SyncAlways, true},
		{SyncInterval, false},
	}
	for _, tt := range tests {
		t.Run("sync="+tt.sync, func(t *testing.T) {
			b := openEmbedded(t, func(c *Config) { c.EmbeddedSync = tt.sync })
			if got := b.srv.JetStreamConfig().SyncAlways; got != tt.want {
				t.Fatalf("JetStream sync_always: want %v, got %v", tt.want, got)
			}
		})
	}
}
