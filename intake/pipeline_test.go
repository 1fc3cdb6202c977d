package intake_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// TestPipelineWalk: one SET walks verify → publish → observers, in that
// order and once each: the pipeline's observers in registration order,
// then the source's own; a second delivery of the same SET is a
// Duplicate; an invalid SET is Rejected, logged once at info, announced
// on setgate.rejected.<issuer> and observed, and nothing is stored.
func TestPipelineWalk(t *testing.T) {
	r := newRig(t)
	rec := &recorder{}
	p := intake.New(intake.Config{
		Publisher: r.br,
		Observers: []intake.Observer{rec.as("first"), rec.as("second")},
		Logger:    r.log,
	})
	r.src.Observer = rec.as("source")
	jti, good := r.set(t)
	tampered := append([]byte(nil), good...)
	i := len(tampered) - 10 // inside the signature, away from its last, partial character
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	} // the signature no longer verifies

	tests := []struct {
		name        string
		raw         []byte
		d           intake.Delivery
		want        intake.Outcome
		wantStored  bool
		wantVerifed bool
	}{
		{"new SET", good, intake.DeliveryPush, intake.Accepted, true, true},
		{"same SET again, by poll", good, intake.DeliveryPoll, intake.Duplicate, true, true},
		{"bad signature", tampered, intake.DeliveryPush, intake.Rejected, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Accept(t.Context(), r.src, tt.raw, tt.d)
			if got := intake.Classify(res, err); got != tt.want {
				t.Fatalf("want outcome %v, got %v (err %v)", tt.want, got, err)
			}
			evs := rec.take()
			if len(evs) != 3 {
				t.Fatalf("want 3 observations (first, second, source), got %d", len(evs))
			}
			for i, by := range []string{"first", "second", "source"} {
				ev := evs[i].ev
				if evs[i].by != by {
					t.Errorf("observation %d: want by %q, got %q", i, by, evs[i].by)
				}
				if ev.Source != r.src || ev.Delivery != tt.d || ev.Outcome != tt.want || !errors.Is(ev.Err, err) {
					t.Errorf("observation %d: want source acme, delivery %s, outcome %v, err %v; got %+v", i, tt.d, tt.want, err, ev)
				}
				if (ev.SET != nil) != tt.wantVerifed {
					t.Errorf("observation %d: want verified SET %v, got %v", i, tt.wantVerifed, ev.SET)
				}
				if tt.wantStored && (ev.Result.SET == nil || ev.Result.SET.JTI != jti || len(ev.Result.Subjects) != 1 || ev.Elapsed <= 0) {
					t.Errorf("observation %d: want the stored result of %s with its duration, got %+v", i, jti, ev)
				}
				if (ev.Rejection != nil) != (tt.want == intake.Rejected) {
					t.Errorf("observation %d: want rejection only when rejected, got %v", i, ev.Rejection)
				}
				if ev.ReceivedAt.IsZero() || ev.ReceivedAt.Location() != time.UTC {
					t.Errorf("observation %d: want a UTC receive time, got %v", i, ev.ReceivedAt)
				}
			}
		})
	}

	// The SET was stored once, under one sequence.
	info, err := r.br.JetStream().Stream(t.Context(), "SECEVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := info.Info(t.Context()); err != nil || st.State.Msgs != 1 {
		t.Fatalf("want 1 message stored, got %v (%v)", st, err)
	}
	// The rejection: logged once at info with its code, never the token;
	// announced once.
	lines := r.logLines(t, "set rejected")
	if len(lines) != 1 || lines[0]["level"] != "INFO" || lines[0]["code"] != string(verify.CodeInvalidKey) || lines[0]["issuer"] != "acme" {
		t.Fatalf("want one info line with code invalid_key, got %v", lines)
	}
	if strings.Contains(fmt.Sprint(lines[0]), string(tampered)) {
		t.Fatal("the rejection log carries the token")
	}
	if rej := r.nextAnnounced(t); rej.Issuer != "acme" || rej.Code != string(verify.CodeInvalidKey) || rej.Delivery != intake.DeliveryPush {
		t.Fatalf("want the rejection announced, got %+v", rej)
	}
	if n := len(r.logLines(t, "set accepted")); n != 2 {
		t.Fatalf("want 2 debug lines for the stored SETs, got %d", n)
	}
}

// TestPipelineReject: a SET a source refused before verification is
// logged, announced and observed exactly like one that failed
// verification, through the same interface as Accept.
func TestPipelineReject(t *testing.T) {
	r := newRig(t)
	rec := &recorder{}
	var in intake.Intake = intake.New(intake.Config{Publisher: r.br, Observers: []intake.Observer{rec.as("metrics")}, Logger: r.log})
	e := &verify.Error{Code: verify.CodeInvalidRequest, Description: "The map key of this SET does not match its jti claim.", JTI: "jti-1"}
	in.Reject(t.Context(), r.src, e, intake.DeliveryPoll)

	evs := rec.take()
	if len(evs) != 1 || evs[0].ev.Outcome != intake.Rejected || evs[0].ev.Rejection != e || evs[0].ev.SET != nil || evs[0].ev.Delivery != intake.DeliveryPoll {
		t.Fatalf("want one rejected observation without a SET, got %+v", evs)
	}
	if lines := r.logLines(t, "set rejected"); len(lines) != 1 || lines[0]["jti"] != "jti-1" || lines[0]["delivery"] != "poll" {
		t.Fatalf("want one rejection line for jti-1 by poll, got %v", lines)
	}
	if rej := r.nextAnnounced(t); rej.JTI != "jti-1" || rej.Code != string(verify.CodeInvalidRequest) || rej.Description != e.Description {
		t.Fatalf("want the rejection announced, got %+v", rej)
	}
}

// TestPipelineUnavailable: a valid SET that cannot be stored (the bridge is
// closed) is Unavailable, observed as such, and neither logged nor
// announced as a rejection.
func TestPipelineUnavailable(t *testing.T) {
	r := newRig(t)
	rec := &recorder{}
	p := intake.New(intake.Config{Publisher: r.br, Observers: []intake.Observer{rec.as("metrics")}, Logger: r.log})
	_, raw := r.set(t)
	if err := r.br.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := p.Accept(t.Context(), r.src, raw, intake.DeliveryPush)
	if got := intake.Classify(res, err); got != intake.Unavailable || !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("want Unavailable wrapping bridge.ErrUnavailable, got %v (%v)", got, err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].ev.Outcome != intake.Unavailable || evs[0].ev.SET == nil || evs[0].ev.Result.SET != nil {
		t.Fatalf("want one unavailable observation of a verified, unstored SET, got %+v", evs)
	}
	if n := len(r.logLines(t, "set rejected")); n != 0 {
		t.Fatalf("want no rejection logged, got %d", n)
	}
}
