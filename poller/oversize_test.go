package poller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestOversizedSETsReported: a batch holds good SETs, one SET longer than
// MaxSETBytes (the push body limit) and one within it whose message
// exceeds the NATS server's max_payload. Both big ones can never be
// stored: they go into setErrs with invalid_request (so the transmitter
// stops redelivering them), the good ones are acknowledged, only the
// good ones are stored, and the loop does not back off: the very next
// request carries every ack and setErr, and no wait was taken before it.
func TestOversizedSETsReported(t *testing.T) {
	t.Parallel()
	const maxPayload, maxSET = 16 << 10, 32 << 10
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
	t.Cleanup(func() { shutdownServer(srv) })
	r := newRig(t, rigOptions{NATSURL: srv.ClientURL()})

	good := r.enqueue(t, 3)
	big := func(n int) (string, string) {
		jti, tok, err := r.tx.SET("urn:example:event:big", map[string]any{"blob": strings.Repeat("b", n)}, "big"+emailDomain)
		if err != nil {
			t.Fatal(err)
		}
		r.ps.Enqueue(jti, tok)
		return jti, tok
	}
	tooLargeToStore, tok1 := big(20 << 10)
	overLimit, tok2 := big(40 << 10)
	if len(tok1) > maxSET || len(tok2) <= maxSET {
		t.Fatalf("SET sizes %d and %d: want one within and one over %d", len(tok1), len(tok2), maxSET)
	}

	cfg := r.config(t)
	cfg.MaxSETBytes = maxSET
	sleeps := &recorder{}
	cfg.Sleep = sleeps.Sleep
	l, stop := start(t, cfg, r.in)
	// The second request is the one after the batch.
	checkFor(t, func() error {
		if st := l.Status(); st.Polls < 2 {
			return fmt.Errorf("%d polls answered", st.Polls)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	reqs := r.ps.Requests()
	if len(reqs) < 2 {
		t.Fatalf("want at least 2 requests, got %d", len(reqs))
	}
	next := reqs[1]
	t.Logf("request after the batch: %d acks, setErrs %v; waits %v", len(next.Ack), next.SetErrs, sleeps.all())
	if len(next.Ack) != len(good) {
		t.Errorf("the request after the batch: want the %d good SETs acknowledged, got %q", len(good), next.Ack)
	}
	for jti, want := range map[string]string{
		tooLargeToStore: fmt.Sprintf("the NATS server takes at most %d)", maxPayload),
		overLimit:       fmt.Sprintf("The SET is larger than this receiver accepts (%d bytes; at most %d).", len(tok2), maxSET),
	} {
		got, ok := next.SetErrs[jti]
		if !ok || got.Err != "invalid_request" || !strings.Contains(got.Description, want) {
			t.Errorf("%s: want setErr invalid_request containing %q, got %+v (present %v)", jti, want, got, ok)
		}
	}
	if len(next.SetErrs) != 2 {
		t.Errorf("want exactly the 2 big SETs in setErrs, got %v", next.SetErrs)
	}
	// Nothing here makes the loop wait: the batch had SETs, and the long
	// polls after it were held by the transmitter (not early answers).
	// Any wait is a backoff.
	if w := sleeps.all(); len(w) != 0 {
		t.Errorf("the loop waited %v: it backed off", w)
	}
	if st := l.Status(); st.LastError != "" || st.ConsecutiveFailures != 0 {
		t.Errorf("want no failure recorded, got last error %q, %d consecutive failures", st.LastError, st.ConsecutiveFailures)
	}
	got := stored(t, r.br.JetStream())
	checkStoredOnce(t, got, good)
	if len(got) != len(good) {
		t.Errorf("want only the %d good SETs stored, got %v", len(good), got)
	}
}
