package transmitter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"
)

type pollAnswer struct {
	Status int
	Sets   map[string]string
	More   bool
	Raw    []byte
}

// post sends one poll request with body (marshalled) and the bearer.
func post(tb testing.TB, ctx context.Context, p *PollServer, bearer string, body any) (pollAnswer, error) {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL(), bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pollAnswer{}, err
	}
	defer resp.Body.Close()
	a := pollAnswer{Status: resp.StatusCode}
	a.Raw, _ = io.ReadAll(resp.Body)
	var out struct {
		Sets map[string]string `json:"sets"`
		More bool              `json:"moreAvailable"`
	}
	if json.Unmarshal(a.Raw, &out) == nil {
		a.Sets, a.More = out.Sets, out.More
	}
	return a, nil
}

func mustPost(tb testing.TB, p *PollServer, body any) pollAnswer {
	tb.Helper()
	a, err := post(tb, context.Background(), p, "tok", body)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func newPollServer(tb testing.TB, hold time.Duration) *PollServer {
	tb.Helper()
	p, err := NewPollServer(PollOptions{Bearer: "tok", Hold: hold})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestPollServerQueue(t *testing.T) {
	p := newPollServer(t, time.Hour)
	for _, k := range []string{"a", "b", "c"} {
		p.Enqueue(k, "set-"+k)
	}
	if a, _ := post(t, context.Background(), p, "", map[string]any{}); a.Status != http.StatusUnauthorized {
		t.Fatalf("no bearer: want 401, got %d", a.Status)
	}
	if a, _ := post(t, context.Background(), p, "wrong", map[string]any{}); a.Status != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: want 401, got %d", a.Status)
	}

	a := mustPost(t, p, map[string]any{"maxEvents": 2})
	if a.Status != http.StatusOK || !slices.Equal(keys(a.Sets), []string{"a", "b"}) || !a.More || a.Sets["a"] != "set-a" {
		t.Fatalf("want a and b with more available, got %d %v %v", a.Status, a.Sets, a.More)
	}
	// Unacknowledged SETs come again.
	a = mustPost(t, p, map[string]any{"maxEvents": 2, "ack": []string{"a"}, "setErrs": map[string]SetErr{"b": {"invalid_key", "bad"}}})
	if !slices.Equal(keys(a.Sets), []string{"c"}) || a.More {
		t.Fatalf("want only c, nothing more, got %v %v", a.Sets, a.More)
	}
	a = mustPost(t, p, map[string]any{"ack": []string{"c", "a"}, "returnImmediately": true})
	if len(a.Sets) != 0 || a.More {
		t.Fatalf("want nothing left, got %v", a.Sets)
	}
	if got := p.Acked(); !maps.Equal(got, map[string]int{"a": 2, "c": 1}) || p.AckedCount() != 2 {
		t.Errorf("want acks a twice and c once, got %v (%d keys)", got, p.AckedCount())
	}
	if got := p.Errors(); !maps.Equal(got, map[string]SetErr{"b": {"invalid_key", "bad"}}) {
		t.Errorf("want b's setErr, got %v", got)
	}
	if p.Pending() != 0 {
		t.Errorf("want nothing pending, got %d", p.Pending())
	}
	reqs := p.Requests()
	if len(reqs) != 5 || reqs[0].Status != 401 || *reqs[2].MaxEvents != 2 || reqs[4].MaxEvents != nil || !reqs[4].ReturnImmediately {
		t.Errorf("want 5 requests recorded as sent, got %+v", reqs)
	}

	// Acknowledge-only: maxEvents 0 returns nothing even when SETs wait.
	p.Enqueue("d", "set-d")
	if a := mustPost(t, p, map[string]any{"maxEvents": 0, "returnImmediately": true}); len(a.Sets) != 0 || !a.More {
		t.Errorf("maxEvents 0: want no SETs and more available, got %v %v", a.Sets, a.More)
	}
}

func TestPollServerLongPoll(t *testing.T) {
	p := newPollServer(t, time.Hour)
	got := make(chan pollAnswer, 1)
	go func() {
		a, err := post(t, context.Background(), p, "tok", map[string]any{"maxEvents": 5})
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	// The long poll is held (the hold is an hour) until a SET arrives.
	time.Sleep(20 * time.Millisecond)
	for _, req := range p.Requests() {
		if req.Status != 0 {
			t.Fatalf("want the request held, got it answered %d", req.Status)
		}
	}
	p.Enqueue("x", "set-x")
	if a := <-got; !slices.Equal(keys(a.Sets), []string{"x"}) {
		t.Fatalf("want x, got %v", a.Sets)
	}

	// An empty long poll ends after the hold.
	q := newPollServer(t, 20*time.Millisecond)
	if a := mustPost(t, q, map[string]any{}); a.Status != http.StatusOK || len(a.Sets) != 0 {
		t.Fatalf("want an empty answer after the hold, got %d %v", a.Status, a.Sets)
	}
}

func TestPollServerFaults(t *testing.T) {
	p := newPollServer(t, time.Hour)
	p.Enqueue("a", "set-a")
	p.EnqueueAs("wrong", "b", "set-b")
	p.Inject(Fault{Status: 500}, Fault{BadJSON: true}, Fault{Pad: 1000}, Fault{Delay: time.Hour})

	if a := mustPost(t, p, map[string]any{"ack": []string{"a"}}); a.Status != 500 {
		t.Fatalf("want 500, got %d", a.Status)
	}
	if p.Acked()["a"] != 0 {
		t.Fatal("want the ack of a refused request ignored")
	}
	if a := mustPost(t, p, map[string]any{}); a.Status != 200 || json.Valid(a.Raw) {
		t.Fatalf("want 200 with bad JSON, got %d %q", a.Status, a.Raw)
	}
	a := mustPost(t, p, map[string]any{})
	if len(a.Raw) < 1000 || !slices.Equal(keys(a.Sets), []string{"a", "wrong"}) || a.Sets["wrong"] != "set-b" {
		t.Fatalf("want a padded answer with a and the wrong key, got %d bytes %v", len(a.Raw), a.Sets)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := post(t, ctx, p, "tok", map[string]any{"ack": []string{"a"}}); err == nil {
		t.Fatal("want the delayed request to time out")
	}
	for p.Requests()[len(p.Requests())-1].Status != -1 {
		time.Sleep(time.Millisecond) // the handler notices the client left
	}
	if p.Acked()["a"] != 0 {
		t.Fatal("want the ack of an abandoned request ignored")
	}

	// Acknowledged SETs come again with Duplicate.
	mustPost(t, p, map[string]any{"ack": []string{"a"}, "setErrs": map[string]SetErr{"wrong": {"invalid_request", "key"}}, "returnImmediately": true})
	p.Inject(Fault{Duplicate: true})
	if a := mustPost(t, p, map[string]any{"returnImmediately": true}); !slices.Equal(keys(a.Sets), []string{"a"}) {
		t.Fatalf("want a delivered again, got %v", a.Sets)
	}
	if a := mustPost(t, p, map[string]any{"returnImmediately": true}); len(a.Sets) != 0 {
		t.Fatalf("want nothing after the duplicate, got %v", a.Sets)
	}
}
