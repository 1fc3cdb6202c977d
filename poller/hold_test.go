package poller_test

import (
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
)

// TestRequestTimeout: a poll request is waited for twice the expected
// hold plus the margin.
func TestRequestTimeout(t *testing.T) {
	tests := []struct{ longPoll, margin, want time.Duration }{
		{30 * time.Second, 10 * time.Second, 70 * time.Second},
		{5 * time.Second, 10 * time.Second, 20 * time.Second},
		{time.Second, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := poller.RequestTimeout(tt.longPoll, tt.margin); got != tt.want {
			t.Errorf("RequestTimeout(%v, %v): want %v, got %v", tt.longPoll, tt.margin, tt.want, got)
		}
	}
}

// TestPollHeldLongerThanExpected: a transmitter that holds a poll longer
// than LongPollTimeout + TimeoutMargin (but less than twice the hold plus
// the margin) is answered, not counted as a failure.
func TestPollHeldLongerThanExpected(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	rec := &recorder{}
	cfg := r.config(t)
	cfg.LongPollTimeout, cfg.TimeoutMargin = time.Second, time.Millisecond
	cfg.Sleep = rec.Sleep
	r.ps.Inject(transmitter.Fault{Delay: 1400 * time.Millisecond}) // past 1s + 1ms, well within 2s + 1ms
	sets := r.enqueue(t, 3)
	l, stop := start(t, cfg, r.in)
	allAcked(t, r.ps, sets)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastError != "" || len(rec.all()) != 0 {
		t.Fatalf("a long hold was a failure: last error %q, backoffs %v", st.LastError, rec.all())
	}
	for _, req := range r.ps.Requests() {
		if req.Status == -1 {
			t.Fatal("the client gave up on the held poll")
		}
	}
}
