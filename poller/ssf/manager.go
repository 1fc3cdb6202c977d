package ssf

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/verify"
)

// Delivery choices of a [ManagerConfig] (the issuers file's stream.delivery).
const (
	DeliveryPush = "push"
	DeliveryPoll = "poll"
)

// Verification states shown in [ManagerStatus].
const (
	VerificationPending   = "pending"   // requested, no event yet
	VerificationConfirmed = "confirmed" // the event with the requested state arrived
	VerificationTimedOut  = "timed_out" // no event within VerificationTimeout
)

// Defaults applied by [NewManager] to zero-valued fields.
const (
	DefaultVerificationTimeout = 2 * time.Minute
	DefaultStatusInterval      = 5 * time.Minute
	DefaultMinBackoff          = time.Second
	DefaultMaxBackoff          = 5 * time.Minute
)

// ManagerConfig configures the [Manager] of one issuer's stream.
type ManagerConfig struct {
	// Issuer is the configured issuer; it must be the client's metadata
	// issuer.
	Issuer string
	// Delivery is DeliveryPush or DeliveryPoll.
	Delivery string
	// PushEndpoint is where the transmitter pushes (push only, required):
	// SETGATE_PUBLIC_URL + /events/<name>.
	PushEndpoint string
	// PushAuthorization is the bare token the transmitter must send; the
	// stream's authorization_header is "Bearer " + it. Empty: none.
	PushAuthorization string
	// EventsRequested and Description are the stream's receiver-supplied
	// members.
	EventsRequested []string
	Description     string
	// VerificationInterval is the time between verification requests;
	// 0 disables periodic verification (a stream the Manager creates is
	// still verified once). The stream's min_verification_interval, if
	// longer, wins.
	VerificationInterval time.Duration
	// VerificationTimeout is how long a requested verification may take
	// before the stream is unhealthy (default 2m).
	VerificationTimeout time.Duration
	// StatusInterval is the time between status reads (default 5m).
	StatusInterval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failed call
	// (defaults 1s and 5m): the n-th consecutive failure waits between
	// half and all of min(MaxBackoff, MinBackoff·2ⁿ⁻¹).
	MinBackoff, MaxBackoff time.Duration
	// States is where requested verification states are registered: the
	// issuer's verifier's (verify.Verifier.States), so it accepts them.
	// Required.
	States *verify.States
	// Client calls the transmitter. Required.
	Client *Client
	// AllowedOrigins are origins besides the issuer's own where a poll
	// endpoint_url the transmitter returns may be ([ParseAllowedOrigins];
	// the issuers file's stream.allowed_origins). setgate sends its
	// poll credential there.
	AllowedOrigins []string
	// Logger receives the Manager's log; nil discards.
	Logger *slog.Logger
	// StreamID, if set, pins the stream (the issuers file's
	// stream.stream_id): Ensure reads it with ?stream_id= and uses it, or
	// fails; it never lists, creates or adopts another.
	StreamID string
	// Memory, if set, remembers the stream Ensure created or adopted, so
	// that every replica and every restart uses the same one without
	// listing (README "Adding an SSF transmitter").
	Memory StreamMemory
	// OnStream, if set, is called (from the calling goroutine) each time
	// Ensure succeeds, with the stream as the transmitter has it; for a
	// poll stream, Delivery.EndpointURL is the poll endpoint.
	OnStream func(StreamConfig)

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() then
	// (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a uniformly random number in [0, n) for n > 0
	// (default math/rand/v2.Int64N).
	Rand func(n int64) int64
}

// StreamMemory remembers the stream_id of one issuer's stream across
// restarts and replicas (bridge.StreamRecord keeps it in NATS KV).
type StreamMemory interface {
	// Recall returns the remembered stream_id, "" when there is none.
	Recall(ctx context.Context) (string, error)
	// Remember stores id; "" forgets.
	Remember(ctx context.Context, id string) error
}

// ManagerStatus is what a [Manager] knows about its stream, for /issuers
// and metrics. It never holds a credential.
type ManagerStatus struct {
	StreamID string `json:"stream_id,omitempty"`
	// Delivery is "push" or "poll"; EndpointURL is the stream's endpoint
	// as the transmitter has it (for poll: where to poll).
	Delivery    string `json:"delivery"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// Status is enabled, paused or disabled ("" until known), from the
	// status endpoint or a stream-updated event, whichever came last.
	Status   string    `json:"status,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	StatusAt time.Time `json:"status_at,omitzero"`
	// Verification is "", pending, confirmed or timed_out.
	Verification          string    `json:"verification,omitempty"`
	VerificationRequested time.Time `json:"last_verification_requested,omitzero"`
	VerificationConfirmed time.Time `json:"last_verification_confirmed,omitzero"`
	// Healthy is false while the stream is not set up, paused or
	// disabled, or from a verification timing out until one is confirmed;
	// HealthReason says why.
	Healthy      bool   `json:"healthy"`
	HealthReason string `json:"health_reason,omitempty"`
	// LastError is the last failed call to the transmitter.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// EventsRequested is what setgate asked for; EventsDelivered what the
	// transmitter will send; EventsMissing the requested ones it will not.
	EventsRequested []string `json:"events_requested,omitempty"`
	EventsDelivered []string `json:"events_delivered,omitempty"`
	EventsMissing   []string `json:"events_missing,omitempty"`
	// UnsolicitedVerifications counts verification events without a
	// state (sent by the transmitter on its own); StreamUpdates counts
	// stream-updated events.
	UnsolicitedVerifications uint64 `json:"unsolicited_verifications"`
	StreamUpdates            uint64 `json:"stream_updates"`
	// Found says how the stream was found: pinned (stream.stream_id),
	// remembered, listed or created.
	Found string `json:"found,omitempty"`
	// Warnings are deviations of the transmitter's stream configuration
	// that setgate tolerates ([StreamConfig.Warnings]).
	Warnings []string `json:"warnings,omitempty"`
}

// How a stream was found (ManagerStatus.Found).
const (
	FoundPinned     = "pinned"
	FoundRemembered = "remembered"
	FoundListed     = "listed"
	FoundCreated    = "created"
)

// Manager keeps one issuer's SSF stream set up, verified and watched. Its
// methods are safe for concurrent use; Run runs once at a time.
type Manager struct {
	cfg ManagerConfig
	log *slog.Logger

	mu          sync.Mutex
	st          ManagerStatus
	stream      StreamConfig
	ensured     bool
	created     bool      // the last Ensure created the stream
	outstanding string    // the state of the pending verification request
	deadline    time.Time // when it times out
	// failedAt is when the last verification that timed out was
	// requested; zero once one is confirmed. It keeps the stream
	// unhealthy while the next request is pending.
	failedAt time.Time
	// refused is the stream_id of a stream this Manager created whose
	// answer it refused (another iss): it never creates a second one.
	refused    string
	refusedErr error
}

// NewManager checks cfg and fills in defaults.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Client == nil || cfg.Client.Metadata() == nil {
		return nil, errors.New("ssf: manager: a client is required")
	}
	meta := cfg.Client.Metadata()
	if cfg.Issuer != meta.Issuer {
		return nil, fmt.Errorf("ssf: manager: %w: configured %q, metadata %q", ErrIssuerMismatch, cfg.Issuer, meta.Issuer)
	}
	if cfg.States == nil {
		return nil, errors.New("ssf: manager: States is required (the issuer's verifier's States)")
	}
	if meta.ConfigurationEndpoint == "" {
		return nil, fmt.Errorf("ssf: manager: %w: the metadata has no configuration_endpoint", ErrNotSupported)
	}
	if cfg.VerificationInterval > 0 && meta.VerificationEndpoint == "" {
		return nil, fmt.Errorf("ssf: manager: %w: verification is configured but the metadata has no verification_endpoint", ErrNotSupported)
	}
	switch cfg.Delivery {
	case DeliveryPush:
		if err := verify.CheckEndpointURL(cfg.PushEndpoint); err != nil {
			return nil, fmt.Errorf("ssf: manager: push endpoint %q %w", cfg.PushEndpoint, err)
		}
	case DeliveryPoll:
	default:
		return nil, fmt.Errorf("ssf: manager: delivery %q is not push or poll", cfg.Delivery)
	}
	if !meta.SupportsDelivery(cfg.method()) {
		return nil, fmt.Errorf("ssf: manager: %w: delivery %s (%s); the transmitter offers %v", ErrNotSupported, cfg.Delivery, cfg.method(), meta.DeliveryMethodsSupported)
	}
	if cfg.VerificationInterval < 0 || cfg.VerificationTimeout < 0 || cfg.StatusInterval < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("ssf: manager: negative duration")
	}
	if cfg.VerificationTimeout == 0 {
		cfg.VerificationTimeout = DefaultVerificationTimeout
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("ssf: manager: max backoff %v is less than min backoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = poller.Sleep
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Int64N
	}
	cfg.EventsRequested = slices.Clone(cfg.EventsRequested)
	m := &Manager{cfg: cfg, log: cfg.Logger}
	m.st.Delivery = cfg.Delivery
	m.st.EventsRequested = cfg.EventsRequested
	return m, nil
}

func (c *ManagerConfig) method() string {
	if c.Delivery == DeliveryPush {
		return MethodPush
	}
	return MethodPoll
}

// desired is the delivery object setgate wants.
func (c *ManagerConfig) desired() Delivery {
	if c.Delivery == DeliveryPoll {
		return Delivery{Method: MethodPoll}
	}
	d := Delivery{Method: MethodPush, EndpointURL: c.PushEndpoint}
	if c.PushAuthorization != "" {
		d.AuthorizationHeader = "Bearer " + c.PushAuthorization
	}
	return d
}

// Ensure makes the transmitter hold the configured stream. It finds the
// stream: the pinned StreamID, else the one Memory remembers (read with
// ?stream_id=), else by listing the receiver's streams and reusing the
// one with the configured delivery method (for push: the one with the
// same endpoint, or the only push stream). A transmitter that refuses to
// list (403, 405, 501) has no listed stream. It updates the stream if
// events_requested, description, endpoint or authorization differ, and
// creates one if there is none. A stream whose iss is not the issuer is
// never used. It never deletes a stream.
func (m *Manager) Ensure(ctx context.Context) (StreamConfig, error) {
	cfg, found, err := m.ensure(ctx)
	if err != nil {
		m.noteError(err)
		return StreamConfig{}, err
	}
	m.record(cfg, found)
	if found == FoundCreated {
		m.log.InfoContext(ctx, "ssf stream created", "stream_id", cfg.StreamID, "delivery", cfg.Delivery)
	}
	if m.cfg.OnStream != nil {
		m.cfg.OnStream(cfg)
	}
	return cfg, nil
}

// listRefused reports whether a list answer means "this transmitter does
// not list streams" rather than a failure.
func listRefused(err error) bool {
	switch StatusCode(err) {
	case http.StatusNotFound, http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

func (m *Manager) sameMethod(s StreamConfig) bool {
	method := m.cfg.method()
	return s.Delivery.Method == method || (s.Delivery.Method == "" && method == MethodPoll)
}

// find returns the stream to use, how it was found, and the streams
// listed (when it listed); nil when there is none.
func (m *Manager) find(ctx context.Context) (*StreamConfig, string, []StreamConfig, error) {
	c := m.cfg.Client
	if id := m.cfg.StreamID; id != "" {
		s, err := c.GetStream(ctx, id)
		if err != nil {
			return nil, "", nil, fmt.Errorf("stream.stream_id %q: %w", id, err)
		}
		if !m.sameMethod(s) {
			return nil, "", nil, fmt.Errorf("ssf: stream.stream_id %q: delivery method is %q, configured %s", id, s.Delivery.Method, m.cfg.Delivery)
		}
		return &s, FoundPinned, nil, nil
	}
	if m.cfg.Memory != nil {
		id, err := m.cfg.Memory.Recall(ctx)
		if err != nil {
			m.log.WarnContext(ctx, "the remembered ssf stream could not be read; listing instead", "err", err)
		}
		if id != "" {
			s, err := c.GetStream(ctx, id)
			switch {
			case err == nil && m.sameMethod(s):
				return &s, FoundRemembered, nil, nil
			case err == nil:
				m.log.InfoContext(ctx, "the remembered ssf stream has another delivery; looking for one", "stream_id", id, "method", s.Delivery.Method)
			case StatusCode(err) == http.StatusNotFound:
				m.log.InfoContext(ctx, "the remembered ssf stream no longer exists at the transmitter", "stream_id", id)
			case errors.Is(err, ErrIssuerMismatch):
				m.log.WarnContext(ctx, "the remembered ssf stream names another issuer; it is not used", "stream_id", id, "err", err)
			default:
				return nil, "", nil, err // do not create a second stream over a passing failure
			}
		}
	}
	streams, err := c.GetStreams(ctx)
	if listRefused(err) {
		m.log.DebugContext(ctx, "the transmitter does not list streams", "status", StatusCode(err))
		streams, err = nil, nil
	}
	if err != nil {
		return nil, "", nil, err
	}
	if cur := m.pick(ctx, streams); cur != nil {
		return cur, FoundListed, streams, nil
	}
	return nil, "", streams, nil
}

func (m *Manager) ensure(ctx context.Context) (cfg StreamConfig, found string, err error) {
	c := m.cfg.Client
	want := m.cfg.desired()
	cur, found, streams, err := m.find(ctx)
	if err != nil {
		return StreamConfig{}, "", err
	}
	if cur == nil {
		m.mu.Lock()
		refused, refusedErr := m.refused, m.refusedErr
		m.mu.Unlock()
		if refused != "" {
			return StreamConfig{}, "", fmt.Errorf("%w (setgate created stream %q and does not use it; it creates no other: fix the transmitter, pin a stream with stream.stream_id, or delete it and reload)", refusedErr, refused)
		}
		if len(streams) > 0 {
			m.log.InfoContext(ctx, "no ssf stream with this delivery; creating one (setgate never deletes streams)",
				"delivery", m.cfg.Delivery, "other_streams", len(streams))
		}
		cfg, err = c.CreateStream(ctx, StreamConfig{EventsRequested: m.cfg.EventsRequested, Description: m.cfg.Description, Delivery: want})
		if errors.Is(err, ErrIssuerMismatch) && cfg.StreamID != "" {
			m.mu.Lock()
			m.refused, m.refusedErr = cfg.StreamID, err
			m.mu.Unlock()
		}
		if StatusCode(err) == http.StatusConflict && len(streams) > 0 {
			return StreamConfig{}, "", fmt.Errorf("%w (the transmitter allows no second stream; stream %q uses %s: change its delivery or delete it by hand)",
				err, streams[0].StreamID, streams[0].Delivery.Method)
		}
		if err != nil {
			return StreamConfig{}, "", err
		}
		found = FoundCreated
	} else if patch, fields := m.diff(*cur, want); len(fields) > 0 {
		m.log.InfoContext(ctx, "updating ssf stream", "stream_id", cur.StreamID, "fields", fields)
		cfg, err = c.UpdateStream(ctx, patch)
		if err == nil && cfg.StreamID == "" { // 202 without a body: read it back
			cfg, err = c.GetStream(ctx, cur.StreamID)
		}
		if err != nil {
			return StreamConfig{}, "", err
		}
	} else {
		cfg = *cur
	}
	if got := cfg.Delivery.Method; got != want.Method && !(got == "" && want.Method == MethodPoll) {
		return StreamConfig{}, "", fmt.Errorf("ssf: stream %q: %w: delivery method is %q, want %q", cfg.StreamID, ErrBadAnswer, got, want.Method)
	}
	if want.Method == MethodPoll {
		m.mu.Lock()
		if prev := m.stream; cfg.Delivery.AuthorizationHeader == "" && prev.StreamID == cfg.StreamID && prev.Delivery.EndpointURL == cfg.Delivery.EndpointURL {
			// A per-stream poll token the transmitter returned once (at
			// create) and does not echo on reads stays in use.
			cfg.Delivery.AuthorizationHeader = prev.Delivery.AuthorizationHeader
		}
		m.mu.Unlock()
		if err := verify.CheckEndpointURL(cfg.Delivery.EndpointURL); err != nil {
			return StreamConfig{}, "", fmt.Errorf("ssf: stream %q: %w: poll endpoint_url %q %v", cfg.StreamID, ErrBadAnswer, cfg.Delivery.EndpointURL, err)
		}
		if err := newOrigins(m.cfg.Issuer, m.cfg.AllowedOrigins).check("poll endpoint_url", cfg.Delivery.EndpointURL); err != nil {
			return StreamConfig{}, "", fmt.Errorf("ssf: stream %q: %w", cfg.StreamID, err)
		}
	} else if cfg.Delivery.EndpointURL != want.EndpointURL {
		m.log.WarnContext(ctx, "the transmitter pushes to another endpoint than configured", "stream_id", cfg.StreamID,
			"endpoint_url", cfg.Delivery.EndpointURL, "configured", want.EndpointURL)
	}
	if m.cfg.Memory != nil && found != FoundPinned && found != FoundRemembered {
		if err := m.cfg.Memory.Remember(ctx, cfg.StreamID); err != nil {
			m.log.WarnContext(ctx, "the ssf stream could not be remembered; the next start lists or creates again", "stream_id", cfg.StreamID, "err", err)
		}
	}
	return cfg, found, nil
}

// pick chooses the stream to reuse, or nil.
func (m *Manager) pick(ctx context.Context, streams []StreamConfig) *StreamConfig {
	method := m.cfg.method()
	var same []int
	for i, s := range streams {
		if s.Delivery.Method == method || (s.Delivery.Method == "" && method == MethodPoll) {
			same = append(same, i)
		}
	}
	if method == MethodPush {
		for _, i := range same {
			if streams[i].Delivery.EndpointURL == m.cfg.PushEndpoint {
				return &streams[i]
			}
		}
		if len(same) != 1 {
			return nil // none, or several to other endpoints: do not guess
		}
	}
	if len(same) == 0 {
		return nil
	}
	if len(same) > 1 {
		m.log.WarnContext(ctx, "several ssf streams with this delivery; using the first", "stream_id", streams[same[0]].StreamID, "streams", len(same))
	}
	return &streams[same[0]]
}

// diff returns the partial update that makes cur what is configured, and
// the names of the members it changes.
func (m *Manager) diff(cur StreamConfig, want Delivery) (StreamConfig, []string) {
	patch := StreamConfig{StreamID: cur.StreamID}
	var fields []string
	if len(m.cfg.EventsRequested) > 0 && !sameSet(cur.EventsRequested, m.cfg.EventsRequested) {
		patch.EventsRequested = m.cfg.EventsRequested
		fields = append(fields, "events_requested")
	}
	if d := m.cfg.Description; d != "" && d != cur.Description {
		patch.Description = d
		fields = append(fields, "description")
	}
	if want.Method == MethodPush {
		changed := false
		if cur.Delivery.EndpointURL != want.EndpointURL {
			fields, changed = append(fields, "endpoint_url"), true
		}
		// A transmitter that does not echo authorization_header gets it
		// again: setgate cannot tell whether it holds the current one.
		if want.AuthorizationHeader != "" && cur.Delivery.AuthorizationHeader != want.AuthorizationHeader {
			fields, changed = append(fields, "authorization_header"), true
		}
		if changed {
			patch.Delivery = want
		}
	}
	return patch, fields
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// record keeps what Ensure learnt.
func (m *Manager) record(cfg StreamConfig, found string) {
	created := found == FoundCreated
	var missing []string
	if len(cfg.EventsDelivered) > 0 || len(m.cfg.EventsRequested) > 0 {
		for _, e := range m.cfg.EventsRequested {
			if !slices.Contains(cfg.EventsDelivered, e) {
				missing = append(missing, e)
			}
		}
	}
	if len(missing) > 0 {
		m.log.Warn("the transmitter will not deliver some requested event types", "stream_id", cfg.StreamID, "missing", missing)
	}
	warnings := cfg.Warnings()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(warnings) > 0 && !slices.Equal(warnings, m.st.Warnings) {
		m.log.Warn("the transmitter's stream configuration deviates from SSF; tolerated", "stream_id", cfg.StreamID, "warnings", warnings)
	}
	if m.stream.StreamID != cfg.StreamID {
		m.outstanding, m.deadline, m.failedAt = "", time.Time{}, time.Time{}
		m.st.Verification, m.st.Status, m.st.Reason, m.st.StatusAt = "", "", "", time.Time{}
	}
	m.stream, m.ensured, m.created = cfg, true, created
	m.cfg.States.SetStream(cfg.StreamID)
	m.st.StreamID, m.st.Found, m.st.Warnings = cfg.StreamID, found, warnings
	m.st.EndpointURL = cfg.Delivery.EndpointURL
	m.st.EventsDelivered = slices.Clone(cfg.EventsDelivered)
	m.st.EventsMissing = missing
	m.st.LastError, m.st.LastErrorAt = "", time.Time{}
}

func (m *Manager) noteError(err error) {
	now := m.cfg.Now()
	m.mu.Lock()
	m.st.LastError, m.st.LastErrorAt = err.Error(), now
	m.mu.Unlock()
}

// ErrNoStream is returned by calls that need a stream before Ensure
// succeeded.
var ErrNoStream = errors.New("ssf: the stream is not set up yet")

// Verify requests one verification event with a fresh random state and
// returns the state. The state is registered with States (for
// VerificationTimeout) before the request, since the event may arrive
// before the answer.
func (m *Manager) Verify(ctx context.Context) (string, error) {
	m.mu.Lock()
	id, ok := m.stream.StreamID, m.ensured
	m.mu.Unlock()
	if !ok {
		return "", ErrNoStream
	}
	state := rand.Text()
	now := m.cfg.Now()
	m.cfg.States.Expect(state, m.cfg.VerificationTimeout)
	// Outstanding before the request: the event may come before the answer.
	m.mu.Lock()
	prevState, prevRequested := m.st.Verification, m.st.VerificationRequested
	m.outstanding, m.deadline = state, now.Add(m.cfg.VerificationTimeout)
	m.st.Verification, m.st.VerificationRequested = VerificationPending, now
	m.mu.Unlock()
	if err := m.cfg.Client.RequestVerification(ctx, id, state); err != nil {
		m.mu.Lock()
		if m.outstanding == state {
			m.outstanding, m.deadline = "", time.Time{}
			m.st.Verification, m.st.VerificationRequested = prevState, prevRequested
		}
		m.mu.Unlock()
		m.noteError(err)
		return "", err
	}
	m.log.InfoContext(ctx, "ssf verification requested", "stream_id", id)
	return state, nil
}

// ReadStatus reads the stream's status from the status endpoint and
// records it. A 404 means the stream is gone: the next Run step sets it
// up again.
func (m *Manager) ReadStatus(ctx context.Context) (StreamStatus, error) {
	m.mu.Lock()
	id, ok := m.stream.StreamID, m.ensured
	m.mu.Unlock()
	if !ok {
		return StreamStatus{}, ErrNoStream
	}
	st, err := m.cfg.Client.Status(ctx, id)
	if err != nil {
		m.noteError(err)
		if StatusCode(err) == http.StatusNotFound {
			m.log.WarnContext(ctx, "the ssf stream no longer exists at the transmitter; setting it up again", "stream_id", id)
			m.mu.Lock()
			m.ensured = false
			m.mu.Unlock()
		}
		return StreamStatus{}, err
	}
	m.setStatus(ctx, st.Status, st.Reason, "status endpoint")
	return st, nil
}

// setStatus records a stream status and says so loudly when the stream
// does not deliver.
func (m *Manager) setStatus(ctx context.Context, status, reason, source string) {
	now := m.cfg.Now()
	m.mu.Lock()
	prev := m.st.Status
	m.st.Status, m.st.Reason, m.st.StatusAt = status, reason, now
	id := m.st.StreamID
	m.mu.Unlock()
	switch {
	case status == StatusPaused || status == StatusDisabled:
		m.log.WarnContext(ctx, "ssf stream is not delivering: the transmitter sends no events", "stream_id", id, "status", status, "reason", reason, "source", source)
	case status != prev:
		m.log.InfoContext(ctx, "ssf stream status", "stream_id", id, "status", status, "reason", reason, "source", source)
	}
}

// Observe takes one accepted event of the issuer. The gateway calls it for
// every verification and stream-updated event that passed verification
// (other types are ignored). A verification carrying the outstanding state
// confirms it; one without state is counted as unsolicited; a
// stream-updated event records the status it announces.
func (m *Manager) Observe(eventType string, payload json.RawMessage) {
	ctx := context.Background()
	switch eventType {
	case verify.EventVerification:
		var p struct {
			State *string `json:"state"`
		}
		if json.Unmarshal(payload, &p) != nil {
			return
		}
		now := m.cfg.Now()
		m.mu.Lock()
		id := m.st.StreamID
		switch {
		case p.State == nil:
			m.st.UnsolicitedVerifications++
			m.mu.Unlock()
			m.log.InfoContext(ctx, "unsolicited ssf verification event", "stream_id", id)
		case *p.State == m.outstanding && m.outstanding != "":
			took := now.Sub(m.st.VerificationRequested)
			m.outstanding, m.deadline, m.failedAt = "", time.Time{}, time.Time{}
			m.st.Verification, m.st.VerificationConfirmed = VerificationConfirmed, now
			m.mu.Unlock()
			m.log.InfoContext(ctx, "ssf stream verified", "stream_id", id, "took", took)
		default:
			m.mu.Unlock()
			m.log.DebugContext(ctx, "ssf verification event for another request", "stream_id", id)
		}
	case verify.EventStreamUpdated:
		var p struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(payload, &p) != nil || p.Status == "" {
			return
		}
		m.mu.Lock()
		m.st.StreamUpdates++
		m.mu.Unlock()
		m.setStatus(ctx, p.Status, p.Reason, "stream-updated event")
	}
}

// Status returns what the Manager knows.
func (m *Manager) Status() ManagerStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.EventsRequested = slices.Clone(s.EventsRequested)
	s.EventsDelivered = slices.Clone(s.EventsDelivered)
	s.EventsMissing = slices.Clone(s.EventsMissing)
	s.Warnings = slices.Clone(s.Warnings)
	switch {
	case !m.ensured && s.LastError != "":
		s.HealthReason = "stream not set up: " + s.LastError
	case !m.ensured:
		s.HealthReason = "stream not set up yet"
	case s.Status == StatusPaused || s.Status == StatusDisabled:
		s.HealthReason = "stream is " + s.Status
		if s.Reason != "" {
			s.HealthReason += ": " + s.Reason
		}
	case !m.failedAt.IsZero():
		s.HealthReason = fmt.Sprintf("no verification event within %v of the request at %s",
			m.cfg.VerificationTimeout, m.failedAt.UTC().Format(time.RFC3339))
	}
	s.Healthy = s.HealthReason == ""
	return s
}

// Run keeps the stream set up, verified and watched until ctx ends, then
// returns nil. Failed calls are logged, shown in Status and retried with
// backoff; Run never gives up.
func (m *Manager) Run(ctx context.Context) error {
	ensureB, verifyB, statusB := m.newBackoff(), m.newBackoff(), m.newBackoff()
	var nextVerify, nextStatus time.Time
	verifyOnce := false
	for ctx.Err() == nil {
		if !m.isEnsured() {
			_, err := m.Ensure(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				d := ensureB.next()
				m.log.WarnContext(ctx, "ssf stream setup failed; retrying", "err", err, "retry_in", d)
				if m.cfg.Sleep(ctx, d) != nil {
					break
				}
				continue
			}
			ensureB.reset()
			now := m.cfg.Now()
			nextVerify, nextStatus = now, now
			m.mu.Lock()
			verifyOnce = m.created && m.cfg.Client.Metadata().VerificationEndpoint != ""
			m.mu.Unlock()
		}

		now := m.cfg.Now()
		m.checkTimeout(ctx, now)
		if (m.cfg.VerificationInterval > 0 || verifyOnce) && !now.Before(nextVerify) && !m.pending() {
			if _, err := m.Verify(ctx); err != nil {
				d := verifyB.next()
				var he *HTTPError
				if errors.As(err, &he) && he.RetryAfter > d {
					d = he.RetryAfter
				}
				m.log.WarnContext(ctx, "ssf verification request failed; retrying", "err", err, "retry_in", d)
				nextVerify = now.Add(d)
			} else {
				verifyB.reset()
				verifyOnce = false
				nextVerify = now.Add(m.verificationInterval())
			}
		}
		if m.cfg.Client.Metadata().StatusEndpoint != "" && !now.Before(nextStatus) {
			if _, err := m.ReadStatus(ctx); err != nil {
				d := statusB.next()
				m.log.WarnContext(ctx, "ssf status read failed", "err", err, "retry_in", d)
				nextStatus = now.Add(d)
				if !m.isEnsured() {
					continue
				}
			} else {
				statusB.reset()
				nextStatus = now.Add(m.cfg.StatusInterval)
			}
		}

		var wake time.Time
		earliest := func(t time.Time) {
			if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
		if m.cfg.VerificationInterval > 0 || verifyOnce {
			earliest(nextVerify)
		}
		if m.cfg.Client.Metadata().StatusEndpoint != "" {
			earliest(nextStatus)
		}
		m.mu.Lock()
		earliest(m.deadline)
		m.mu.Unlock()
		if wake.IsZero() {
			<-ctx.Done()
			break
		}
		if m.cfg.Sleep(ctx, wake.Sub(m.cfg.Now())) != nil {
			break
		}
	}
	return nil
}

// verificationInterval is the configured interval, or the transmitter's
// min_verification_interval if that is longer.
func (m *Manager) verificationInterval() time.Duration {
	m.mu.Lock()
	minimum := time.Duration(m.stream.MinVerificationInterval) * time.Second
	m.mu.Unlock()
	return max(m.cfg.VerificationInterval, minimum)
}

func (m *Manager) isEnsured() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ensured
}

func (m *Manager) pending() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outstanding != ""
}

// checkTimeout marks the outstanding verification timed out once its
// deadline passed.
func (m *Manager) checkTimeout(ctx context.Context, now time.Time) {
	m.mu.Lock()
	if m.outstanding == "" || now.Before(m.deadline) {
		m.mu.Unlock()
		return
	}
	m.outstanding, m.deadline, m.failedAt = "", time.Time{}, m.st.VerificationRequested
	m.st.Verification = VerificationTimedOut
	id, requested := m.st.StreamID, m.st.VerificationRequested
	m.mu.Unlock()
	m.log.WarnContext(ctx, "no ssf verification event arrived in time: the stream is unhealthy", "stream_id", id,
		"requested", requested, "timeout", m.cfg.VerificationTimeout)
}

// backoff is the retry delay after consecutive failures of one call.
type backoff struct {
	min, max time.Duration
	rand     func(int64) int64
	n        int
}

func (m *Manager) newBackoff() *backoff {
	return &backoff{min: m.cfg.MinBackoff, max: m.cfg.MaxBackoff, rand: m.cfg.Rand}
}

// next returns a delay between half and all of min(max, min·2ⁿ⁻¹).
func (b *backoff) next() time.Duration {
	b.n++
	ceil := poller.BackoffCeiling(b.min, b.max, b.n)
	half := ceil / 2
	return half + time.Duration(b.rand(int64(ceil-half)+1))
}

func (b *backoff) reset() { b.n = 0 }
