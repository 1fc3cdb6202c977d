package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the JetStream key-value bucket that holds leases. It is
// created (History 1, file storage, the stream's replica count) when missing.
const LeaseBucket = "setgate_leases"

// Lease is one named lease in [LeaseBucket], held by at most one holder at a
// time: with several replicas, each issuer's poll loop runs where its lease
// is held. Its key is "<stream>.<name>", so deployments that share a stream
// share leases and deployments with different streams do not.
//
// # Expiry
//
// Expiry is judged by observation, not by timestamps. The holder renews by
// rewriting the key with a revision check every few seconds; each write
// makes a new revision. A contender that reads the key remembers the
// revision and when (on its own monotonic clock) it first saw it, and takes
// the lease over, again with a revision check, only once that same revision
// has stood unchanged for a whole TTL. The holder, for its part, counts its
// TTL from the moment it sent its last successful write, which is before
// the contender can have seen that revision; so the holder's term ends
// before any contender's takeover begins.
//
// The only clock assumption is that the replicas' clocks run at about the
// same rate: wall clocks need not agree, and no server-side TTL feature is
// needed (any JetStream server works). The price is that a contender
// always waits a full TTL after it first looks, even for a lease whose
// holder died long ago; a holder that stops cleanly calls [Lease.Release],
// which deletes the key so another replica takes over at once.
//
// Revision checks (create-if-absent, update-if-revision) mean two
// contenders can never both win the same takeover. Correctness of delivery
// does not rest on the lease anyway: two replicas polling at once only
// cause duplicates, which JetStream de-duplicates.
//
// A Lease is safe for concurrent use.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	rev     uint64    // revision of our last write; 0 when we do not hold it
	until   time.Time // end of our term
	seenRev uint64    // another holder's revision we are watching
	seenAt  time.Time // when we first saw seenRev
}

// leaseValue is the JSON value of a lease key.
type leaseValue struct {
	Holder string `json:"holder"`
	TTLMs  int64  `json:"ttl_ms"`
	// At is the holder's wall-clock time of the write; informational only.
	At time.Time `json:"at"`
}

// Lease returns the lease called name (a KV key token: letters, digits,
// '-', '_', '=', '/' and '.'), to be held by holder for ttl at a time,
// creating [LeaseBucket] if it does not exist. It does not acquire it.
func (b *Bridge) Lease(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("bridge: lease %q: ttl %v must be positive", name, ttl)
	}
	if holder == "" {
		return nil, fmt.Errorf("bridge: lease %q: holder must not be empty", name)
	}
	key := b.cfg.Stream + "." + name
	if !validLeaseKey(key) {
		return nil, fmt.Errorf("bridge: lease name %q is not a valid key", name)
	}
	kv, err := b.leaseKV(ctx)
	if err != nil {
		return nil, err
	}
	return &Lease{kv: kv, key: key, holder: holder, ttl: ttl, now: time.Now}, nil
}

// validLeaseKey applies the KV key rules.
func validLeaseKey(key string) bool {
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		return false
	}
	for _, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-/_=.", r)
		if !ok {
			return false
		}
	}
	return true
}

// NewHolderID returns a holder id unique to this process: host name,
// process id and random bits.
func NewHolderID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Holder is this lease's holder id.
func (l *Lease) Holder() string { return l.holder }

// TTL is the lease's term.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Held reports whether we hold the lease now: the last acquisition or
// renewal succeeded less than a TTL ago and we have not seen it lost.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldLocked(l.now())
}

func (l *Lease) heldLocked(now time.Time) bool {
	return l.rev != 0 && now.Before(l.until)
}

func (l *Lease) value() []byte {
	v, _ := json.Marshal(leaseValue{Holder: l.holder, TTLMs: l.ttl.Milliseconds(), At: time.Now().UTC()})
	return v
}

// TryAcquire acquires the lease, or renews it when we hold it, and reports
// whether we hold it for a TTL from the start of the call. It creates the
// key when absent, renews our own revision, and takes over another
// holder's revision once it has stood unchanged for a TTL (see [Lease]).
//
// A false result with a nil error means another holder has it. An error
// (NATS down, timeout) always comes with false: nothing new is known;
// [Lease.Held] says whether an earlier term is still running, and the next
// call renews it if nobody took it over meanwhile.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.now()
	if l.rev != 0 {
		rev, err := l.kv.Update(ctx, l.key, l.value(), l.rev)
		if err == nil {
			l.won(rev, start)
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// Unknown outcome: keep our revision to renew with next time;
			// Held says whether the current term is still running.
			return false, fmt.Errorf("bridge: renew lease %q: %w", l.key, err)
		}
		// Someone else wrote the key, or it was deleted; or our last write
		// was applied though its answer was lost. Read it to find out.
		l.rev = 0
	}

	entry, err := l.kv.Get(ctx, l.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		rev, err := l.kv.Create(ctx, l.key, l.value())
		switch {
		case err == nil:
			l.won(rev, start)
			return true, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			return false, nil // another contender created it first
		default:
			return false, fmt.Errorf("bridge: acquire lease %q: %w", l.key, err)
		}
	}
	if err != nil {
		return false, fmt.Errorf("bridge: read lease %q: %w", l.key, err)
	}

	var cur leaseValue
	_ = json.Unmarshal(entry.Value(), &cur) // an unreadable value is simply another holder's
	takeOver := cur.Holder == l.holder      // ours: a write whose answer was lost
	if !takeOver {
		if entry.Revision() != l.seenRev {
			l.seenRev, l.seenAt = entry.Revision(), start
			return false, nil
		}
		ttl := max(l.ttl, time.Duration(cur.TTLMs)*time.Millisecond)
		takeOver = start.Sub(l.seenAt) >= ttl
	}
	if !takeOver {
		return false, nil
	}
	rev, err := l.kv.Update(ctx, l.key, l.value(), entry.Revision())
	switch {
	case err == nil:
		l.won(rev, start)
		return true, nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil // renewed or taken over meanwhile
	default:
		return false, fmt.Errorf("bridge: take over lease %q: %w", l.key, err)
	}
}

// won records a successful write of revision rev started at start.
func (l *Lease) won(rev uint64, start time.Time) {
	l.rev, l.until = rev, start.Add(l.ttl)
	l.seenRev, l.seenAt = 0, time.Time{}
}

// Release gives the lease up: it deletes the key if, and only if, our
// revision is still the current one, so another replica can take over at
// once. Releasing a lease we do not hold does nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return nil
	}
	rev := l.rev
	l.rev, l.until = 0, time.Time{}
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("bridge: release lease %q: %w", l.key, err)
	}
	return nil
}
