package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for lease expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLease returns a lease on b driven by clock.
func newLease(tb testing.TB, b *Bridge, name, holder string, ttl time.Duration, clock *fakeClock) *Lease {
	tb.Helper()
	l, err := b.Lease(context.Background(), name, holder, ttl)
	if err != nil {
		tb.Fatalf("Lease: %v", err)
	}
	l.now = clock.Now
	return l
}

func tryAcquire(tb testing.TB, l *Lease) bool {
	tb.Helper()
	ok, err := l.TryAcquire(context.Background())
	if err != nil {
		tb.Fatalf("%s: TryAcquire: %v", l.Holder(), err)
	}
	return ok
}

// leaseBridges opens two bridges (two connections) to one server.
func leaseBridges(tb testing.TB) (*Bridge, *Bridge) {
	srv := runServer(tb, -1, tb.TempDir())
	return openBridge(tb, testConfig(srv.ClientURL())), openBridge(tb, testConfig(srv.ClientURL()))
}

func TestLeaseTakeoverAfterTTL(t *testing.T) {
	t.Parallel()
	b1, b2 := leaseBridges(t)
	clock := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	const ttl = 10 * time.Second
	a := newLease(t, b1, "poll.acme", "a", ttl, clock)
	b := newLease(t, b2, "poll.acme", "b", ttl, clock)

	if !tryAcquire(t, a) {
		t.Fatal("a: want the free lease")
	}
	if !a.Held() {
		t.Error("a: want Held")
	}
	if tryAcquire(t, b) {
		t.Fatal("b: want the lease refused while a holds it")
	}
	// a renews within its TTL: b, watching, never takes over.
	for range 5 {
		clock.Advance(ttl / 2)
		if !tryAcquire(t, a) {
			t.Fatal("a: want the renewal")
		}
		if tryAcquire(t, b) {
			t.Fatal("b: want the lease refused while a renews it")
		}
	}
	// a stops renewing: one TTL after b first saw its last revision, b
	// takes over, and a's term has ended.
	clock.Advance(ttl - time.Nanosecond)
	if !a.Held() {
		t.Error("a: want Held until a full TTL after its last renewal")
	}
	if tryAcquire(t, b) {
		t.Fatal("b: want the lease refused before a full TTL")
	}
	clock.Advance(time.Nanosecond)
	if a.Held() {
		t.Error("a: want the term over one TTL after its last renewal")
	}
	if !tryAcquire(t, b) {
		t.Fatal("b: want the takeover after a TTL without renewal")
	}
	// a comes back: its renewal fails on the revision, without error.
	if tryAcquire(t, a) {
		t.Fatal("a: want the renewal refused after b's takeover")
	}
	if a.Held() {
		t.Error("a: want not Held after losing the lease")
	}
	// a's release must not delete b's lease.
	if err := a.Release(context.Background()); err != nil {
		t.Fatalf("a: Release: %v", err)
	}
	if !tryAcquire(t, b) {
		t.Fatal("b: want its lease intact after a's release")
	}
}

func TestLeaseRelease(t *testing.T) {
	t.Parallel()
	b1, b2 := leaseBridges(t)
	clock := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	a := newLease(t, b1, "poll.acme", "a", time.Minute, clock)
	b := newLease(t, b2, "poll.acme", "b", time.Minute, clock)
	if !tryAcquire(t, a) {
		t.Fatal("a: want the free lease")
	}
	if err := b.Release(context.Background()); err != nil {
		t.Fatalf("b: Release of a lease it does not hold: %v", err)
	}
	if tryAcquire(t, b) {
		t.Fatal("b: want the lease still a's")
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatalf("a: Release: %v", err)
	}
	if a.Held() {
		t.Error("a: want not Held after Release")
	}
	// No TTL to wait: the key is gone.
	if !tryAcquire(t, b) {
		t.Fatal("b: want the released lease at once")
	}
	// Another lease name is independent.
	c := newLease(t, b1, "poll.globex", "a", time.Minute, clock)
	if !tryAcquire(t, c) {
		t.Fatal("want a lease of another name free")
	}
}

func TestLeaseOneWinner(t *testing.T) {
	t.Parallel()
	srv := runServer(t, -1, t.TempDir())
	clock := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	const n = 6
	leases := make([]*Lease, n)
	for i := range leases {
		b := openBridge(t, testConfig(srv.ClientURL()))
		leases[i] = newLease(t, b, "poll.acme", NewHolderID(), time.Minute, clock)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		won := make([]bool, n)
		for i, l := range leases {
			wg.Go(func() { won[i] = tryAcquire(t, l) })
		}
		wg.Wait()
		winners := 0
		for _, w := range won {
			if w {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: want exactly one holder, got %d", round, winners)
		}
		// Nobody renews for a TTL: everyone races for the takeover.
		clock.Advance(2 * time.Minute)
		for _, l := range leases {
			if l.Held() {
				t.Fatalf("round %d: want every term over", round)
			}
		}
	}
}

// A write whose answer was lost is recognised as ours on the next call.
func TestLeaseOwnRevision(t *testing.T) {
	t.Parallel()
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	clock := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	l := newLease(t, b, "poll.acme", "a", time.Minute, clock)
	if !tryAcquire(t, l) {
		t.Fatal("want the free lease")
	}
	l.mu.Lock()
	l.rev = 0 // as if the renewal's answer never came
	l.mu.Unlock()
	if !tryAcquire(t, l) {
		t.Fatal("want the lease recognised as ours")
	}
}

func TestLeaseArguments(t *testing.T) {
	t.Parallel()
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	ctx := context.Background()
	for _, tt := range []struct {
		name, lease, holder string
		ttl                 time.Duration
	}{
		{"zero ttl", "x", "h", 0},
		{"no holder", "x", "", time.Second},
		{"bad name", "a b", "h", time.Second},
		{"empty token", "a..b", "h", time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Lease(ctx, tt.lease, tt.holder, tt.ttl); err == nil {
				t.Error("want an error")
			}
		})
	}
	l, err := b.Lease(ctx, "poll.acme", "h", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL() != time.Second || l.Holder() != "h" || l.Held() {
		t.Errorf("want ttl 1s, holder h, not held; got %v %q %v", l.TTL(), l.Holder(), l.Held())
	}
	if id := NewHolderID(); strings.Count(id, "-") < 2 || id == NewHolderID() {
		t.Errorf("want host-pid-random holder ids, unique, got %q", id)
	}
}
