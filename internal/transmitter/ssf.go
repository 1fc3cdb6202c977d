package transmitter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SSF event types and delivery method URNs (SSF 1.0).
const (
	StreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
	MethodPush    = "urn:ietf:rfc:8935"
	MethodPoll    = "urn:ietf:rfc:8936"
)

// SSFOptions configure an SSFTransmitter.
type SSFOptions struct {
	// Transmitter signs the SETs and serves the JWKS; nil: a new one made
	// with Alg and Audience (and closed by Close).
	Transmitter *Transmitter
	// Alg and Audience configure a new Transmitter (see Options).
	Alg, Audience string
	// Path, if not empty, is the issuer's path: the issuer is then
	// http://<addr>/<Path> and the metadata is served at
	// /.well-known/ssf-configuration/<Path>. Empty: http://<addr>/.
	Path string
	// Bearer protects the configuration, status and verification
	// endpoints; empty accepts any request.
	Bearer string
	// PollBearer protects the poll endpoint of poll streams; empty: none.
	PollBearer string
	// PollHold is the poll endpoint's long-poll hold (default 1s).
	PollHold time.Duration
	// EventsSupported lists the event types the transmitter offers
	// (default: session-revoked, credential-change, account-disabled,
	// device-compliance-change).
	EventsSupported []string
	// Addr is the listen address. Default "127.0.0.1:0".
	Addr string
}

// SSFFaults make the SSFTransmitter misbehave; the zero value behaves.
type SSFFaults struct {
	// DiscoveryIssuer, if set, is put in the metadata instead of the issuer.
	DiscoveryIssuer string
	// DiscoveryStatus, if set and not 200, answers discovery with it.
	DiscoveryStatus int
	// DiscoveryBadJSON answers discovery with a body that is not JSON.
	DiscoveryBadJSON bool
	// NoJWKSURI leaves jwks_uri out of the metadata.
	NoJWKSURI bool
	// InsecureEndpoint advertises a configuration_endpoint on a plain
	// http, non-loopback URL.
	InsecureEndpoint bool
	// ConfigStatus, if set, answers every configuration endpoint request
	// with it (and a JSON error body).
	ConfigStatus int
	// SingleStream refuses to create a second stream (409 Conflict), as
	// transmitters that allow one stream per receiver do.
	SingleStream bool
	// ListAsObject answers a stream list (GET without stream_id) with the
	// first stream as a single object instead of an array.
	ListAsObject bool
	// VerifyRetryAfter, if set, answers verification requests with 429
	// and this Retry-After (whole seconds).
	VerifyRetryAfter time.Duration
	// DropVerification answers verification requests with 204 but sends
	// no event.
	DropVerification bool
	// WrongState sends the verification event with another state than
	// the one requested.
	WrongState bool

	// Deviations of transmitters that exist (each is tolerated by setgate;
	// README "Adding an SSF transmitter"):

	// ListRefused answers a stream list (GET without stream_id) with 403.
	ListRefused bool
	// NoAud leaves aud out of every stream configuration answered.
	NoAud bool
	// StreamIDQueryOnly reads stream_id of a PATCH, PUT or DELETE from
	// the query string only, ignoring the body's (a request without it in
	// the query is answered 404).
	StreamIDQueryOnly bool
	// PerStreamPollToken gives each poll stream its own token: the create
	// answer carries it as delivery.authorization_header, and the poll
	// endpoint requires it (not the management token).
	PerStreamPollToken bool
	// PollTokenOnCreateOnly returns a poll stream's
	// delivery.authorization_header in the create answer only, not on reads
	// or updates.
	PollTokenOnCreateOnly bool

	// Misbehaviours setgate must refuse:

	// RISCOnly serves the metadata at /.well-known/risc-configuration
	// only (404 at /.well-known/ssf-configuration).
	RISCOnly bool

	// WrongIss answers every stream configuration with another iss.
	WrongIss string
	// VerifyOtherStream sends the verification event with a sub_id naming
	// another stream than the one verified.
	VerifyOtherStream bool

	// EndpointsAt, if set, is the base URL (ending in "/") the metadata
	// names for the configuration, status and verification endpoints
	// instead of the transmitter's own: another origin.
	EndpointsAt string
	// DirectJWKS names the signer's own JWKS server as jwks_uri: another
	// origin than the issuer (by default the issuer's listener serves it).
	DirectJWKS bool
	// DirectPoll gives poll streams created or updated from now on the
	// poll server's own URL as endpoint_url: another origin than the
	// issuer (by default the issuer's listener serves it).
	DirectPoll bool
}

// SSFStream is one stream as the transmitter keeps it, in the SSF stream
// configuration's wire form, plus its status.
type SSFStream struct {
	StreamID                string      `json:"stream_id"`
	Iss                     string      `json:"iss"`
	Aud                     string      `json:"aud,omitempty"`
	EventsSupported         []string    `json:"events_supported"`
	EventsRequested         []string    `json:"events_requested,omitempty"`
	EventsDelivered         []string    `json:"events_delivered"`
	Delivery                SSFDelivery `json:"delivery"`
	MinVerificationInterval int         `json:"min_verification_interval,omitempty"`
	Description             string      `json:"description,omitempty"`
	Status                  string      `json:"-"`
	Reason                  string      `json:"-"`
}

// SSFDelivery is a stream's delivery object.
type SSFDelivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// SSFDelivered is one SET the transmitter delivered (or tried to).
type SSFDelivered struct {
	StreamID  string
	JTI       string
	EventType string
	Method    string // MethodPush or MethodPoll
	// Status is the receiver's HTTP answer to a push (0 for poll, or when
	// the push failed: then Err says why).
	Status int
	Body   string
	Err    string
}

// SSFTransmitter is the transmitter side of the OpenID Shared Signals
// Framework for tests and the demo: discovery, stream configuration
// (POST/GET/PATCH/DELETE), status, verification, and delivery of SETs to
// each stream by push (RFC 8935) or through its embedded [PollServer]
// (RFC 8936). Everything is plain HTTP on loopback.
type SSFTransmitter struct {
	tx       *Transmitter
	ownTx    bool
	ps       *PollServer
	psDirect string // the poll server's own URL (another origin)
	ln       net.Listener
	srv      *http.Server
	base     string // http://host:port/
	issuer   string
	bearer   [32]byte
	opts     SSFOptions
	client   *http.Client
	wg       sync.WaitGroup

	mu        sync.Mutex
	closed    bool // no new deliveries start
	faults    SSFFaults
	streams   []*SSFStream
	replaced  int // PUT requests applied
	lists     int // list requests (GET without stream_id)
	subjects  map[string][]json.RawMessage
	calls     []string
	delivered []SSFDelivered
}

// NewSSFTransmitter starts an SSF transmitter on its own listener.
func NewSSFTransmitter(opts SSFOptions) (*SSFTransmitter, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if len(opts.EventsSupported) == 0 {
		opts.EventsSupported = []string{SessionRevoked, CredentialChange, AccountDisabled, DeviceCompliance}
	}
	s := &SSFTransmitter{opts: opts, tx: opts.Transmitter, client: &http.Client{Timeout: 30 * time.Second}}
	if s.tx == nil {
		tx, err := New(Options{Alg: opts.Alg, Audience: opts.Audience})
		if err != nil {
			return nil, err
		}
		s.tx, s.ownTx = tx, true
	}
	ps, err := NewPollServer(PollOptions{Bearer: opts.PollBearer, Hold: opts.PollHold})
	if err != nil {
		s.closeTx()
		return nil, err
	}
	s.ps, s.psDirect = ps, ps.URL()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		ps.Close()
		s.closeTx()
		return nil, fmt.Errorf("transmitter: ssf: %w", err)
	}
	s.ln, s.base = ln, "http://"+ln.Addr().String()+"/"
	path := strings.Trim(opts.Path, "/")
	s.issuer = s.base + path
	s.bearer = sha256.Sum256([]byte(opts.Bearer))

	wellKnown := "/.well-known/ssf-configuration"
	if path != "" {
		wellKnown += "/" + path
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wellKnown, s.discovery)
	mux.HandleFunc("/ssf/stream", s.guard(s.stream))
	mux.HandleFunc("GET /ssf/status", s.guard(s.status))
	mux.HandleFunc("POST /ssf/status", s.guard(s.updateStatus))
	mux.HandleFunc("POST /ssf/verify", s.guard(s.verify))
	mux.HandleFunc("POST /ssf/subjects/add", s.guard(s.subject(true)))
	mux.HandleFunc("POST /ssf/subjects/remove", s.guard(s.subject(false)))
	riscWellKnown := "/.well-known/risc-configuration"
	if path != "" {
		riscWellKnown += "/" + path
	}
	mux.HandleFunc("GET "+riscWellKnown, s.riscDiscovery)
	// The JWKS and the poll endpoint are served on the issuer's origin
	// too, as a real transmitter does; the servers behind them stay
	// reachable directly (DirectJWKS, DirectPoll).
	mux.Handle("GET /jwks", proxyTo(s.tx.JWKSURL()))
	mux.Handle("POST /poll", proxyTo(s.psDirect))
	ps.url = s.base + "poll"
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// proxyTo forwards requests to the server of target (same path).
func proxyTo(target string) http.Handler {
	u, _ := url.Parse(target)
	u.Path = ""
	return httputil.NewSingleHostReverseProxy(u)
}

// JWKSURL is the metadata's jwks_uri (on the issuer's origin).
func (s *SSFTransmitter) JWKSURL() string { return s.base + "jwks" }

// DirectPollURL is the poll server's own URL, on another origin than the
// issuer (see SSFFaults.DirectPoll).
func (s *SSFTransmitter) DirectPollURL() string { return s.psDirect }

// pollURL is the endpoint_url of a poll stream; s.mu is held.
func (s *SSFTransmitter) pollURL() string {
	if s.faults.DirectPoll {
		return s.psDirect
	}
	return s.ps.URL()
}

func (s *SSFTransmitter) closeTx() {
	if s.ownTx {
		s.tx.Close()
	}
}

// Close stops the servers and waits for deliveries in flight.
func (s *SSFTransmitter) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	s.wg.Wait()
	s.ps.Close()
	s.closeTx()
	return err
}

// Issuer is the iss of every SET and the metadata's issuer.
func (s *SSFTransmitter) Issuer() string { return s.issuer }

// Transmitter is the signer (its JWKSURL is the metadata's jwks_uri).
func (s *SSFTransmitter) Transmitter() *Transmitter { return s.tx }

// PollServer is the poll endpoint of poll streams.
func (s *SSFTransmitter) PollServer() *PollServer { return s.ps }

// ConfigurationEndpoint is the stream management URL.
func (s *SSFTransmitter) ConfigurationEndpoint() string { return s.base + "ssf/stream" }

// SetFaults replaces the fault knobs.
func (s *SSFTransmitter) SetFaults(f SSFFaults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Streams returns a copy of every stream.
func (s *SSFTransmitter) Streams() []SSFStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SSFStream, len(s.streams))
	for i, st := range s.streams {
		out[i] = *st
	}
	return out
}

// AddStream creates a stream directly (as another receiver or an
// operator would) and returns its id; delivery as in a create request.
func (s *SSFTransmitter) AddStream(d SSFDelivery, eventsRequested []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(d, eventsRequested, "").StreamID
}

// Calls lists every management request received, as "METHOD /path".
func (s *SSFTransmitter) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Delivered lists every delivery so far, in order.
func (s *SSFTransmitter) Delivered() []SSFDelivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.delivered)
}

// SetStatus sets every stream's status (enabled, paused, disabled) and
// reason, as the status endpoint reports it, without an event.
func (s *SSFTransmitter) SetStatus(status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams {
		st.Status, st.Reason = status, reason
	}
}

// SendStreamUpdated announces a status change on every stream with a
// stream-updated event, then applies it (re-enabling applies it first, so
// the event is delivered: SSF 1.0 §8.1.5 has it sent before a stream
// leaves enabled and when it is enabled again). Delivery is synchronous.
func (s *SSFTransmitter) SendStreamUpdated(ctx context.Context, status, reason string) error {
	payload := map[string]any{"status": status}
	if reason != "" {
		payload["reason"] = reason
	}
	if status == "enabled" {
		s.SetStatus(status, reason)
	}
	var errs []error
	for _, st := range s.Streams() {
		errs = append(errs, s.deliver(ctx, st, StreamUpdated, payload, nil))
	}
	if status != "enabled" {
		s.SetStatus(status, reason)
	}
	return errors.Join(errs...)
}

// Push signs one event about an email subject and delivers it to every
// enabled stream (synchronously).
func (s *SSFTransmitter) Push(ctx context.Context, eventType string, payload map[string]any, email string) error {
	var errs []error
	for _, st := range s.Streams() {
		errs = append(errs, s.deliver(ctx, st, eventType, payload, map[string]any{"format": "email", "email": email}))
	}
	return errors.Join(errs...)
}

// deliver signs one event for stream st and sends it by the stream's
// delivery method; nothing but stream-updated is sent unless the stream is
// enabled. subID nil means the stream itself (opaque stream_id).
func (s *SSFTransmitter) deliver(ctx context.Context, st SSFStream, eventType string, payload, subID map[string]any) error {
	if st.Status != "enabled" && eventType != StreamUpdated {
		return nil
	}
	if subID == nil {
		subID = map[string]any{"format": "opaque", "id": st.StreamID}
	}
	c := s.tx.Claims(eventType, payload, "")
	c["iss"], c["aud"], c["sub_id"] = s.issuer, st.Aud, subID
	token, err := s.tx.Sign(c)
	if err != nil {
		return err
	}
	rec := SSFDelivered{StreamID: st.StreamID, JTI: c["jti"].(string), EventType: eventType, Method: st.Delivery.Method}
	if st.Delivery.Method == MethodPoll {
		s.ps.Enqueue(rec.JTI, token)
	} else {
		err = s.push(ctx, st.Delivery, token, &rec)
	}
	s.mu.Lock()
	s.delivered = append(s.delivered, rec)
	s.mu.Unlock()
	return err
}

func (s *SSFTransmitter) push(ctx context.Context, d SSFDelivery, token string, rec *SSFDelivered) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.EndpointURL, strings.NewReader(token))
	if err != nil {
		rec.Err = err.Error()
		return err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if d.AuthorizationHeader != "" {
		req.Header.Set("Authorization", d.AuthorizationHeader)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		rec.Err = err.Error()
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	rec.Status, rec.Body = resp.StatusCode, string(body)
	return nil
}

// guard records the call and checks the management bearer token.
func (s *SSFTransmitter) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		if s.opts.Bearer != "" {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			got := sha256.Sum256([]byte(tok))
			if !ok || subtle.ConstantTimeCompare(got[:], s.bearer[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ssf"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"err": "authentication_failed"})
				return
			}
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// riscDiscovery serves the metadata at /.well-known/risc-configuration
// when RISCOnly is set (and 404 otherwise), as RISC-only transmitters do.
func (s *SSFTransmitter) riscDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	risc := s.faults.RISCOnly
	s.mu.Unlock()
	if !risc {
		http.NotFound(w, r)
		return
	}
	s.serveMetadata(w)
}

func (s *SSFTransmitter) discovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	risc := s.faults.RISCOnly
	s.mu.Unlock()
	if risc {
		http.NotFound(w, r)
		return
	}
	s.serveMetadata(w)
}

func (s *SSFTransmitter) serveMetadata(w http.ResponseWriter) {
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	switch {
	case f.DiscoveryStatus != 0 && f.DiscoveryStatus != http.StatusOK:
		writeJSON(w, f.DiscoveryStatus, map[string]string{"error": "injected"})
		return
	case f.DiscoveryBadJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer": `))
		return
	}
	meta := map[string]any{
		"spec_version":               "1_0",
		"issuer":                     s.issuer,
		"jwks_uri":                   s.JWKSURL(),
		"delivery_methods_supported": []string{MethodPush, MethodPoll},
		"configuration_endpoint":     s.base + "ssf/stream",
		"status_endpoint":            s.base + "ssf/status",
		"verification_endpoint":      s.base + "ssf/verify",
		"add_subject_endpoint":       s.base + "ssf/subjects/add",
		"remove_subject_endpoint":    s.base + "ssf/subjects/remove",
		"authorization_schemes":      []map[string]string{{"spec_urn": "urn:ietf:rfc:6749"}},
		"default_subjects":           "ALL",
	}
	if f.DiscoveryIssuer != "" {
		meta["issuer"] = f.DiscoveryIssuer
	}
	if f.NoJWKSURI {
		delete(meta, "jwks_uri")
	}
	if f.DirectJWKS {
		meta["jwks_uri"] = s.tx.JWKSURL()
	}
	if f.EndpointsAt != "" {
		meta["configuration_endpoint"] = f.EndpointsAt + "ssf/stream"
		meta["status_endpoint"] = f.EndpointsAt + "ssf/status"
		meta["verification_endpoint"] = f.EndpointsAt + "ssf/verify"
		meta["add_subject_endpoint"] = f.EndpointsAt + "ssf/subjects/add"
		meta["remove_subject_endpoint"] = f.EndpointsAt + "ssf/subjects/remove"
	}
	if f.InsecureEndpoint {
		meta["configuration_endpoint"] = "http://ssf.example.com/ssf/stream"
	}
	writeJSON(w, http.StatusOK, meta)
}

// streamRequest is the body of a create, update or replace request.
type streamRequest struct {
	StreamID        string       `json:"stream_id"`
	EventsRequested []string     `json:"events_requested"`
	Description     *string      `json:"description"`
	Delivery        *SSFDelivery `json:"delivery"`
}

// view is a stream as answered, with the faults that alter answers
// applied; s.mu is held.
func (s *SSFTransmitter) view(st *SSFStream) SSFStream {
	v := *st
	if s.faults.NoAud {
		v.Aud = ""
	}
	if s.faults.WrongIss != "" {
		v.Iss = s.faults.WrongIss
	}
	if s.faults.PollTokenOnCreateOnly && v.Delivery.Method == MethodPoll {
		v.Delivery.AuthorizationHeader = ""
	}
	return v
}

func (s *SSFTransmitter) stream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.ConfigStatus != 0 {
		writeJSON(w, s.faults.ConfigStatus, map[string]string{"error": "injected"})
		return
	}
	id := r.URL.Query().Get("stream_id")
	var req streamRequest
	if r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON"})
			return
		}
		if req.StreamID != "" && !s.faults.StreamIDQueryOnly {
			id = req.StreamID
		}
	}
	st := s.find(id)
	switch r.Method {
	case http.MethodGet:
		if id == "" {
			s.lists++
		}
		switch {
		case id != "" && st == nil:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		case id != "":
			writeJSON(w, http.StatusOK, s.view(st))
		case s.faults.ListRefused:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "stream_id is required"})
		case s.faults.ListAsObject && len(s.streams) > 0:
			writeJSON(w, http.StatusOK, s.view(s.streams[0]))
		default:
			list := make([]SSFStream, 0, len(s.streams))
			for _, x := range s.streams {
				list = append(list, s.view(x))
			}
			writeJSON(w, http.StatusOK, list)
		}
	case http.MethodPost:
		if s.faults.SingleStream && len(s.streams) > 0 {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "one stream per receiver"})
			return
		}
		d := SSFDelivery{Method: MethodPoll}
		if req.Delivery != nil {
			d = *req.Delivery
		}
		if d.Method == MethodPush && d.EndpointURL == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "push needs endpoint_url"})
			return
		}
		if d.Method != MethodPush && d.Method != MethodPoll {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown delivery method"})
			return
		}
		desc := ""
		if req.Description != nil {
			desc = *req.Description
		}
		st := s.create(d, req.EventsRequested, desc)
		v := s.view(st)
		v.Delivery.AuthorizationHeader = st.Delivery.AuthorizationHeader
		writeJSON(w, http.StatusCreated, v)
	case http.MethodPatch, http.MethodPut:
		if st == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		if r.Method == http.MethodPut { // replace: what the request leaves out is gone
			if req.Delivery == nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "replace needs delivery"})
				return
			}
			st.EventsRequested, st.EventsDelivered, st.Description = nil, []string{}, ""
		}
		if req.EventsRequested != nil {
			st.EventsRequested = req.EventsRequested
			st.EventsDelivered = s.deliverable(req.EventsRequested)
		}
		if req.Description != nil {
			st.Description = *req.Description
		}
		if req.Delivery != nil {
			prev := st.Delivery
			st.Delivery = *req.Delivery
			if st.Delivery.Method == MethodPoll {
				st.Delivery.EndpointURL, st.Delivery.AuthorizationHeader = s.pollURL(), ""
				if prev.Method == MethodPoll {
					st.Delivery.AuthorizationHeader = prev.AuthorizationHeader
				}
			}
		}
		s.replaced += btoi(r.Method == http.MethodPut)
		writeJSON(w, http.StatusOK, s.view(st))
	case http.MethodDelete:
		if st == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		s.streams = slices.DeleteFunc(s.streams, func(x *SSFStream) bool { return x == st })
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, PATCH, PUT, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// create adds a stream; s.mu is held.
func (s *SSFTransmitter) create(d SSFDelivery, requested []string, desc string) *SSFStream {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	if d.Method == MethodPoll {
		d.EndpointURL, d.AuthorizationHeader = s.pollURL(), ""
		if s.faults.PerStreamPollToken {
			tok := make([]byte, 16)
			_, _ = rand.Read(tok)
			d.AuthorizationHeader = "Bearer " + hex.EncodeToString(tok)
			s.ps.SetBearer(hex.EncodeToString(tok))
		}
	}
	st := &SSFStream{
		StreamID:        hex.EncodeToString(b),
		Iss:             s.issuer,
		Aud:             s.tx.Audience(),
		EventsSupported: s.opts.EventsSupported,
		EventsRequested: requested,
		EventsDelivered: s.deliverable(requested),
		Delivery:        d,
		Description:     desc,
		Status:          "enabled",
	}
	s.streams = append(s.streams, st)
	return st
}

func (s *SSFTransmitter) deliverable(requested []string) []string {
	out := []string{}
	for _, e := range requested {
		if slices.Contains(s.opts.EventsSupported, e) {
			out = append(out, e)
		}
	}
	return out
}

// find returns the stream with id; s.mu is held.
func (s *SSFTransmitter) find(id string) *SSFStream {
	for _, st := range s.streams {
		if st.StreamID == id {
			return st
		}
	}
	return nil
}

func (s *SSFTransmitter) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.find(r.URL.Query().Get("stream_id"))
	var body map[string]string
	if st != nil {
		body = map[string]string{"stream_id": st.StreamID, "status": st.Status}
		if st.Reason != "" {
			body["reason"] = st.Reason
		}
	}
	s.mu.Unlock()
	if st == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *SSFTransmitter) verify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON"})
		return
	}
	s.mu.Lock()
	f, closed := s.faults, s.closed
	st := s.find(req.StreamID)
	var cp SSFStream
	if st != nil {
		cp = *st
	}
	if st != nil && !closed && f.VerifyRetryAfter == 0 && !f.DropVerification {
		s.wg.Add(1) // under mu, so Close's Wait never races an Add
	}
	s.mu.Unlock()
	if f.VerifyRetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.VerifyRetryAfter.Seconds())))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many verification requests"})
		return
	}
	if st == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if closed || f.DropVerification {
		return
	}
	payload := map[string]any{}
	switch {
	case f.WrongState:
		payload["state"] = "not-" + req.State
	case req.State != "":
		payload["state"] = req.State
	}
	go func() { // after the 204, as a real transmitter would
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var subID map[string]any
		if f.VerifyOtherStream {
			subID = map[string]any{"format": "opaque", "id": "not-" + cp.StreamID}
		}
		_ = s.deliver(ctx, cp, Verification, payload, subID)
	}()
}

// updateStatus is the receiver's status change (SSF 1.0 §8.1.2.2): POST
// {"stream_id","status","reason"} to the status endpoint; the answer is
// the stream's status as it now is.
func (s *SSFTransmitter) updateStatus(w http.ResponseWriter, r *http.Request) {
	var req struct {
		StreamID string `json:"stream_id"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON"})
		return
	}
	if req.StreamID == "" {
		req.StreamID = r.URL.Query().Get("stream_id")
	}
	switch req.Status {
	case "enabled", "paused", "disabled":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status must be enabled, paused or disabled"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.find(req.StreamID)
	if st == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		return
	}
	st.Status, st.Reason = req.Status, req.Reason
	body := map[string]string{"stream_id": st.StreamID, "status": st.Status}
	if st.Reason != "" {
		body["reason"] = st.Reason
	}
	writeJSON(w, http.StatusOK, body)
}

// subject adds or removes a subject of a stream (SSF 1.0 §8.1.3): POST
// {"stream_id","subject"[,"verified"]}; 200 for add, 204 for remove.
func (s *SSFTransmitter) subject(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			StreamID string          `json:"stream_id"`
			Subject  json.RawMessage `json:"subject"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Subject) == 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want stream_id and subject"})
			return
		}
		var subj map[string]any
		if json.Unmarshal(req.Subject, &subj) != nil || subj["format"] == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "subject must be an object with a format"})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.find(req.StreamID) == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		if s.subjects == nil {
			s.subjects = map[string][]json.RawMessage{}
		}
		key := canonicalJSON(req.Subject)
		list := slices.DeleteFunc(s.subjects[req.StreamID], func(x json.RawMessage) bool { return string(x) == key })
		if add {
			s.subjects[req.StreamID] = append(list, json.RawMessage(key))
			w.WriteHeader(http.StatusOK)
			return
		}
		s.subjects[req.StreamID] = list
		w.WriteHeader(http.StatusNoContent)
	}
}

// canonicalJSON re-encodes a JSON value with sorted object keys.
func canonicalJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Subjects returns the subjects added to a stream (and not removed), each
// as canonical JSON (sorted keys).
func (s *SSFTransmitter) Subjects(streamID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, x := range s.subjects[streamID] {
		out = append(out, string(x))
	}
	return out
}

// Lists counts the stream list requests (GET without stream_id),
// refused ones included.
func (s *SSFTransmitter) Lists() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// Replaced counts the stream replace (PUT) requests applied.
func (s *SSFTransmitter) Replaced() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaced
}

// StreamStatus returns a stream's status and reason ("" when there is no
// such stream).
func (s *SSFTransmitter) StreamStatus(id string) (status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.find(id); st != nil {
		return st.Status, st.Reason
	}
	return "", ""
}
