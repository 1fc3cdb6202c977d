package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of a [StreamMonitor]: how long one reading is reused, and how
// long one stream info request may take.
const (
	DefaultStatsTTL     = time.Second
	DefaultStatsTimeout = 2 * time.Second
)

// StreamStats is the stream's fill level at one moment, as JetStream
// reports it (README "Metrics" and "Sizing").
type StreamStats struct {
	// Bytes and Messages are what the stream holds now. Bytes counts as
	// JetStream does: subject, headers and body of every message plus a
	// small per-message overhead.
	Bytes, Messages uint64
	// MaxBytes is the stream's byte limit; -1 when it has none.
	MaxBytes int64
	// MaxAge is the stream's age limit; 0 when it has none.
	MaxAge time.Duration
	// Discard is the stream's policy at its limit.
	Discard Discard
	// FirstTime is when the oldest stored event was stored; zero when
	// the stream is empty.
	FirstTime time.Time
	// Discarded counts events removed from the stream while younger than
	// its max age, seen since the monitor started: the byte limit making
	// room under discard old, or an operator deleting or purging. See
	// [StreamMonitor] for how it is measured.
	Discarded uint64
	// At is when the reading was taken.
	At time.Time
}

// FirstAge is how old the oldest stored event is at the time of the
// reading; 0 for an empty stream.
func (s StreamStats) FirstAge() time.Duration {
	if s.FirstTime.IsZero() || s.Messages == 0 {
		return 0
	}
	return max(s.At.Sub(s.FirstTime), 0)
}

// StreamMonitor reads the stream's state for metrics: at most one stream
// info request per TTL (concurrent callers share it), each bounded by a
// timeout, so frequent scrapes cost JetStream almost nothing.
//
// It counts discarded events from successive readings: the number of
// sequences no longer in the stream (last sequence minus messages) grows
// by every event removed. Growth is counted as discarded unless the
// stream's max age could explain it, that is unless the oldest event of
// the previous reading has reached the max age by now; then the removal is
// taken to be expiry and not counted. So the count is exact while the
// byte limit is what bounds the stream, and a lower bound when both limits
// bite between two readings. It starts at zero with the process; every
// replica counts the same removals.
type StreamMonitor struct {
	b       *Bridge
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	last      StreamStats
	lastErr   error
	fetched   time.Time
	based     bool
	prevGone  uint64
	prevLast  uint64
	prevFirst time.Time // oldest event of the previous reading, or its time when empty
	discarded uint64
}

// Monitor returns a StreamMonitor of the bridge's stream with the default
// TTL and timeout.
func (b *Bridge) Monitor() *StreamMonitor {
	return &StreamMonitor{b: b, ttl: DefaultStatsTTL, timeout: DefaultStatsTimeout, now: time.Now}
}

// Stats returns the stream's state, read at most TTL ago.
func (m *StreamMonitor) Stats(ctx context.Context) (StreamStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if !m.fetched.IsZero() && now.Sub(m.fetched) < m.ttl {
		return m.last, m.lastErr
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	m.last, m.lastErr = m.read(ctx, now)
	m.fetched = m.now()
	return m.last, m.lastErr
}

// read requests stream info once and updates the discard count.
func (m *StreamMonitor) read(ctx context.Context, now time.Time) (StreamStats, error) {
	s, err := m.b.js.Stream(ctx, m.b.cfg.Stream)
	if err != nil {
		return StreamStats{}, fmt.Errorf("bridge: stream %q info: %w", m.b.cfg.Stream, err)
	}
	info := s.CachedInfo()
	st := StreamStats{
		Bytes:    info.State.Bytes,
		Messages: info.State.Msgs,
		MaxBytes: info.Config.MaxBytes,
		MaxAge:   info.Config.MaxAge,
		Discard:  DiscardNew,
		At:       now,
	}
	if st.MaxBytes <= 0 {
		st.MaxBytes = -1
	}
	if info.Config.Discard == jetstream.DiscardOld {
		st.Discard = DiscardOld
	}
	if st.Messages > 0 {
		st.FirstTime = info.State.FirstTime
	}

	last := info.State.LastSeq
	var gone uint64
	if last >= st.Messages {
		gone = last - st.Messages
	}
	switch {
	case !m.based || last < m.prevLast || gone < m.prevGone:
		// First reading, or the stream was recreated: a new baseline.
		m.based = true
	case st.MaxAge > 0 && now.Sub(m.prevFirst) >= st.MaxAge:
		// The previous oldest event has reached max age: what went may
		// have expired.
	default:
		m.discarded += gone - m.prevGone
	}
	m.prevGone, m.prevLast = gone, last
	m.prevFirst = st.FirstTime
	if st.Messages == 0 {
		m.prevFirst = now
	}
	st.Discarded = m.discarded
	return st, nil
}
