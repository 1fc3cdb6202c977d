package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// Issuer is the push side of one configured issuer.
type Issuer struct {
	// Source names the issuer and carries its verifier and subject overrides.
	Source *intake.Source
	// Push is the bearer token the transmitter must present. An issuer
	// with no push credential does not take pushes (404).
	Push Credential
	// RateLimit, when positive, caps the issuer's authenticated pushes per
	// second (issuers file push.rate_limit); more get 429 with a
	// Retry-After computed from the limiter. Zero means no limit.
	RateLimit rate.Limit
	// Burst is how many pushes may come at once within RateLimit; at
	// least 1 when RateLimit is set.
	Burst int
}

// Config configures a Server.
type Config struct {
	// Intake verifies and publishes: the pipeline push shares with poll.
	// Required.
	Intake intake.Intake
	// Ready reports whether the backend (NATS, stream) is usable. Required.
	Ready func(context.Context) error
	// MaxBodyBytes caps a pushed SET; larger bodies get 413. Zero: 65536.
	MaxBodyBytes int64
	// MaxConcurrent caps the pushes of one issuer being verified and
	// published at once; a push whose body has been read while the issuer
	// is at the cap gets 429. A push still sending its body does not count.
	// Zero: 256.
	MaxConcurrent int
	// RetryAfterSeconds is sent with 503 answers. Zero: 5.
	RetryAfterSeconds int
	// Logger is required.
	Logger *slog.Logger
	// Metrics, if set, serves /metrics on the admin handler and times push
	// requests. Register it as an observer of Intake to count SETs.
	Metrics *Metrics
	// State, if set, serves /issuers on the admin handler.
	State StateFunc
}

// Server is the push receiver and admin handlers.
type Server struct {
	cfg      Config
	issuers  atomic.Pointer[map[string]*issuer]
	draining atomic.Bool

	// reqIDPrefix and reqIDs make the request ids of pushes that bring
	// none (see nextRequestID).
	reqIDPrefix string
	reqIDs      atomic.Uint64
	// bodies holds *[]byte buffers that push bodies are read into, reused
	// once Accept returned (verify copies what it keeps of a body).
	bodies sync.Pool
}

type issuer struct {
	Issuer
	slots   chan struct{}
	limiter *rate.Limiter // nil: no rate limit
}

// New returns a Server with no issuers; call SetIssuers.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 65536
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 256
	}
	if cfg.RetryAfterSeconds <= 0 {
		cfg.RetryAfterSeconds = 5
	}
	s := &Server{cfg: cfg, reqIDPrefix: requestIDPrefix()}
	s.SetIssuers(nil)
	return s
}

// SetIssuers replaces the set of issuers atomically. Requests in flight
// finish with the issuer they started with.
func (s *Server) SetIssuers(list []Issuer) {
	m := make(map[string]*issuer, len(list))
	for _, is := range list {
		li := &issuer{Issuer: is, slots: make(chan struct{}, s.cfg.MaxConcurrent)}
		if is.RateLimit > 0 {
			li.limiter = rate.NewLimiter(is.RateLimit, max(is.Burst, 1))
		}
		m[is.Source.Name] = li
	}
	s.issuers.Store(&m)
}

// Drain makes /readyz fail so load balancers stop sending traffic; the
// push handler keeps serving what still arrives.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) lookup(name string) *issuer {
	return (*s.issuers.Load())[name]
}

var setMediaTypes = map[string]bool{"application/secevent+jwt": true, "application/jwt": true}

// isSETMediaType reports whether a Content-Type names a SET (RFC 8935
// §2: application/secevent+jwt; application/jwt is tolerated). The bare
// type, the common case, is matched without parsing.
func isSETMediaType(ct string) bool {
	if setMediaTypes[ct] {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && setMediaTypes[mt]
}

// handlePush implements RFC 8935 for one issuer.
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	pr := s.newPushRequest(r)
	ctx := &pr.ctx
	w.Header()[requestIDHeader] = pr.idHeader[:]
	name := chi.URLParam(r, "name")
	is := s.lookup(name)
	if is == nil || !is.Push.set {
		closeConn(w)
		writeError(w, http.StatusNotFound, verify.CodeInvalidRequest, "No issuer takes pushes at this path.")
		return
	}
	if code, desc := s.authenticate(is, r.Header.Get("Authorization")); code != "" {
		closeConn(w)
		writeError(w, statusFor(code), code, desc)
		return
	}
	// The per-issuer rate limit applies to authenticated pushes only, so
	// nobody else can spend an issuer's budget.
	if wait, ok := is.allow(time.Now()); !ok {
		// Answered before the body is read: closing spares the server
		// reading a body it will not use (a slow upload would hold the
		// answer for up to SETGATE_READ_TIMEOUT).
		closeConn(w)
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeError(w, http.StatusTooManyRequests, "", "Too many SETs for this issuer; retry after the time given.")
		return
	}
	if !isSETMediaType(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, verify.CodeInvalidRequest, "Content-Type must be application/secevent+jwt.")
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, verify.CodeInvalidRequest, "The SET is larger than this receiver accepts.")
		return
	}
	buf := s.getBody()
	defer s.putBody(buf)
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength, *buf)
	*buf = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, verify.CodeInvalidRequest, "The SET is larger than this receiver accepts.")
			return
		}
		writeError(w, http.StatusBadRequest, verify.CodeInvalidRequest, "The request body could not be read.")
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, verify.CodeInvalidRequest, "The request body is empty; it must be the SET.")
		return
	}
	// The slot is taken only once the whole body is in hand, so a client
	// that sends its body slowly holds a connection, never a slot: the
	// slots bound the SETs being verified and published at once.
	select {
	case is.slots <- struct{}{}:
		defer func() { <-is.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "", "Too many SETs in flight for this issuer; retry shortly.")
		return
	}
	// body is only read until Accept returns: the verified SET holds
	// copies (a string of the token, decoded claims), never body itself,
	// so the buffer is reused afterwards.
	res, err := s.cfg.Intake.Accept(ctx, is.Source, body, intake.DeliveryPush)
	switch intake.Classify(res, err) {
	case intake.Accepted, intake.Duplicate:
		w.WriteHeader(http.StatusAccepted)
	case intake.Rejected:
		ve := intake.AsRejection(err)
		status := statusFor(ve.Code)
		if errors.Is(err, intake.ErrTooLarge) {
			// Too large to store: 413, as a body over the limit
			// (README "Push receiver").
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, ve.Code, ve.Description)
	case intake.Unavailable:
		msg := "push not persisted"
		if errors.Is(err, intake.ErrStreamFull) {
			msg = "push not persisted: stream full"
		}
		s.cfg.Logger.WarnContext(ctx, msg, "issuer", name, "err", err)
		writeUnavailable(w, s.cfg.RetryAfterSeconds, "The SET could not be stored right now; retry later.")
	default:
		if ctx.Err() != nil {
			// The transmitter went away; it will retry and deduplication
			// makes that safe.
			return
		}
		s.cfg.Logger.ErrorContext(ctx, "push failed", "issuer", name, "err", err)
		writeError(w, http.StatusInternalServerError, "", "Internal error; retry later.")
	}
}

// maxPooledBody is the largest body buffer kept for reuse.
const maxPooledBody = 64 << 10

// getBody returns a buffer to read a push body into.
func (s *Server) getBody() *[]byte {
	if b, ok := s.bodies.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// putBody releases a body buffer once nothing uses the body any more.
func (s *Server) putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody+1 {
		*b = (*b)[:0]
		s.bodies.Put(b)
	}
}

// readBody reads r to its end like io.ReadAll, into buf's storage when it
// is large enough, else starting with room for the declared length (at
// most the body cap, checked before) so that a SET sent with
// Content-Length is read into one allocation.
func readBody(r io.Reader, declared int64, buf []byte) ([]byte, error) {
	b := buf[:0]
	switch {
	case declared > 0 && int64(cap(b)) < declared+1: // +1: room to see EOF without growing
		b = make([]byte, 0, declared+1)
	case cap(b) == 0:
		b = make([]byte, 0, 512)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than declared: let it grow
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// allow takes one token of the issuer's rate limiter at now. When none
// is available it takes nothing and returns the whole seconds until one
// will be (at least 1), for Retry-After.
func (is *issuer) allow(now time.Time) (retryAfter int, ok bool) {
	if is.limiter == nil {
		return 0, true
	}
	r := is.limiter.ReserveN(now, 1)
	if !r.OK() {
		return 1, false
	}
	wait := r.DelayFrom(now)
	if wait <= 0 {
		return 0, true
	}
	r.CancelAt(now)
	return max(int(math.Ceil(wait.Seconds())), 1), false
}

// closeConn makes the server close the connection after this answer.
// Answers to clients that are not (or not yet) a known transmitter (401,
// 403, 404) end the connection, so that such a client cannot keep idle
// keep-alive connections, and their file descriptors, open (RFC 9112
// §9.6). Over HTTP/2 the server sends GOAWAY instead.
func closeConn(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

// authenticate checks the presented bearer token against the issuer's
// credential, then against the others to tell a wrong credential (401)
// from a valid credential for another issuer (403).
func (s *Server) authenticate(is *issuer, header string) (verify.Code, string) {
	token, ok := bearerToken(header)
	if !ok {
		return verify.CodeAuthenticationFailed, "A bearer credential is required."
	}
	presented := NewCredential(token).sum
	if is.Push.matches(presented) {
		return "", ""
	}
	for _, other := range *s.issuers.Load() {
		if other != is && other.Push.matches(presented) {
			return verify.CodeAccessDenied, "This credential is not allowed to send SETs for this issuer."
		}
	}
	return verify.CodeAuthenticationFailed, "The bearer credential is not valid."
}
