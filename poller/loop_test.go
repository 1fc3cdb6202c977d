package poller_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/verify"
)

func TestHappyPath(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	const n = 25
	sets := r.enqueue(t, n)
	l, stop := start(t, r.config(t), r.in)

	allAcked(t, r.ps, sets)
	// Acknowledged once each; the shutdown below may repeat the acks of
	// the long poll it interrupts, as it cannot know they arrived.
	for jti, times := range r.ps.Acked() {
		if times != 1 {
			t.Errorf("jti %s: want acknowledged once, got %d times", jti, times)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkStoredOnce(t, stored(t, r.br.JetStream()), sets)
	if errs := r.ps.Errors(); len(errs) != 0 {
		t.Errorf("want no setErrs, got %v", errs)
	}

	reqs := r.ps.Requests()
	if len(reqs) < 3 {
		t.Fatalf("want at least 3 requests for %d SETs at maxEvents 10, got %d", n, len(reqs))
	}
	for i, req := range reqs {
		if req.Status == 0 {
			continue // the interrupted long poll, still ending
		}
		if req.MaxEvents != nil && *req.MaxEvents == 0 {
			// The shutdown acknowledgement.
			if !req.ReturnImmediately || len(req.Ack) == 0 {
				t.Errorf("request %d: want an acknowledge-only request with returnImmediately, got %+v", i, req)
			}
			continue
		}
		for h, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer " + pollBearer} {
			if got := req.Header.Get(h); got != want {
				t.Errorf("request %d: want %s %q, got %q", i, h, want, got)
			}
		}
		if req.MaxEvents == nil || *req.MaxEvents != 10 || req.ReturnImmediately {
			t.Errorf("request %d: want maxEvents 10 and a long poll, got maxEvents %v returnImmediately %v", i, req.MaxEvents, req.ReturnImmediately)
		}
		if req.SetErrs != nil || req.Header.Get("Content-Language") != "" {
			t.Errorf("request %d: want no setErrs and no Content-Language, got %v %q", i, req.SetErrs, req.Header.Get("Content-Language"))
		}
	}
	if len(reqs[0].Ack) != 0 {
		t.Errorf("first request: want no ack, got %q", reqs[0].Ack)
	}
	st := l.Status()
	if st.Acked != n || st.SetErrs != 0 || st.Received != n || st.ConsecutiveFailures != 0 || !st.LeaseHeld || st.LastPoll.IsZero() {
		t.Errorf("status: want %d acked, %d received, no errors, lease held, got %+v", n, n, st)
	}
}

func TestInvalidSETs(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	other, err := transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })

	valid := r.enqueue(t, 4)
	sign := func(tx *transmitter.Transmitter, mutate func(map[string]any)) (string, string) {
		c := r.tx.Claims(transmitter.SessionRevoked, nil, "bob"+emailDomain)
		mutate(c)
		tok, err := tx.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		jti, _ := c["jti"].(string)
		return jti, tok
	}
	want := map[string]string{}
	// Signed by a key the issuer never published.
	jti, tok := sign(other, func(map[string]any) {})
	r.ps.Enqueue(jti, tok)
	want[jti] = "invalid_key"
	// For another audience.
	jti, tok = sign(r.tx, func(c map[string]any) { c["aud"] = "https://elsewhere.example/" })
	r.ps.Enqueue(jti, tok)
	want[jti] = "invalid_audience"
	// From another issuer.
	jti, tok = sign(r.tx, func(c map[string]any) { c["iss"] = "https://evil.example/" })
	r.ps.Enqueue(jti, tok)
	want[jti] = "invalid_issuer"
	// No iat.
	jti, tok = sign(r.tx, func(c map[string]any) { delete(c, "iat") })
	r.ps.Enqueue(jti, tok)
	want[jti] = "invalid_request"
	// Not a JWT at all.
	r.ps.Enqueue("garbage-1", "not.a-jwt")
	want["garbage-1"] = "invalid_request"
	// A valid SET under a map key that is not its jti.
	jti, tok = sign(r.tx, func(map[string]any) {})
	r.ps.EnqueueAs("wrong-key", jti, tok)
	want["wrong-key"] = "invalid_request"

	_, stop := start(t, r.config(t), r.in)
	allAcked(t, r.ps, valid)
	checkFor(t, func() error {
		if n := len(r.ps.Errors()); n != len(want) {
			return fmt.Errorf("want %d setErrs, got %d", len(want), n)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	errs := r.ps.Errors()
	for key, code := range want {
		got, ok := errs[key]
		if !ok || got.Err != code || got.Description == "" {
			t.Errorf("key %s: want setErr %q with a description, got %+v (present %v)", key, code, got, ok)
		}
	}
	if d := errs["wrong-key"].Description; d != "The map key of this SET does not match its jti claim." {
		t.Errorf("wrong map key: want its own description, got %q", d)
	}
	got := stored(t, r.br.JetStream())
	checkStoredOnce(t, got, valid)
	if len(got) != len(valid) {
		t.Errorf("want only the %d valid SETs stored, got %d jtis: %v", len(valid), len(got), got)
	}
	for i, req := range r.ps.Requests() {
		if len(req.SetErrs) > 0 && req.Header.Get("Content-Language") != "en" {
			t.Errorf("request %d carries setErrs: want Content-Language en, got %q", i, req.Header.Get("Content-Language"))
		}
	}
	if acked := r.ps.Acked(); len(acked) != len(valid) {
		t.Errorf("want only the %d valid SETs acknowledged, got %v", len(valid), acked)
	}
}

func TestNATSOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := runServer(t, -1, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	r := newRig(t, rigOptions{NATSURL: url})
	cfg := r.config(t)
	l, stop := start(t, cfg, r.in)

	before := r.enqueue(t, 6)
	allAcked(t, r.ps, before)

	shutdownServer(srv)
	during := r.enqueue(t, 6)
	// The loop receives them, fails to store them, and backs off.
	checkFor(t, func() error {
		if st := l.Status(); st.ConsecutiveFailures < 3 {
			return fmt.Errorf("want at least 3 consecutive failures, got %+v", st)
		}
		return nil
	})
	acked := r.ps.Acked()
	for _, s := range during {
		if acked[s.jti] != 0 {
			t.Errorf("jti %s acknowledged while NATS was down", s.jti)
		}
	}
	if st := l.Status(); st.LastError == "" || st.NextAttempt.IsZero() && st.ConsecutiveFailures == 0 {
		t.Errorf("want the publish failure in the status, got %+v", st)
	}

	runServer(t, port, dir)
	allAcked(t, r.ps, during)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	all := append(slices.Clone(before), during...)
	got := stored(t, r.br.JetStream())
	checkStoredOnce(t, got, all)
	for jti := range r.ps.Acked() {
		if len(got[jti]) == 0 {
			t.Errorf("jti %s acknowledged but not in the stream", jti)
		}
	}
	if len(got) != len(all) {
		t.Errorf("want %d SETs stored, got %d", len(all), len(got))
	}
}

func TestTransmitterFaults(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	rec := &recorder{}
	cfg := r.config(t)
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	cfg.MaxResponseBytes = 64 << 10
	cfg.Sleep = rec.Sleep
	cfg.Rand = func(n int64) int64 { return n - 1 } // the top of the jitter range
	timeout := cfg.LongPollTimeout + cfg.TimeoutMargin

	r.ps.Inject(
		transmitter.Fault{Status: 500},
		transmitter.Fault{BadJSON: true},
		transmitter.Fault{Delay: timeout + time.Second},
		transmitter.Fault{Pad: 65 << 10},
		transmitter.Fault{Status: 503},
	)
	sets := r.enqueue(t, 12)
	l, stop := start(t, cfg, r.in)
	allAcked(t, r.ps, sets)

	// The five faults gave five failures in a row, backing off
	// exponentially up to the cap; then the loop recovered.
	wantBackoff := []time.Duration{10, 20, 40, 40, 40}
	got := rec.all()
	if len(got) < len(wantBackoff) {
		t.Fatalf("want at least %d backoffs, got %v", len(wantBackoff), got)
	}
	for i, w := range wantBackoff {
		if got[i] != w*time.Millisecond {
			t.Errorf("backoff %d: want %v, got %v (all: %v)", i+1, w*time.Millisecond, got[i], got)
		}
	}
	st := l.Status()
	if st.ConsecutiveFailures != 0 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Errorf("want recovered with the last error kept, got %+v", st)
	}
	abandoned := 0
	for _, req := range r.ps.Requests() {
		if req.Status == -1 {
			abandoned++
		}
	}
	if abandoned != 1 {
		t.Errorf("want the delayed request given up by the client, got %d abandoned", abandoned)
	}

	// The transmitter delivers the acknowledged SETs again: acknowledged
	// again, stored once.
	r.ps.Inject(transmitter.Fault{Duplicate: true})
	more := r.enqueue(t, 2)
	allAcked(t, r.ps, more)
	checkFor(t, func() error {
		for _, s := range sets {
			if n := r.ps.Acked()[s.jti]; n < 2 {
				return fmt.Errorf("jti %s: want acknowledged again after redelivery, got %d", s.jti, n)
			}
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	all := append(slices.Clone(sets), more...)
	got2 := stored(t, r.br.JetStream())
	checkStoredOnce(t, got2, all)
	if len(got2) != len(all) {
		t.Errorf("want %d SETs stored, got %d", len(all), len(got2))
	}
}

// hookIntake calls after once Accept returned for the n-th time.
type hookIntake struct {
	in    intake.Intake
	n     int64
	after func()
	calls atomic.Int64
}

func (h *hookIntake) Accept(ctx context.Context, src *intake.Source, raw []byte, d intake.Delivery) (intake.Result, error) {
	res, err := h.in.Accept(ctx, src, raw, d)
	if h.calls.Add(1) == h.n {
		h.after()
	}
	return res, err
}

func (h *hookIntake) Reject(ctx context.Context, src *intake.Source, e *verify.Error, d intake.Delivery) {
	h.in.Reject(ctx, src, e, d)
}

func TestShutdownAcknowledges(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	const n = 8
	sets := r.enqueue(t, n)
	cfg := r.config(t)
	cfg.MaxEvents = 100
	cfg.Concurrency = 2

	// Stop the loop while it is in the middle of its first batch.
	l, err := poller.New(cfg, nil)
	if err == nil || l != nil {
		t.Fatal("want New to refuse a nil intake")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := &hookIntake{in: r.in, n: 1, after: cancel}
	l, err = poller.New(cfg, hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := l.Run(ctx); err == nil {
		t.Error("want a second Run refused")
	}

	reqs := r.ps.Requests()
	if len(reqs) != 2 {
		t.Fatalf("want the poll and the acknowledge-only request, got %d requests", len(reqs))
	}
	last := reqs[1]
	if last.MaxEvents == nil || *last.MaxEvents != 0 || !last.ReturnImmediately {
		t.Errorf("last request: want maxEvents 0 and returnImmediately, got %v %v", last.MaxEvents, last.ReturnImmediately)
	}
	wantAck := make([]string, 0, n)
	for _, s := range sets {
		wantAck = append(wantAck, s.jti)
	}
	slices.Sort(wantAck)
	gotAck := slices.Sorted(slices.Values(last.Ack))
	if !slices.Equal(gotAck, wantAck) {
		t.Errorf("last request: want every SET of the batch acknowledged, got %q", gotAck)
	}
	checkStoredOnce(t, stored(t, r.br.JetStream()), sets)
	if st := l.Status(); st.Acked != n || st.PendingAcks != 0 {
		t.Errorf("status: want %d acked, none pending, got %+v", n, st)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	src := &intake.Source{Name: "acme", Verifier: nopVerifier{}}
	tests := []struct {
		name string
		cfg  poller.Config
	}{
		{"no source", poller.Config{Endpoint: "https://x.example/poll"}},
		{"no endpoint", poller.Config{Source: src}},
		{"plain http", poller.Config{Source: src, Endpoint: "http://x.example/poll"}},
		{"negative", poller.Config{Source: src, Endpoint: "https://x.example/poll", MaxEvents: -1}},
		{"negative max SET size", poller.Config{Source: src, Endpoint: "https://x.example/poll", MaxSETBytes: -1}},
		{"backoff", poller.Config{Source: src, Endpoint: "https://x.example/poll", MinBackoff: time.Second, MaxBackoff: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := poller.New(tt.cfg, nopIntake{}); err == nil {
				t.Error("want an error")
			}
		})
	}
	if _, err := poller.New(poller.Config{Source: src, Endpoint: "http://127.0.0.1:1/poll"}, nopIntake{}); err != nil {
		t.Errorf("loopback http: want accepted, got %v", err)
	}
}

type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, []byte) (*verify.SET, error) { return nil, nil }

type nopIntake struct{}

func (nopIntake) Accept(context.Context, *intake.Source, []byte, intake.Delivery) (intake.Result, error) {
	return intake.Result{}, nil
}

func (nopIntake) Reject(context.Context, *intake.Source, *verify.Error, intake.Delivery) {}

// A transmitter that keeps answering 400 to a request carrying acks gets
// them dropped after three tries; the SETs come again and are stored once.
func TestAcksDroppedAfterRepeated400(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	sets := r.enqueue(t, 2)
	r.ps.Inject(transmitter.Fault{}, transmitter.Fault{Status: 400}, transmitter.Fault{Status: 400}, transmitter.Fault{Status: 400})
	_, stop := start(t, r.config(t), r.in)
	allAcked(t, r.ps, sets)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs := r.ps.Requests()
	if len(reqs) < 6 {
		t.Fatalf("want at least 6 requests, got %d", len(reqs))
	}
	for i := 1; i <= 3; i++ {
		if len(reqs[i].Ack) != 2 || reqs[i].Status != 400 {
			t.Errorf("request %d: want the 2 acks refused with 400, got %q %d", i, reqs[i].Ack, reqs[i].Status)
		}
	}
	if len(reqs[4].Ack) != 0 {
		t.Errorf("request 4: want the acks dropped, got %q", reqs[4].Ack)
	}
	checkStoredOnce(t, stored(t, r.br.JetStream()), sets)
}
