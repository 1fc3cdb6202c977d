package poller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/poller"
)

// overlap watches the poll requests (maxEvents > 0) of several replicas
// and records any that starts while another replica's is in flight.
type overlap struct {
	mu         sync.Mutex
	inFlight   map[string]int
	violations []string
	polls      map[string]int
}

func (o *overlap) client(replica string) *http.Client {
	return &http.Client{Transport: overlapTransport{o: o, replica: replica, base: http.DefaultTransport.(*http.Transport).Clone()}}
}

type overlapTransport struct {
	o       *overlap
	replica string
	base    http.RoundTripper
}

func (t overlapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := req.GetBody()
	data, _ := io.ReadAll(body)
	var b struct {
		MaxEvents int `json:"maxEvents"`
	}
	_ = json.Unmarshal(data, &b)
	if b.MaxEvents == 0 { // acknowledge-only: allowed from a replica that just lost its lease
		return t.base.RoundTrip(req)
	}
	o := t.o
	o.mu.Lock()
	for r, n := range o.inFlight {
		if r != t.replica && n > 0 {
			o.violations = append(o.violations, fmt.Sprintf("%s polled while %s was polling", t.replica, r))
		}
	}
	o.inFlight[t.replica]++
	o.polls[t.replica]++
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.inFlight[t.replica]--
		o.mu.Unlock()
	}()
	req.Body = io.NopCloser(bytes.NewReader(data))
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		// Read the body inside the in-flight window.
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		err = rerr
	}
	return resp, err
}

func (o *overlap) pollsBy(replica string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.polls[replica]
}

// TestLeaseOneReplicaPolls runs three replicas (three NATS connections)
// for one issuer: only the lease holder polls; when it stops, another
// takes over at once (the lease is released); when it loses NATS without
// releasing, another takes over once its lease expires; every SET is
// stored once and acknowledged.
func TestLeaseOneReplicaPolls(t *testing.T) {
	t.Parallel()
	srv := runServer(t, -1, t.TempDir())
	r := newRig(t, rigOptions{NATSURL: srv.ClientURL()})
	const ttl = 900 * time.Millisecond
	ov := &overlap{inFlight: map[string]int{}, polls: map[string]int{}}

	type replica struct {
		br     *bridge.Bridge
		loop   *poller.Loop
		stop   func() error
		polled int
	}
	replicas := map[string]*replica{}
	startReplica := func(name string, br *bridge.Bridge) {
		lease, err := br.Lease(context.Background(), "poll."+issuerName, name+"-"+bridge.NewHolderID(), ttl)
		if err != nil {
			t.Fatal(err)
		}
		cfg := r.config(t)
		cfg.Lease = lease
		cfg.Auth = bearerWith{replica: name}
		cfg.HTTPClient = ov.client(name)
		l, stop := start(t, cfg, newPipeline(t, br))
		replicas[name] = &replica{br: br, loop: l, stop: stop}
	}
	holder := func() string {
		var held []string
		for name, rp := range replicas {
			if rp.loop.Status().LeaseHeld {
				held = append(held, name)
			}
		}
		if len(held) != 1 {
			return ""
		}
		return held[0]
	}
	waitHolder := func(not ...string) string {
		var h string
		checkFor(t, func() error {
			if h = holder(); h == "" || slices.Contains(not, h) {
				return fmt.Errorf("want one holder other than %q, got %q", not, h)
			}
			return nil
		})
		return h
	}

	startReplica("a", r.br)
	startReplica("b", openBridge(t, srv.ClientURL()))
	first := waitHolder()
	sets := r.enqueue(t, 10)
	allAcked(t, r.ps, sets)
	for name := range replicas {
		if n := ov.pollsBy(name); name != first && n != 0 {
			t.Errorf("replica %s does not hold the lease but polled %d times", name, n)
		}
	}

	// The holder stops cleanly: it releases, the other takes over.
	if err := replicas[first].stop(); err != nil {
		t.Errorf("Run of %s: %v", first, err)
	}
	delete(replicas, first)
	second := waitHolder(first)
	more := r.enqueue(t, 10)
	allAcked(t, r.ps, more)

	// A third replica waits; the holder loses NATS and cannot renew: the
	// third takes over once the lease expires.
	startReplica("c", openBridge(t, srv.ClientURL()))
	if h := holder(); h != second {
		t.Fatalf("want %s still holding, got %q", second, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := replicas[second].br.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkFor(t, func() error {
		if !replicas["c"].loop.Status().LeaseHeld {
			return fmt.Errorf("want c holding the lease, got %+v", replicas["c"].loop.Status())
		}
		return nil
	})
	last := r.enqueue(t, 10)
	allAcked(t, r.ps, last)
	for _, rp := range replicas {
		_ = rp.stop()
	}

	all := slices.Concat(sets, more, last)
	// Read through a bridge of its own: r.br is replica a's, closed above
	// when a was the holder that lost NATS.
	got := stored(t, openBridge(t, srv.ClientURL()).JetStream())
	checkStoredOnce(t, got, all)
	if len(got) != len(all) {
		t.Errorf("want %d SETs stored, got %d", len(all), len(got))
	}
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if len(ov.violations) > 0 {
		t.Errorf("want one replica polling at a time, got %q", ov.violations)
	}
	if ov.polls["c"] == 0 || ov.polls[second] == 0 || ov.polls[first] == 0 {
		t.Errorf("want each holder in turn to have polled, got %v", ov.polls)
	}
}
