package intake_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// TestClassify: the one place that sorts Accept's answer. The bridge's
// errors are the intake's: a NATS outage and a full stream are
// Unavailable, whatever wraps them.
func TestClassify(t *testing.T) {
	ve := &verify.Error{Code: verify.CodeInvalidKey, Description: "Bad key."}
	tests := []struct {
		name      string
		res       intake.Result
		err       error
		want      intake.Outcome
		wantStore bool
	}{
		{"stored", intake.Result{}, nil, intake.Accepted, true},
		{"duplicate", intake.Result{Duplicate: true}, nil, intake.Duplicate, true},
		{"verify error", intake.Result{}, ve, intake.Rejected, false},
		{"wrapped verify error", intake.Result{}, fmt.Errorf("x: %w", ve), intake.Rejected, false},
		{"intake unavailable", intake.Result{}, fmt.Errorf("%w: issuer acme: no metadata yet", intake.ErrUnavailable), intake.Unavailable, false},
		{"nats unavailable", intake.Result{}, fmt.Errorf("%w: publish: timeout", bridge.ErrUnavailable), intake.Unavailable, false},
		{"stream full", intake.Result{}, fmt.Errorf("%w: %w: publish", bridge.ErrUnavailable, bridge.ErrStreamFull), intake.Unavailable, false},
		{"other", intake.Result{}, errors.New("boom"), intake.Failed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := intake.Classify(tt.res, tt.err)
			if got != tt.want {
				t.Fatalf("want %v, got %v", tt.want, got)
			}
			if got.Stored() != tt.wantStore {
				t.Fatalf("want Stored %v, got %v", tt.wantStore, got.Stored())
			}
			if (intake.AsRejection(tt.err) != nil) != (tt.want == intake.Rejected) {
				t.Fatalf("want AsRejection only for a rejection, got %v", intake.AsRejection(tt.err))
			}
		})
	}
	if !errors.Is(bridge.ErrStreamFull, intake.ErrStreamFull) || !errors.Is(bridge.ErrUnavailable, intake.ErrUnavailable) {
		t.Fatal("the bridge's sentinels must match the intake's")
	}
	if bridge.ErrUnavailable.Error() != "bridge: NATS unavailable" || bridge.ErrStreamFull.Error() != "bridge: stream full" {
		t.Fatal("the bridge's error texts (seen in logs) changed")
	}
}
