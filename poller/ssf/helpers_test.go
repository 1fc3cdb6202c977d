package ssf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// Generous bounds on waiting for something that must happen; they only
// stop a hung test and assert nothing about speed.
const (
	waitLong = 30 * time.Second
	tick     = 5 * time.Millisecond
)

const (
	mgmtToken  = "ssf-management-secret"
	pushToken  = "push-secret"
	pollToken  = "poll-secret"
	supported1 = transmitter.SessionRevoked
	supported2 = transmitter.CredentialChange
	unknownEvt = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
)

// checkFor calls f every tick until it returns nil, failing the test with
// f's last error after waitLong.
func checkFor(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", waitLong, err)
		}
		time.Sleep(tick)
	}
}

// newSSF starts an SSF test transmitter (ES256) whose management API
// wants mgmtToken and whose poll endpoint wants pollToken.
func newSSF(tb testing.TB, path string) *transmitter.SSFTransmitter {
	tb.Helper()
	sx, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{
		Alg: "ES256", Path: path, Bearer: mgmtToken, PollBearer: pollToken, PollHold: 50 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sx.Close() })
	return sx
}

func discover(tb testing.TB, sx *transmitter.SSFTransmitter) *ssf.Metadata {
	tb.Helper()
	meta, err := ssf.Discover(context.Background(), nil, sx.Issuer())
	if err != nil {
		tb.Fatal(err)
	}
	return meta
}

func newClient(tb testing.TB, sx *transmitter.SSFTransmitter) *ssf.Client {
	tb.Helper()
	return ssf.New(discover(tb, sx), poller.BearerToken(mgmtToken), nil, nil)
}

// newVerifier is the issuer's real verifier, as setgate builds it.
func newVerifier(tb testing.TB, sx *transmitter.SSFTransmitter) *verify.Verifier {
	tb.Helper()
	v, err := verify.New(context.Background(), verify.Config{
		Name: "acme", Issuer: sx.Issuer(), Audience: []string{sx.Transmitter().Audience()},
		JWKSURI: sx.Transmitter().JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{MinRefreshInterval: time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	return v
}

// gateway plays setgate's side of delivery: it verifies every SET with
// the issuer's real verifier and hands accepted SSF events to the
// manager's Observe, as the owner's wiring will. Push SETs arrive at its
// HTTP server; poll SETs are fetched by poll.
type gateway struct {
	v   *verify.Verifier
	srv *httptest.Server

	mu       sync.Mutex
	mgr      *ssf.Manager
	outcomes []outcome
	ack      []string
	setErrs  map[string]transmitter.SetErr
}

// outcome is what the gateway decided about one SET.
type outcome struct {
	JTI       string
	EventType string
	Code      verify.Code // "" when accepted
}

func newGateway(tb testing.TB, v *verify.Verifier) *gateway {
	tb.Helper()
	g := &gateway{v: v, setErrs: map[string]transmitter.SetErr{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+pushToken {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		if o := g.accept(r.Context(), raw); o.Code != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"err": string(o.Code), "description": "rejected"})
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	tb.Cleanup(g.srv.Close)
	return g
}

// endpoint is the push endpoint (SETGATE_PUBLIC_URL + /events/acme).
func (g *gateway) endpoint() string { return g.srv.URL + "/events/acme" }

func (g *gateway) observe(m *ssf.Manager) {
	g.mu.Lock()
	g.mgr = m
	g.mu.Unlock()
}

func (g *gateway) accept(ctx context.Context, raw []byte) outcome {
	set, err := g.v.Verify(ctx, raw)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		var ve *verify.Error
		o := outcome{Code: verify.ErrorCode(err)}
		if errors.As(err, &ve) {
			o.JTI = ve.JTI
		}
		g.outcomes = append(g.outcomes, o)
		return o
	}
	o := outcome{JTI: set.JTI, EventType: set.Events[0].Type}
	g.outcomes = append(g.outcomes, o)
	if g.mgr != nil {
		for _, ev := range set.Events {
			g.mgr.Observe(ev.Type, ev.Payload)
		}
	}
	return o
}

func (g *gateway) results() []outcome {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.outcomes)
}

// waitOutcome waits for an outcome about eventType and returns it.
func (g *gateway) waitOutcome(tb testing.TB, match func(outcome) bool) outcome {
	tb.Helper()
	var got outcome
	checkFor(tb, func() error {
		for _, o := range g.results() {
			if match(o) {
				got = o
				return nil
			}
		}
		return fmt.Errorf("no matching outcome yet; have %+v", g.results())
	})
	return got
}

// poll sends one short poll to url carrying the pending acks and setErrs,
// and runs every SET it gets through accept.
func (g *gateway) poll(tb testing.TB, url string) {
	tb.Helper()
	g.mu.Lock()
	body, _ := json.Marshal(map[string]any{"returnImmediately": true, "ack": g.ack, "setErrs": g.setErrs})
	g.ack, g.setErrs = nil, map[string]transmitter.SetErr{}
	g.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pollToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("poll: want 200, got %d", resp.StatusCode)
	}
	var out struct {
		Sets map[string]string `json:"sets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatal(err)
	}
	for jti, tok := range out.Sets {
		o := g.accept(context.Background(), []byte(tok))
		g.mu.Lock()
		if o.Code == "" {
			g.ack = append(g.ack, jti)
		} else {
			g.setErrs[jti] = transmitter.SetErr{Err: string(o.Code), Description: "rejected"}
		}
		g.mu.Unlock()
	}
}

// pollUntil polls url until match holds for an outcome, then once more
// to deliver the acks and setErrs.
func (g *gateway) pollUntil(tb testing.TB, url string, match func(outcome) bool) outcome {
	tb.Helper()
	var got outcome
	checkFor(tb, func() error {
		g.poll(tb, url)
		for _, o := range g.results() {
			if match(o) {
				got = o
				return nil
			}
		}
		return fmt.Errorf("no matching outcome yet; have %+v", g.results())
	})
	g.poll(tb, url)
	return got
}

func isType(t string) func(outcome) bool {
	return func(o outcome) bool { return o.EventType == t }
}

func rejected(o outcome) bool { return o.Code != "" }

// stepClock is a fake clock whose Sleep advances it and then blocks until
// the test lets the loop go on: each wait returns once the loop is asleep
// again, so the test inspects a settled state.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  chan time.Duration
	resume chan struct{}
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), slept: make(chan time.Duration), resume: make(chan struct{})}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case c.slept <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.resume:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	c.now = c.now.Add(max(d, 0))
	c.mu.Unlock()
	return nil
}

// wait returns the duration of the loop's next sleep, once it sleeps.
func (c *stepClock) wait(tb testing.TB) time.Duration {
	tb.Helper()
	select {
	case d := <-c.slept:
		return d
	case <-time.After(waitLong):
		tb.Fatal("the loop did not sleep")
		return 0
	}
}

// next lets the sleeping loop wake (the clock moves by the slept time)
// and returns the duration of its next sleep.
func (c *stepClock) next(tb testing.TB) time.Duration {
	tb.Helper()
	c.resume <- struct{}{}
	return c.wait(tb)
}

// runManager runs m.Run until the test ends.
func runManager(tb testing.TB, m *ssf.Manager) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: want nil, got %v", err)
		}
	})
}

// count returns how many calls equal call.
func count(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func hasPrefixAny(calls []string, prefix string) bool {
	return slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}
