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
