package verify

import (
	"sync"
	"time"
)

// States holds the verification states a receiver requested from a
// transmitter (SSF §8.1.4) until they expire. A verification event whose
// state is not pending is rejected with invalid_state.
type States struct {
	now     func() time.Time
	mu      sync.Mutex
	pending map[string]time.Time
	stream  string
}

// NewStates returns an empty set using clock now (nil: time.Now).
func NewStates(now func() time.Time) *States {
	if now == nil {
		now = time.Now
	}
	return &States{now: now, pending: make(map[string]time.Time)}
}

// Expect records state as requested, valid for ttl.
func (s *States) Expect(state string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	for k, exp := range s.pending {
		if !t.Before(exp) {
			delete(s.pending, k)
		}
	}
	s.pending[state] = t.Add(ttl)
}

// Pending reports whether state was requested and has not expired. It
// does not consume the state: a transmitter may deliver the same
// verification event again.
func (s *States) Pending(state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.pending[state]
	return ok && s.now().Before(exp)
}

// SetStream names the SSF stream the receiver holds at this issuer's
// transmitter ("" when none is known). A verification event's subject is
// its stream (SSF 1.0 §8.1.4.1): one whose sub_id names another stream is
// rejected with invalid_request.
func (s *States) SetStream(id string) {
	s.mu.Lock()
	s.stream = id
	s.mu.Unlock()
}

// Stream returns the stream set by SetStream.
func (s *States) Stream() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}
