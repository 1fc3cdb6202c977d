package ssf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// rig is one issuer with SSF: the transmitter, the gateway (verifier
// included) and a manager configured for delivery.
type rig struct {
	sx  *transmitter.SSFTransmitter
	gw  *gateway
	v   *verify.Verifier
	mgr *ssf.Manager
}

// newRig builds a rig; mod adjusts the manager configuration.
func newRig(tb testing.TB, delivery string, mod func(*ssf.ManagerConfig)) *rig {
	tb.Helper()
	r := &rig{sx: newSSF(tb, "")}
	r.v = newVerifier(tb, r.sx)
	r.gw = newGateway(tb, r.v)
	r.mgr = r.manager(tb, delivery, mod)
	r.gw.observe(r.mgr)
	return r
}

// manager builds another manager for the rig's issuer.
func (r *rig) manager(tb testing.TB, delivery string, mod func(*ssf.ManagerConfig)) *ssf.Manager {
	tb.Helper()
	cfg := ssf.ManagerConfig{
		Issuer:               r.sx.Issuer(),
		Delivery:             delivery,
		EventsRequested:      []string{supported1, supported2},
		Description:          "setgate: acme",
		VerificationInterval: time.Hour,
		VerificationTimeout:  time.Minute,
		States:               r.v.States(),
		Client:               newClient(tb, r.sx),
	}
	if delivery == ssf.DeliveryPush {
		cfg.PushEndpoint, cfg.PushAuthorization = r.gw.endpoint(), pushToken
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := ssf.NewManager(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestEnsureCreates(t *testing.T) {
	for _, delivery := range []string{ssf.DeliveryPush, ssf.DeliveryPoll} {
		t.Run(delivery, func(t *testing.T) {
			var seen []ssf.StreamConfig
			r := newRig(t, delivery, func(c *ssf.ManagerConfig) {
				c.EventsRequested = []string{supported1, unknownEvt}
				c.OnStream = func(s ssf.StreamConfig) { seen = append(seen, s) }
			})
			cfg, err := r.mgr.Ensure(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			streams := r.sx.Streams()
			if len(streams) != 1 || streams[0].StreamID != cfg.StreamID {
				t.Fatalf("want one stream %q at the transmitter, got %+v", cfg.StreamID, streams)
			}
			d := streams[0].Delivery
			switch delivery {
			case ssf.DeliveryPush:
				if d.Method != ssf.MethodPush || d.EndpointURL != r.gw.endpoint() || d.AuthorizationHeader != "Bearer "+pushToken {
					t.Fatalf("push delivery: want %s to %s with the bearer, got %+v", ssf.MethodPush, r.gw.endpoint(), d)
				}
			case ssf.DeliveryPoll:
				if d.Method != ssf.MethodPoll || cfg.Delivery.EndpointURL != r.sx.PollServer().URL() {
					t.Fatalf("poll delivery: want %s at %s, got %+v", ssf.MethodPoll, r.sx.PollServer().URL(), cfg.Delivery)
				}
			}
			if !slices.Equal(streams[0].EventsRequested, []string{supported1, unknownEvt}) || streams[0].Description != "setgate: acme" {
				t.Fatalf("receiver fields: got events %v, description %q", streams[0].EventsRequested, streams[0].Description)
			}
			st := r.mgr.Status()
			if st.StreamID != cfg.StreamID || st.Delivery != delivery || st.EndpointURL != cfg.Delivery.EndpointURL {
				t.Fatalf("status: got %+v", st)
			}
			if !slices.Equal(st.EventsMissing, []string{unknownEvt}) || !slices.Equal(st.EventsDelivered, []string{supported1}) {
				t.Fatalf("events: want delivered [%s] and missing [%s], got %v and %v", supported1, unknownEvt, st.EventsDelivered, st.EventsMissing)
			}
			if !st.Healthy {
				t.Fatalf("want healthy, got %q", st.HealthReason)
			}
			if len(seen) != 1 || seen[0].StreamID != cfg.StreamID {
				t.Fatalf("OnStream: want one call with the stream, got %+v", seen)
			}
			if out, _ := json.Marshal(st); strings.Contains(string(out), pushToken) {
				t.Fatalf("the status shows the push credential: %s", out)
			}
		})
	}
}

func TestEnsureReuses(t *testing.T) {
	tests := []struct {
		name     string
		delivery string
		faults   transmitter.SSFFaults
	}{
		{name: "push", delivery: ssf.DeliveryPush},
		{name: "poll", delivery: ssf.DeliveryPoll},
		{name: "poll, list answered as one object", delivery: ssf.DeliveryPoll, faults: transmitter.SSFFaults{ListAsObject: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.delivery, nil)
			first, err := r.mgr.Ensure(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r.sx.SetFaults(tt.faults)
			again, err := r.manager(t, tt.delivery, nil).Ensure(context.Background()) // a restart
			if err != nil {
				t.Fatal(err)
			}
			if again.StreamID != first.StreamID {
				t.Fatalf("want stream %q reused, got %q", first.StreamID, again.StreamID)
			}
			calls := r.sx.Calls()
			if n := count(calls, "POST /ssf/stream"); n != 1 {
				t.Fatalf("want one create, got %d: %v", n, calls)
			}
			if hasPrefixAny(calls, "PATCH") || hasPrefixAny(calls, "DELETE") {
				t.Fatalf("want no update and no delete, got %v", calls)
			}
		})
	}
}

func TestEnsureUpdates(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*ssf.ManagerConfig, *rig)
		check func(transmitter.SSFStream) error
	}{
		{name: "events_requested", mod: func(c *ssf.ManagerConfig, _ *rig) { c.EventsRequested = []string{supported2} },
			check: func(s transmitter.SSFStream) error {
				if !slices.Equal(s.EventsRequested, []string{supported2}) || !slices.Equal(s.EventsDelivered, []string{supported2}) {
					return fmt.Errorf("events requested %v, delivered %v", s.EventsRequested, s.EventsDelivered)
				}
				return nil
			}},
		{name: "description", mod: func(c *ssf.ManagerConfig, _ *rig) { c.Description = "setgate: acme (prod)" },
			check: func(s transmitter.SSFStream) error {
				if s.Description != "setgate: acme (prod)" {
					return fmt.Errorf("description %q", s.Description)
				}
				return nil
			}},
		{name: "push endpoint", mod: func(c *ssf.ManagerConfig, r *rig) { c.PushEndpoint = r.gw.srv.URL + "/events/acme-new" },
			check: func(s transmitter.SSFStream) error {
				if !strings.HasSuffix(s.Delivery.EndpointURL, "/events/acme-new") || s.Delivery.AuthorizationHeader != "Bearer "+pushToken {
					return fmt.Errorf("delivery %+v", s.Delivery)
				}
				return nil
			}},
		{name: "authorization", mod: func(c *ssf.ManagerConfig, _ *rig) { c.PushAuthorization = "rotated-secret" },
			check: func(s transmitter.SSFStream) error {
				if s.Delivery.AuthorizationHeader != "Bearer rotated-secret" {
					return fmt.Errorf("authorization_header not rotated")
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, ssf.DeliveryPush, nil)
			first, err := r.mgr.Ensure(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			changed := r.manager(t, ssf.DeliveryPush, func(c *ssf.ManagerConfig) { tt.mod(c, r) })
			got, err := changed.Ensure(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.StreamID != first.StreamID {
				t.Fatalf("want stream %q updated in place, got %q", first.StreamID, got.StreamID)
			}
			calls := r.sx.Calls()
			if count(calls, "PATCH /ssf/stream") != 1 || count(calls, "POST /ssf/stream") != 1 || hasPrefixAny(calls, "DELETE") {
				t.Fatalf("want one create and one update, no delete; got %v", calls)
			}
			streams := r.sx.Streams()
			if len(streams) != 1 {
				t.Fatalf("want one stream, got %d", len(streams))
			}
			if err := tt.check(streams[0]); err != nil {
				t.Fatalf("transmitter's stream not updated: %v", err)
			}
			if _, err := changed.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(r.sx.Calls(), "PATCH /ssf/stream"); n != 1 {
				t.Fatalf("want no second update once in step, got %d updates", n)
			}
		})
	}
}

// TestEnsureNeverDeletes: streams setgate does not want are left alone.
func TestEnsureNeverDeletes(t *testing.T) {
	r := newRig(t, ssf.DeliveryPush, nil)
	other := r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{supported1})
	cfg, err := r.mgr.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StreamID == other {
		t.Fatal("a poll stream was reused for push")
	}
	// A second push stream to another endpoint appears; setgate keeps its own.
	r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: "https://elsewhere.example/events"}, nil)
	again, err := r.mgr.Ensure(context.Background())
	if err != nil || again.StreamID != cfg.StreamID {
		t.Fatalf("want stream %q kept, got %q, %v", cfg.StreamID, again.StreamID, err)
	}
	if n := len(r.sx.Streams()); n != 3 {
		t.Fatalf("want all 3 streams left in place, got %d", n)
	}
	if calls := r.sx.Calls(); hasPrefixAny(calls, "DELETE") {
		t.Fatalf("want no delete, got %v", calls)
	}
}

// TestEnsureConflict: a transmitter that allows one stream, holding one
// with another delivery, is reported, not resolved by deleting.
func TestEnsureConflict(t *testing.T) {
	r := newRig(t, ssf.DeliveryPush, nil)
	other := r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, nil)
	r.sx.SetFaults(transmitter.SSFFaults{SingleStream: true})
	_, err := r.mgr.Ensure(context.Background())
	if ssf.StatusCode(err) != 409 || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "no second stream") {
		t.Fatalf("want a 409 naming stream %s, got %v", other, err)
	}
	if calls := r.sx.Calls(); hasPrefixAny(calls, "DELETE") || hasPrefixAny(calls, "PATCH") || len(r.sx.Streams()) != 1 {
		t.Fatalf("want the other stream left alone, got %v", calls)
	}
}

func TestEnsureFails(t *testing.T) {
	r := newRig(t, ssf.DeliveryPoll, nil)
	r.sx.SetFaults(transmitter.SSFFaults{ConfigStatus: 500})
	if _, err := r.mgr.Ensure(context.Background()); ssf.StatusCode(err) != 500 {
		t.Fatalf("want a 500 HTTPError, got %v", err)
	}
	st := r.mgr.Status()
	if st.Healthy || !strings.Contains(st.HealthReason, "stream not set up") || !strings.Contains(st.LastError, "500") {
		t.Fatalf("want unhealthy with the error, got %+v", st)
	}
}

// TestVerificationRoundTrip: Run asks for verification; the transmitter
// delivers the event by push or poll; the gateway verifies it with the
// issuer's verifier (which knows the state through the shared States) and
// hands it to Observe; the stream is verified.
func TestVerificationRoundTrip(t *testing.T) {
	for _, delivery := range []string{ssf.DeliveryPush, ssf.DeliveryPoll} {
		t.Run(delivery, func(t *testing.T) {
			r := newRig(t, delivery, nil)
			runManager(t, r.mgr) // real clock: it verifies at once, then sleeps
			var o outcome
			if delivery == ssf.DeliveryPush {
				o = r.gw.waitOutcome(t, isType(verify.EventVerification))
			} else {
				checkFor(t, func() error {
					if r.mgr.Status().Verification != ssf.VerificationPending {
						return fmt.Errorf("verification not requested yet")
					}
					return nil
				})
				o = r.gw.pollUntil(t, r.sx.PollServer().URL(), isType(verify.EventVerification))
				checkFor(t, func() error {
					if r.sx.PollServer().Acked()[o.JTI] == 0 {
						return fmt.Errorf("verification SET %s not acknowledged", o.JTI)
					}
					return nil
				})
			}
			if o.Code != "" {
				t.Fatalf("verification event rejected: %s", o.Code)
			}
			checkFor(t, func() error {
				if st := r.mgr.Status(); st.Verification != ssf.VerificationConfirmed {
					return fmt.Errorf("verification %q", st.Verification)
				}
				return nil
			})
			st := r.mgr.Status()
			if !st.Healthy || st.VerificationConfirmed.IsZero() || st.VerificationConfirmed.Before(st.VerificationRequested) {
				t.Fatalf("want healthy and confirmed after requested, got %+v", st)
			}
			checkFor(t, func() error { // recorded once the push is answered
				if d := r.sx.Delivered(); len(d) == 0 || d[0].EventType != transmitter.Verification || d[0].StreamID != st.StreamID {
					return fmt.Errorf("want the verification delivered on stream %s, got %+v", st.StreamID, d)
				}
				return nil
			})
		})
	}
}

// TestVerificationWrongState: a verification event whose state was never
// requested is invalid_state (400 on push, setErrs on poll) and does not
// verify the stream.
func TestVerificationWrongState(t *testing.T) {
	for _, delivery := range []string{ssf.DeliveryPush, ssf.DeliveryPoll} {
		t.Run(delivery, func(t *testing.T) {
			r := newRig(t, delivery, nil)
			if _, err := r.mgr.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.sx.SetFaults(transmitter.SSFFaults{WrongState: true})
			if _, err := r.mgr.Verify(context.Background()); err != nil {
				t.Fatal(err)
			}
			var o outcome
			if delivery == ssf.DeliveryPush {
				o = r.gw.waitOutcome(t, rejected)
				checkFor(t, func() error {
					d := r.sx.Delivered()
					if len(d) == 0 || d[0].Status == 0 {
						return fmt.Errorf("push not answered yet")
					}
					if d[0].Status != 400 || !strings.Contains(d[0].Body, `"err":"invalid_state"`) {
						return fmt.Errorf("want 400 invalid_state, got %d %s", d[0].Status, d[0].Body)
					}
					return nil
				})
			} else {
				o = r.gw.pollUntil(t, r.sx.PollServer().URL(), rejected)
				checkFor(t, func() error {
					if e := r.sx.PollServer().Errors()[o.JTI]; e.Err != string(verify.CodeInvalidState) {
						return fmt.Errorf("want setErrs invalid_state for %s, got %+v", o.JTI, r.sx.PollServer().Errors())
					}
					return nil
				})
			}
			if o.Code != verify.CodeInvalidState {
				t.Fatalf("want %q, got %q", verify.CodeInvalidState, o.Code)
			}
			if st := r.mgr.Status(); st.Verification != ssf.VerificationPending || !st.VerificationConfirmed.IsZero() {
				t.Fatalf("want the request still pending, got %+v", st)
			}
		})
	}
}

// TestVerificationMissing: no verification event within the timeout
// marks the stream unhealthy until one is confirmed.
func TestVerificationMissing(t *testing.T) {
	clock := newStepClock()
	r := newRig(t, ssf.DeliveryPush, func(c *ssf.ManagerConfig) {
		c.VerificationInterval, c.VerificationTimeout, c.StatusInterval = time.Hour, 2*time.Minute, 24*time.Hour
		c.Now, c.Sleep = clock.Now, clock.Sleep
	})
	r.sx.SetFaults(transmitter.SSFFaults{DropVerification: true})
	runManager(t, r.mgr)

	if d := clock.wait(t); d != 2*time.Minute {
		t.Fatalf("want the loop to sleep until the verification deadline (2m), got %v", d)
	}
	if st := r.mgr.Status(); st.Verification != ssf.VerificationPending || !st.Healthy {
		t.Fatalf("after the request: want pending and healthy, got %+v", st)
	}
	if d := clock.next(t); d != time.Hour-2*time.Minute {
		t.Fatalf("want the loop to sleep until the next verification, got %v", d)
	}
	st := r.mgr.Status()
	if st.Verification != ssf.VerificationTimedOut || st.Healthy || !strings.Contains(st.HealthReason, "no verification event within 2m0s") {
		t.Fatalf("after the timeout: want timed_out and unhealthy, got %+v", st)
	}

	// The next request is pending: still unhealthy until one is confirmed.
	if d := clock.next(t); d != 2*time.Minute {
		t.Fatalf("want the loop to sleep until the second deadline, got %v", d)
	}
	if st := r.mgr.Status(); st.Verification != ssf.VerificationPending || st.Healthy {
		t.Fatalf("second request pending after a timeout: want pending and unhealthy, got %+v", st)
	}
	clock.next(t) // the second one times out too

	r.sx.SetFaults(transmitter.SSFFaults{})
	clock.next(t) // the third request; its event comes by push
	checkFor(t, func() error {
		if st := r.mgr.Status(); !st.Healthy || st.Verification != ssf.VerificationConfirmed {
			return fmt.Errorf("not verified: %s %s", st.Verification, st.HealthReason)
		}
		return nil
	})
	if n := count(r.sx.Calls(), "POST /ssf/verify"); n != 3 {
		t.Fatalf("want 3 verification requests, got %d", n)
	}
}

// TestStreamStatusSurfaced: a paused or disabled stream, read from the
// status endpoint or announced by a stream-updated event, shows in Status.
func TestStreamStatusSurfaced(t *testing.T) {
	tests := []struct {
		name, status, reason string
		event                bool
	}{
		{name: "status endpoint paused", status: ssf.StatusPaused, reason: "maintenance"},
		{name: "status endpoint disabled", status: ssf.StatusDisabled, reason: "receiver unreachable"},
		{name: "stream-updated disabled", status: ssf.StatusDisabled, reason: "verification failed", event: true},
		{name: "stream-updated paused", status: ssf.StatusPaused, event: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newStepClock()
			r := newRig(t, ssf.DeliveryPush, func(c *ssf.ManagerConfig) {
				c.VerificationInterval, c.StatusInterval = 0, time.Minute
				c.Now, c.Sleep = clock.Now, clock.Sleep
			})
			// An existing stream: reused, so not verified on creation.
			r.sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: r.gw.endpoint(), AuthorizationHeader: "Bearer " + pushToken},
				[]string{supported1, supported2})
			runManager(t, r.mgr)
			if d := clock.wait(t); d != time.Minute {
				t.Fatalf("want the loop to sleep until the next status read, got %v", d)
			}
			if st := r.mgr.Status(); st.Status != ssf.StatusEnabled || !st.Healthy {
				t.Fatalf("first read: want enabled and healthy, got %+v", st)
			}

			if tt.event {
				if err := r.sx.SendStreamUpdated(context.Background(), tt.status, tt.reason); err != nil {
					t.Fatal(err)
				}
				if o := r.gw.waitOutcome(t, isType(verify.EventStreamUpdated)); o.Code != "" {
					t.Fatalf("stream-updated rejected: %s", o.Code)
				}
			} else {
				r.sx.SetStatus(tt.status, tt.reason)
				clock.next(t)
			}
			st := r.mgr.Status()
			want := "stream is " + tt.status
			if tt.reason != "" {
				want += ": " + tt.reason
			}
			if st.Status != tt.status || st.Reason != tt.reason || st.Healthy || st.HealthReason != want {
				t.Fatalf("want %s (%q) and unhealthy %q, got %+v", tt.status, tt.reason, want, st)
			}
			if tt.event && st.StreamUpdates != 1 {
				t.Fatalf("want 1 stream update counted, got %d", st.StreamUpdates)
			}

			// Re-enabled: healthy again.
			if tt.event {
				if err := r.sx.SendStreamUpdated(context.Background(), ssf.StatusEnabled, ""); err != nil {
					t.Fatal(err)
				}
			} else {
				r.sx.SetStatus(ssf.StatusEnabled, "")
				clock.next(t)
			}
			checkFor(t, func() error {
				if st := r.mgr.Status(); !st.Healthy || st.Status != ssf.StatusEnabled {
					return fmt.Errorf("want enabled and healthy, got %+v", st)
				}
				return nil
			})
		})
	}
}

// TestRunBacksOff: a transmitter that fails is retried with growing
// delays, and the stream is set up once it answers.
func TestRunBacksOff(t *testing.T) {
	clock := newStepClock()
	r := newRig(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) {
		c.VerificationInterval, c.StatusInterval = 0, time.Hour
		c.MinBackoff, c.MaxBackoff = time.Second, 3*time.Second
		c.Rand = func(n int64) int64 { return n - 1 } // the longest delay
		c.Now, c.Sleep = clock.Now, clock.Sleep
	})
	r.sx.SetFaults(transmitter.SSFFaults{ConfigStatus: 503})
	runManager(t, r.mgr)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		var d time.Duration
		if i == 0 {
			d = clock.wait(t)
		} else {
			d = clock.next(t)
		}
		if d != want {
			t.Fatalf("retry %d: want %v, got %v", i+1, want, d)
		}
	}
	if st := r.mgr.Status(); st.Healthy || !strings.Contains(st.LastError, "503") {
		t.Fatalf("want unhealthy with the 503, got %+v", st)
	}
	r.sx.SetFaults(transmitter.SSFFaults{})
	clock.next(t)
	st := r.mgr.Status()
	if !st.Healthy || st.StreamID == "" || st.LastError != "" {
		t.Fatalf("want the stream set up and healthy, got %+v", st)
	}
	// Created by Run, so verified once although the interval is 0.
	if n := count(r.sx.Calls(), "POST /ssf/verify"); n != 1 {
		t.Fatalf("want one verification of the new stream, got %d", n)
	}
}

// TestRunRecreatesVanishedStream: a stream deleted at the transmitter (by
// an operator) is set up again.
func TestRunRecreatesVanishedStream(t *testing.T) {
	clock := newStepClock()
	r := newRig(t, ssf.DeliveryPoll, func(c *ssf.ManagerConfig) {
		c.VerificationInterval, c.StatusInterval = 0, time.Minute
		c.Now, c.Sleep = clock.Now, clock.Sleep
	})
	runManager(t, r.mgr)
	clock.wait(t)
	first := r.mgr.Status().StreamID
	if err := newClient(t, r.sx).DeleteStream(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	clock.next(t)
	st := r.mgr.Status()
	if st.StreamID == "" || st.StreamID == first || len(r.sx.Streams()) != 1 {
		t.Fatalf("want a new stream, got %q (was %q), %d streams", st.StreamID, first, len(r.sx.Streams()))
	}
}

func TestObserve(t *testing.T) {
	meta := &ssf.Metadata{Issuer: "https://tr.example.com/", ConfigurationEndpoint: "https://tr.example.com/stream"}
	m, err := ssf.NewManager(ssf.ManagerConfig{
		Issuer: meta.Issuer, Delivery: ssf.DeliveryPoll, States: verify.NewStates(nil), Client: ssf.New(meta, nil, nil, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(verify.EventVerification, json.RawMessage(`{}`))
	m.Observe(verify.EventVerification, json.RawMessage(`{"state":"never-requested"}`))
	m.Observe(verify.EventStreamUpdated, json.RawMessage(`{"status":"paused","reason":"r"}`))
	m.Observe(transmitter.SessionRevoked, json.RawMessage(`{}`))
	m.Observe(verify.EventStreamUpdated, json.RawMessage(`not json`))
	st := m.Status()
	if st.UnsolicitedVerifications != 1 || st.Verification != "" || st.StreamUpdates != 1 || st.Status != ssf.StatusPaused {
		t.Fatalf("want 1 unsolicited, no verification, 1 update, paused; got %+v", st)
	}
}

func TestNewManagerRejects(t *testing.T) {
	sx := newSSF(t, "")
	meta := discover(t, sx)
	c := ssf.New(meta, poller.BearerToken(mgmtToken), nil, nil)
	states := verify.NewStates(nil)
	noVerify := *meta
	noVerify.VerificationEndpoint = ""
	pushOnly := *meta
	pushOnly.DeliveryMethodsSupported = []string{ssf.MethodPush}
	tests := []struct {
		name string
		cfg  ssf.ManagerConfig
		want string
	}{
		{name: "no client", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "poll", States: states}, want: "client is required"},
		{name: "issuer differs", cfg: ssf.ManagerConfig{Issuer: "https://other.example/", Delivery: "poll", States: states, Client: c}, want: "issuer mismatch"},
		{name: "no states", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "poll", Client: c}, want: "States is required"},
		{name: "bad delivery", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "carrier-pigeon", States: states, Client: c}, want: "not push or poll"},
		{name: "push without endpoint", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "push", States: states, Client: c}, want: "push endpoint"},
		{name: "push to plain http", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "push", PushEndpoint: "http://setgate.example/events/a", States: states, Client: c}, want: "https"},
		{name: "poll not offered", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "poll", States: states, Client: ssf.New(&pushOnly, nil, nil, nil)}, want: "not offered"},
		{name: "verification not offered", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "poll", VerificationInterval: time.Hour, States: states, Client: ssf.New(&noVerify, nil, nil, nil)}, want: "verification_endpoint"},
		{name: "negative", cfg: ssf.ManagerConfig{Issuer: meta.Issuer, Delivery: "poll", StatusInterval: -1, States: states, Client: c}, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ssf.NewManager(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
