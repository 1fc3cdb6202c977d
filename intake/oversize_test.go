package intake_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// TestPipelineTooLarge: a verified SET whose message exceeds the NATS
// server's max_payload is refused by the publisher and takes the
// rejection path like a SET that failed verification: Rejected with
// invalid_request, logged once at info, announced on
// setgate.rejected.<issuer>, observed as Rejected (with the verified
// SET); nothing is stored, and the next SET is.
func TestPipelineTooLarge(t *testing.T) {
	const maxPayload = 8 << 10
	r := newRigMaxPayload(t, maxPayload)
	rec := &recorder{}
	p := intake.New(intake.Config{Publisher: r.br, Observers: []intake.Observer{rec.as("metrics")}, Logger: r.log})
	jti, tok, err := r.tx.SET("urn:example:event:big", map[string]any{"blob": strings.Repeat("b", maxPayload)}, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}

	res, err := p.Accept(t.Context(), r.src, []byte(tok), intake.DeliveryPoll)
	if got := intake.Classify(res, err); got != intake.Rejected || !errors.Is(err, intake.ErrTooLarge) {
		t.Fatalf("want Rejected wrapping ErrTooLarge, got %v (%v)", got, err)
	}
	ve := intake.AsRejection(err)
	if ve.Code != verify.CodeInvalidRequest || ve.JTI != jti || !strings.Contains(ve.Description, "the NATS server takes at most 8192") {
		t.Fatalf("want invalid_request for %s naming the max payload, got %+v", jti, ve)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].ev.Outcome != intake.Rejected || evs[0].ev.Rejection != ve || evs[0].ev.SET == nil || evs[0].ev.Result.SET != nil {
		t.Fatalf("want one rejected observation of the verified, unstored SET, got %+v", evs)
	}
	lines := r.logLines(t, "set rejected")
	if len(lines) != 1 || lines[0]["level"] != "INFO" || lines[0]["code"] != string(verify.CodeInvalidRequest) || lines[0]["jti"] != jti || lines[0]["delivery"] != "poll" {
		t.Fatalf("want one info line for %s with invalid_request, got %v", jti, lines)
	}
	if rej := r.nextAnnounced(t); rej.JTI != jti || rej.Code != string(verify.CodeInvalidRequest) || rej.Description != ve.Description || rej.Delivery != intake.DeliveryPoll {
		t.Fatalf("want the rejection announced, got %+v", rej)
	}
	st, err := r.br.JetStream().Stream(t.Context(), "SECEVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != 0 {
		t.Fatalf("want nothing stored, got %v (%v)", info, err)
	}

	_, small := r.set(t)
	if res, err := p.Accept(t.Context(), r.src, small, intake.DeliveryPoll); intake.Classify(res, err) != intake.Accepted {
		t.Fatalf("the next SET: want Accepted, got %v (%v)", intake.Classify(res, err), err)
	}
}
