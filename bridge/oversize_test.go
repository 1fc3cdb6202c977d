package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// smallPayload is the max_payload of the servers below: small, so that a
// SET over it is quick to build.
const smallPayload = 16 << 10

// openSmallPayload opens a bridge to an in-process nats-server whose
// max_payload is maxPayload.
func openSmallPayload(tb testing.TB, maxPayload int32) *Bridge {
	tb.Helper()
	srv := runServerOpts(tb, &server.Options{Port: -1, JetStream: true, StoreDir: tb.TempDir(), MaxPayload: maxPayload})
	return openBridge(tb, testConfig(srv.ClientURL()))
}

// checkTooLarge fails unless err refuses the SET jti as too large to store:
// a *verify.Error with invalid_request that the intake classifies as
// Rejected, never as unavailable.
func checkTooLarge(tb testing.TB, err error, jti, wantDesc string) {
	tb.Helper()
	var ve *verify.Error
	if !errors.As(err, &ve) {
		tb.Fatalf("want a *verify.Error, got %v", err)
	}
	if ve.Code != verify.CodeInvalidRequest || ve.JTI != jti || !strings.HasPrefix(ve.Description, "The SET is too large to store (") {
		tb.Errorf("want invalid_request for %s saying the SET is too large to store, got %q %q %q", jti, ve.Code, ve.JTI, ve.Description)
	}
	if wantDesc != "" && !strings.Contains(ve.Description, wantDesc) {
		tb.Errorf("want the description to contain %q, got %q", wantDesc, ve.Description)
	}
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, intake.ErrTooLarge) {
		tb.Errorf("want ErrTooLarge (bridge and intake), got %v", err)
	}
	if errors.Is(err, ErrUnavailable) {
		tb.Errorf("a SET that can never be stored is classified unavailable (retried forever): %v", err)
	}
	if got := intake.Classify(Result{}, err); got != intake.Rejected {
		tb.Errorf("want Classify Rejected, got %v", got)
	}
}

// TestOversizedSETRejectedNotUnavailable: a verified SET whose envelope
// exceeds the embedded server's max_payload (1 MiB) is refused as
// invalid_request, not reported unavailable: the second would leave it
// with its transmitter to be retried forever. Nothing is stored and the
// connection keeps working.
func TestOversizedSETRejectedNotUnavailable(t *testing.T) {
	b := openEmbedded(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := testSET("jti-big", sessionRevoked)
	set.Raw = strings.Repeat("A", 2<<20)
	_, err := b.PublishSET(ctx, "acme", nil, set, DeliveryPoll, time.Now())
	checkTooLarge(t, err, "jti-big", fmt.Sprintf("the NATS server takes at most %d)", b.Conn().MaxPayload()))
	if n := streamMsgs(t, b.JetStream(), "SECEVENTS"); n != 0 {
		t.Errorf("want nothing stored, got %d messages", n)
	}
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-next", sessionRevoked), DeliveryPoll, time.Now()); err != nil {
		t.Fatalf("the next SET: %v", err)
	}
}

// TestPublishSETTooLarge: every message is measured against the server's
// max_payload before any is published, so a SET with one oversized event
// (of several) stores none; a SET just under the limit is stored, and
// the connection stays usable after a refusal.
func TestPublishSETTooLarge(t *testing.T) {
	b := openSmallPayload(t, smallPayload)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// sized returns a SET (one session-revoked event unless types are
	// given) whose first message on b is exactly size bytes.
	sized := func(jti string, size int64, types ...string) *verify.SET {
		if len(types) == 0 {
			types = []string{sessionRevoked}
		}
		set := testSET(jti, types...)
		m := new(outMsg)
		if err := b.build(m, "acme", nil, set, set.Events[0], DeliveryPush, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		set.Raw += strings.Repeat("A", int(size-m.size()))
		return set
	}
	bigSecond := testSET("jti-second", sessionRevoked, credentialChange)
	bigSecond.Events[1].Payload = json.RawMessage(`{"blob":"` + strings.Repeat("B", smallPayload) + `"}`)
	tests := []struct {
		name      string
		set       *verify.SET
		wantError bool
	}{
		{"exactly the max payload", sized("jti-fits", smallPayload), false},
		{"one byte over", sized("jti-over", smallPayload+1), true},
		{"one event", sized("jti-one", 4*smallPayload), true},
		{"two events, both over", sized("jti-both", 2*smallPayload, sessionRevoked, credentialChange), true},
		{"two events, the second over", bigSecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := streamMsgs(t, b.JetStream(), "SECEVENTS")
			_, err := b.PublishSET(ctx, "acme", nil, tt.set, DeliveryPush, time.Unix(0, 0))
			after := streamMsgs(t, b.JetStream(), "SECEVENTS")
			if !tt.wantError {
				if err != nil || after != before+1 {
					t.Fatalf("want stored, got %v (%d → %d messages)", err, before, after)
				}
				return
			}
			checkTooLarge(t, err, tt.set.JTI, fmt.Sprintf("the NATS server takes at most %d)", smallPayload))
			if after != before {
				t.Errorf("want no event of a refused SET stored, got %d → %d messages", before, after)
			}
			if _, err := b.PublishSET(ctx, "acme", nil, testSET(tt.set.JTI+"-next", sessionRevoked), DeliveryPush, time.Now()); err != nil {
				t.Fatalf("the next SET: %v", err)
			}
		})
	}
}

// TestMsgSizeIsWhatNATSCounts: the size the bridge measures is the one
// nats.go holds against the server's max_payload (body and encoded
// headers, values trimmed): a message of exactly max_payload is sent, one
// byte more is ErrMaxPayload, which publishErr turns into the refusal
// (the backstop for a server whose max_payload shrank after the check).
func TestMsgSizeIsWhatNATSCounts(t *testing.T) {
	b := openSmallPayload(t, smallPayload)
	for _, pad := range []string{"", " padded jti "} {
		set := testSET(pad+"jti-exact", sessionRevoked)
		m := new(outMsg)
		if err := b.build(m, "acme", nil, set, set.Events[0], DeliveryPush, time.Now()); err != nil {
			t.Fatal(err)
		}
		if m.size() != msgSize(&m.Msg) {
			t.Fatalf("size %d, msgSize %d", m.size(), msgSize(&m.Msg))
		}
		m.Data = append(m.Data, strings.Repeat(" ", int(smallPayload-m.size()))...)
		m.Subject = "test.exact" // outside the stream: core NATS only
		if err := b.Conn().PublishMsg(&m.Msg); err != nil {
			t.Fatalf("%q: a message of exactly max_payload (%d): %v", pad, m.size(), err)
		}
		m.Data = append(m.Data, ' ')
		err := b.Conn().PublishMsg(&m.Msg)
		if !errors.Is(err, nats.ErrMaxPayload) {
			t.Fatalf("%q: one byte over: want ErrMaxPayload, got %v", pad, err)
		}
		checkTooLarge(t, b.publishErr(set, &m.Msg, err), set.JTI, fmt.Sprintf("(%d bytes; the NATS server takes at most %d)", smallPayload+1, smallPayload))
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatalf("the connection after the refusals: %v", err)
	}
}

// TestPublishSETOverStreamMaxMsgSize: a stream managed by operators with
// a max_msg_size below the server's max_payload refuses a larger message
// with JetStream error 10054, which can never succeed either: refused as
// too large, not unavailable. Single- and multi-event SETs take the two
// publish paths.
func TestPublishSETOverStreamMaxMsgSize(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	js := serverJS(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SECEVENTS", Subjects: []string{"secevent.>"}, MaxMsgSize: 4096}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.ClientURL())
	cfg.StreamManage = false
	b := openBridge(t, cfg)
	for _, types := range [][]string{{sessionRevoked}, {sessionRevoked, credentialChange}} {
		set := testSET(fmt.Sprintf("jti-%d", len(types)), types...)
		set.Raw = strings.Repeat("A", 8192)
		_, err := b.PublishSET(ctx, "acme", nil, set, DeliveryPush, time.Now())
		checkTooLarge(t, err, set.JTI, "over the stream's maximum message size")
		if !isAPIError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum) {
			t.Errorf("want the JetStream error 10054 kept for the log, got %v", err)
		}
	}
	if _, err := b.PublishSET(ctx, "acme", nil, testSET("jti-small", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatalf("a small SET: %v", err)
	}
}

// TestMessageSizeBound: for real SETs (signed, verified) of every shape
// the bound covers, the message a SET of B bytes makes is at most
// MessageSizeBound(B), whatever its issuer name or delivery; and
// MaxSETBytes is the bound's inverse.
func TestMessageSizeBound(t *testing.T) {
	tx, err := transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	v, err := verify.New(context.Background(), verify.Config{
		Name: "acme", Issuer: tx.Issuer(), Audience: []string{tx.Audience()}, JWKSURI: tx.JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	b := &Bridge{cfg: Config{Stream: "SECEVENTS"}, subjects: mustSubjects(t)}
	const unknownType = "urn:example:event:thing"
	tests := []struct {
		name   string
		claims func(map[string]any)
	}{
		{"session revoked", func(map[string]any) {}},
		{"longest jti, long txn", func(c map[string]any) { c["jti"], c["txn"] = strings.Repeat("j", 256), strings.Repeat("t", 4000) }},
		{"long event type", func(c map[string]any) {
			c["events"] = map[string]any{unknownType + strings.Repeat("x", 4000): map[string]any{}}
		}},
		{"large payload", func(c map[string]any) {
			c["events"] = map[string]any{unknownType: map[string]any{"blob": strings.Repeat("b", 20000)}}
		}},
		{"many audiences", func(c map[string]any) {
			aud := []string{tx.Audience()}
			for i := range 500 {
				aud = append(aud, fmt.Sprintf("a%d", i))
			}
			c["aud"] = aud
		}},
		// Go's encoding/json (this transmitter) writes <, > and & as
		// \u003c: the escaped form the envelope keeps, no growth.
		{"HTML characters escaped by the transmitter", func(c map[string]any) {
			c["events"] = map[string]any{unknownType: map[string]any{"blob": strings.Repeat("<&>", 3000)}}
		}},
		{"tiny", func(c map[string]any) {
			delete(c, "txn")
			c["jti"] = "j"
			c["events"] = map[string]any{"x:y": map[string]any{}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tx.Claims(transmitter.SessionRevoked, nil, "alice@acme.example")
			tt.claims(c)
			tok, err := tx.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			set, err := v.Verify(context.Background(), []byte(tok))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			bound := MessageSizeBound(int64(len(tok)), "SECEVENTS")
			for _, name := range []string{"a", strings.Repeat("n", maxIssuerName)} {
				m := new(outMsg)
				if err := b.build(m, name, nil, set, set.Events[0], DeliveryPoll, time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)); err != nil {
					t.Fatal(err)
				}
				if m.size() > bound {
					t.Errorf("issuer %q: a SET of %d bytes made a message of %d bytes, over the bound %d", name, len(tok), m.size(), bound)
				}
				if len(name) == maxIssuerName {
					t.Logf("SET %d B → message %d B (%.2f×), bound %d B", len(tok), m.size(), float64(m.size())/float64(len(tok)), bound)
				}
			}
		})
	}
	for _, maxPayload := range []int64{0, 400, 4096, 64 << 10, 1 << 20, 8 << 20} {
		n := MaxSETBytes(maxPayload, "SECEVENTS")
		if n > 0 && MessageSizeBound(n, "SECEVENTS") > maxPayload {
			t.Errorf("max payload %d: MaxSETBytes %d has bound %d", maxPayload, n, MessageSizeBound(n, "SECEVENTS"))
		}
		if MessageSizeBound(n+1, "SECEVENTS") <= maxPayload {
			t.Errorf("max payload %d: MaxSETBytes %d is not the largest", maxPayload, n)
		}
	}
	if got := MessageSizeBound(65536, "SECEVENTS"); got > 1<<20 {
		t.Errorf("the default SETGATE_MAX_BODY_BYTES (65536) does not fit the default max_payload (1 MiB): bound %d", got)
	}
}

func mustSubjects(tb testing.TB) *Subjects {
	tb.Helper()
	s, err := NewSubjects("secevent")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
