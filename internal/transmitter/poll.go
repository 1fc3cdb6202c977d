package transmitter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PollOptions configure a PollServer.
type PollOptions struct {
	// Bearer is the token receivers must present; empty accepts any
	// request without checking.
	Bearer string
	// Hold is how long a long poll waits for a SET when none is pending
	// (default 1s).
	Hold time.Duration
	// Addr is the listen address. Default "127.0.0.1:0".
	Addr string
}

// SetErr is one entry of a receiver's setErrs.
type SetErr struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// PollRequest is one poll request as the PollServer received it.
type PollRequest struct {
	// MaxEvents is nil when the member was absent.
	MaxEvents         *int
	ReturnImmediately bool
	Ack               []string
	SetErrs           map[string]SetErr
	// Header holds the request headers.
	Header http.Header
	// Status is what the server answered; -1 when the client gave up
	// during an injected Delay, 0 while the request is being answered.
	Status int
}

// Fault alters the answer to one poll request; faults are used up one per
// request, in the order they were injected. The zero Fault answers
// normally.
type Fault struct {
	// Delay holds the answer back this long before anything else is done;
	// a request given up by the client meanwhile is not processed at all.
	Delay time.Duration
	// Status, if not zero and not 200, is answered with a JSON error body
	// instead of SETs (acks and setErrs in the request are not processed).
	Status int
	// BadJSON answers 200 with a body that is not JSON (acks and setErrs
	// are processed).
	BadJSON bool
	// Pad adds this many bytes of whitespace to a normal answer, to exceed
	// a receiver's size limit.
	Pad int
	// Duplicate redelivers every SET already acknowledged, next to the
	// pending ones.
	Duplicate bool
	// EmptyMore answers at once {"sets":{},"moreAvailable":true} whatever
	// is pending (acks and setErrs are processed): a transmitter that
	// claims more but returns none.
	EmptyMore bool
}

// queued is one SET waiting in the PollServer's queue.
type queued struct {
	key   string // map key in "sets"; normally the jti
	jti   string
	token string
}

// PollServer is the poll side of a transmitter (RFC 8936): it serves one
// poll endpoint on its own loopback listener with a queue of SETs, hands
// out unacknowledged SETs (again and again until they are acknowledged or
// reported in setErrs), and records every ack and setErr it receives.
type PollServer struct {
	opts PollOptions
	ln   net.Listener
	srv  *http.Server
	url  string

	mu       sync.Mutex
	bearer   [32]byte
	pending  []queued
	acked    map[string]int
	done     map[string]queued // acknowledged SETs, by jti, for Duplicate
	errs     map[string]SetErr
	faults   []Fault
	requests []PollRequest
	arrived  chan struct{} // closed and replaced when a SET is enqueued

	emptyMore atomic.Bool // SetEmptyMore
}

// NewPollServer starts a poll endpoint at [PollServer.URL].
func NewPollServer(opts PollOptions) (*PollServer, error) {
	if opts.Hold <= 0 {
		opts.Hold = time.Second
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("transmitter: poll: %w", err)
	}
	p := &PollServer{
		opts:    opts,
		ln:      ln,
		url:     "http://" + ln.Addr().String() + "/poll",
		acked:   map[string]int{},
		done:    map[string]queued{},
		errs:    map[string]SetErr{},
		arrived: make(chan struct{}),
	}
	p.SetBearer(opts.Bearer)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /poll", p.handle)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the poll endpoint.
func (p *PollServer) URL() string { return p.url }

// Close stops the server, ending requests in flight.
func (p *PollServer) Close() error { return p.srv.Close() }

// SetBearer replaces the token receivers must present (empty: none).
func (p *PollServer) SetBearer(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opts.Bearer = token
	p.bearer = sha256.Sum256([]byte(token))
}

// Enqueue adds a SET to the queue under its jti.
func (p *PollServer) Enqueue(jti, token string) { p.EnqueueAs(jti, jti, token) }

// EnqueueAs adds a SET to the queue under map key key; a key other than
// jti is the "wrong map key" fault. Acks and setErrs are matched by key.
func (p *PollServer) EnqueueAs(key, jti, token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, queued{key: key, jti: jti, token: token})
	close(p.arrived)
	p.arrived = make(chan struct{})
}

// Inject queues faults for the next requests, one per request.
func (p *PollServer) Inject(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, faults...)
}

// SetEmptyMore switches the EmptyMore fault on for every request until it
// is switched off.
func (p *PollServer) SetEmptyMore(on bool) { p.emptyMore.Store(on) }

// Pending is the number of SETs neither acknowledged nor reported.
func (p *PollServer) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// Acked returns how many times each key was acknowledged.
func (p *PollServer) Acked() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.acked))
	for k, n := range p.acked {
		out[k] = n
	}
	return out
}

// AckedCount is the number of distinct keys acknowledged so far (cheaper
// than len(Acked()) for a busy wait).
func (p *PollServer) AckedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// Errors returns the last setErr received for each key.
func (p *PollServer) Errors() map[string]SetErr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]SetErr, len(p.errs))
	for k, e := range p.errs {
		out[k] = e
	}
	return out
}

// Requests returns every request received so far, in order of arrival;
// one still being answered is the zero PollRequest (Status 0).
func (p *PollServer) Requests() []PollRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PollRequest(nil), p.requests...)
}

// pollBody is the request body of RFC 8936 §2.4.
type pollBody struct {
	MaxEvents         *int              `json:"maxEvents"`
	ReturnImmediately bool              `json:"returnImmediately"`
	Ack               []string          `json:"ack"`
	SetErrs           map[string]SetErr `json:"setErrs"`
}

func (p *PollServer) handle(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var fault Fault
	if len(p.faults) > 0 {
		fault, p.faults = p.faults[0], p.faults[1:]
	}
	idx := len(p.requests)
	p.requests = append(p.requests, PollRequest{})
	p.mu.Unlock()

	rec := PollRequest{Header: r.Header.Clone()}
	status, out := p.answer(r, &rec, fault)
	rec.Status = status
	p.mu.Lock()
	p.requests[idx] = rec // before answering, so a client sees its request recorded
	p.mu.Unlock()
	if status < 0 {
		return
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="transmitter"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// answer works out the status and body for one request, recording what
// it asked for in rec.
func (p *PollServer) answer(r *http.Request, rec *PollRequest, fault Fault) (int, []byte) {
	p.mu.Lock()
	bearer, want := p.opts.Bearer, p.bearer
	p.mu.Unlock()
	if bearer != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return http.StatusUnauthorized, []byte(`{"err":"authentication_failed"}`)
		}
	}
	var body pollBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		return http.StatusBadRequest, []byte(`{"err":"invalid_request","description":"bad poll request"}`)
	}
	rec.MaxEvents, rec.ReturnImmediately, rec.Ack, rec.SetErrs = body.MaxEvents, body.ReturnImmediately, body.Ack, body.SetErrs

	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return -1, nil // the client gave up; nothing processed
		}
	}
	if fault.Status != 0 && fault.Status != http.StatusOK {
		return fault.Status, []byte(`{"err":"internal","description":"injected fault"}`)
	}

	p.settle(body.Ack, body.SetErrs)
	if fault.EmptyMore || p.emptyMore.Load() {
		return http.StatusOK, []byte(`{"sets":{},"moreAvailable":true}`)
	}
	sets, more := p.take(r.Context(), body, fault.Duplicate)
	if fault.BadJSON {
		return http.StatusOK, []byte(`{"sets": {"x": `)
	}
	out, _ := json.Marshal(map[string]any{"sets": sets, "moreAvailable": more})
	if fault.Pad > 0 {
		out = append(out[:len(out)-1], append(bytes.Repeat([]byte(" "), fault.Pad), '}')...)
	}
	return http.StatusOK, out
}

// settle removes acknowledged and reported SETs from the queue.
func (p *PollServer) settle(ack []string, setErrs map[string]SetErr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gone := make(map[string]bool, len(ack)+len(setErrs))
	for _, k := range ack {
		p.acked[k]++
		gone[k] = true
	}
	for k, e := range setErrs {
		p.errs[k] = e
		gone[k] = true
	}
	if len(gone) == 0 {
		return
	}
	kept := p.pending[:0]
	for _, q := range p.pending {
		if !gone[q.key] {
			kept = append(kept, q)
			continue
		}
		if _, ok := setErrs[q.key]; !ok {
			p.done[q.key] = q
		}
	}
	p.pending = kept
}

// take returns up to maxEvents pending SETs, waiting up to Hold for one
// when none is pending and the request is a long poll.
func (p *PollServer) take(ctx context.Context, body pollBody, duplicate bool) (map[string]string, bool) {
	limit := -1
	if body.MaxEvents != nil {
		limit = max(*body.MaxEvents, 0)
	}
	var timer <-chan time.Time
	for {
		p.mu.Lock()
		if len(p.pending) > 0 && limit != 0 || body.ReturnImmediately {
			break // with the lock held
		}
		arrived := p.arrived
		p.mu.Unlock()
		if timer == nil {
			timer = time.After(p.opts.Hold)
		}
		select {
		case <-arrived:
			continue
		case <-timer:
		case <-ctx.Done():
		}
		p.mu.Lock()
		break
	}
	defer p.mu.Unlock()
	sets := map[string]string{}
	if duplicate {
		for k, q := range p.done {
			sets[k] = q.token
		}
	}
	n := 0
	for _, q := range p.pending {
		if limit >= 0 && n >= limit {
			break
		}
		sets[q.key] = q.token
		n++
	}
	return sets, n < len(p.pending)
}
