package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/poller"
)

// Stream statuses (SSF 1.0 §8.1.2): enabled, the transmitter sends events;
// paused, it sends none and should hold them for later; disabled, it sends
// none and holds none.
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// Audience is a stream's aud: a string or an array of strings on the wire.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// Delivery is a stream's delivery object.
type Delivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is what a push transmitter sends as the
	// Authorization header value. It is a secret: LogValue hides it.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// LogValue shows the method and endpoint, never the authorization header.
func (d Delivery) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", d.Method), slog.String("endpoint_url", d.EndpointURL),
		slog.Bool("authorization_header", d.AuthorizationHeader != ""))
}

// StreamConfig is an SSF stream configuration (SSF 1.0 §8.1.1). Requests
// carry only the receiver-supplied members (stream_id, events_requested,
// description, delivery); answers carry the transmitter's too.
type StreamConfig struct {
	StreamID                string   `json:"stream_id,omitempty"`
	Iss                     string   `json:"iss,omitempty"`
	Aud                     Audience `json:"aud,omitempty"`
	EventsSupported         []string `json:"events_supported,omitempty"`
	EventsRequested         []string `json:"events_requested,omitempty"`
	EventsDelivered         []string `json:"events_delivered,omitempty"`
	Delivery                Delivery `json:"delivery,omitzero"`
	MinVerificationInterval int      `json:"min_verification_interval,omitempty"`
	Description             string   `json:"description,omitempty"`
	InactivityTimeout       int      `json:"inactivity_timeout,omitempty"`
}

// receiverFields keeps what a receiver may send in a create or update.
func (c StreamConfig) receiverFields() StreamConfig {
	return StreamConfig{StreamID: c.StreamID, EventsRequested: c.EventsRequested, Description: c.Description, Delivery: c.Delivery}
}

// StreamStatus is the status endpoint's answer.
type StreamStatus struct {
	StreamID string `json:"stream_id,omitempty"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// HTTPError is an answer from the transmitter with an unexpected status.
type HTTPError struct {
	// Op names the call ("create stream", "discovery", …).
	Op     string
	Method string
	URL    string
	Status int
	// Body is the start of the answer (at most 256 bytes, control
	// characters replaced), for the operator.
	Body string
	// RetryAfter is the Retry-After of a 429 or 503 in seconds form (0
	// when absent or not a number of seconds).
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("ssf: %s: %s %s: %d %s", e.Op, e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// StatusCode returns the HTTP status of an [*HTTPError] in err's chain, or 0.
func StatusCode(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

const maxErrorBody = 256

func newHTTPError(op, method, where string, status int, h http.Header, body []byte) *HTTPError {
	e := &HTTPError{Op: op, Method: method, URL: where, Status: status}
	if s := strings.TrimSpace(string(body)); s != "" {
		if len(s) > maxErrorBody {
			s = s[:maxErrorBody] + "…"
		}
		e.Body = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && n > 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

var errTooLarge = errors.New("answer too large")

// roundTrip sends req and reads at most MaxBodyBytes of the answer.
func roundTrip(client *http.Client, req *http.Request) (int, http.Header, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if errors.Is(err, outbound.ErrTooLarge) { // the client's own cap was lower
		return 0, nil, nil, errTooLarge
	}
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return 0, nil, nil, errTooLarge
	}
	return resp.StatusCode, resp.Header, body, nil
}

// Client calls one transmitter's SSF management API as a receiver.
type Client struct {
	meta *Metadata
	auth poller.Auth
	hc   *http.Client
	log  *slog.Logger
}

// New returns a client for the endpoints in meta, authorizing every
// request with auth (nil: no Authorization header). httpClient nil uses
// the outbound policy (no redirects, 30s per call, answers up to
// MaxBodyBytes); logger nil discards. meta should come from [Discover],
// which checked the endpoints' origins.
func New(meta *Metadata, auth poller.Auth, httpClient *http.Client, logger *slog.Logger) *Client {
	if httpClient == nil {
		httpClient = defaultHTTPClient()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{meta: meta, auth: auth, hc: httpClient, log: logger}
}

// Metadata returns the transmitter metadata the client uses.
func (c *Client) Metadata() *Metadata { return c.meta }

// GetStreams lists the receiver's streams (GET without stream_id). An
// answer that is a single object instead of an array is taken as a list
// of one. A listed stream whose iss is not the metadata's issuer is left
// out (and logged): it is never used, however it is found.
func (c *Client) GetStreams(ctx context.Context) ([]StreamConfig, error) {
	const op = "list streams"
	body, err := c.call(ctx, op, http.MethodGet, c.meta.ConfigurationEndpoint, "configuration_endpoint", nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list []StreamConfig
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		err = json.Unmarshal(trimmed, &list)
	case len(trimmed) > 0 && trimmed[0] == '{':
		var one StreamConfig
		err = json.Unmarshal(trimmed, &one)
		list = []StreamConfig{one}
	default:
		err = errors.New("not a JSON array or object")
	}
	if err != nil {
		return nil, fmt.Errorf("ssf: %s: %w: %v", op, ErrBadAnswer, err)
	}
	kept := list[:0]
	for _, s := range list {
		if err := c.checkStream(op, s, ""); err != nil {
			if errors.Is(err, ErrIssuerMismatch) {
				c.log.WarnContext(ctx, "ssf stream of another issuer left out", "stream_id", s.StreamID, "iss", s.Iss, "issuer", c.meta.Issuer)
				continue
			}
			return nil, err
		}
		kept = append(kept, s)
	}
	return kept, nil
}

// GetStream reads one stream (GET ?stream_id=). A 404 is an [*HTTPError].
func (c *Client) GetStream(ctx context.Context, id string) (StreamConfig, error) {
	const op = "read stream"
	body, err := c.call(ctx, op, http.MethodGet, c.meta.ConfigurationEndpoint, "configuration_endpoint", url.Values{"stream_id": {id}}, nil, http.StatusOK)
	if err != nil {
		return StreamConfig{}, err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' { // some transmitters answer with a list
		var list []StreamConfig
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return StreamConfig{}, fmt.Errorf("ssf: %s: %w: %v", op, ErrBadAnswer, err)
		}
		for _, s := range list {
			if s.StreamID == id {
				return s, c.checkStream(op, s, id)
			}
		}
		return StreamConfig{}, fmt.Errorf("ssf: %s: %w: stream %q is not in the answer", op, ErrBadAnswer, id)
	}
	return c.decodeStream(op, trimmed, id)
}

// CreateStream creates a stream from req's receiver-supplied members
// (POST; 201, or 200).
func (c *Client) CreateStream(ctx context.Context, req StreamConfig) (StreamConfig, error) {
	const op = "create stream"
	r := req.receiverFields()
	r.StreamID = ""
	body, err := c.call(ctx, op, http.MethodPost, c.meta.ConfigurationEndpoint, "configuration_endpoint", nil, r, http.StatusCreated, http.StatusOK)
	if err != nil {
		return StreamConfig{}, err
	}
	return c.decodeStream(op, body, "")
}

// UpdateStream sends cfg's receiver-supplied members as a partial update
// (PATCH; stream_id required, sent in the body and, for transmitters that
// read it there, as a query parameter). Members left empty are not sent,
// so they keep their value. A 202 (update pending) without a body returns
// a zero StreamConfig and no error: read the stream again to see it.
func (c *Client) UpdateStream(ctx context.Context, cfg StreamConfig) (StreamConfig, error) {
	return c.change(ctx, "update stream", http.MethodPatch, cfg)
}

// ReplaceStream replaces the stream's receiver-supplied members with
// cfg's (PUT, SSF 1.0 §8.1.1.4): members left empty are gone afterwards.
// stream_id is sent in the body and as a query parameter; a 202 without
// a body is handled as by UpdateStream.
func (c *Client) ReplaceStream(ctx context.Context, cfg StreamConfig) (StreamConfig, error) {
	return c.change(ctx, "replace stream", http.MethodPut, cfg)
}

func (c *Client) change(ctx context.Context, op, method string, cfg StreamConfig) (StreamConfig, error) {
	if cfg.StreamID == "" {
		return StreamConfig{}, fmt.Errorf("ssf: %s: stream_id is required", op)
	}
	body, err := c.call(ctx, op, method, c.meta.ConfigurationEndpoint, "configuration_endpoint",
		url.Values{"stream_id": {cfg.StreamID}}, cfg.receiverFields(), http.StatusOK, http.StatusAccepted)
	if err != nil {
		return StreamConfig{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return StreamConfig{}, nil
	}
	return c.decodeStream(op, body, cfg.StreamID)
}

// DeleteStream deletes a stream (DELETE ?stream_id=; 204, or 200).
// setgate calls it only when an operator asks.
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	_, err := c.call(ctx, "delete stream", http.MethodDelete, c.meta.ConfigurationEndpoint, "configuration_endpoint", url.Values{"stream_id": {id}}, nil, http.StatusNoContent, http.StatusOK)
	return err
}

// Status reads a stream's status (GET status_endpoint?stream_id=).
func (c *Client) Status(ctx context.Context, id string) (StreamStatus, error) {
	const op = "read stream status"
	body, err := c.call(ctx, op, http.MethodGet, c.meta.StatusEndpoint, "status_endpoint", url.Values{"stream_id": {id}}, nil, http.StatusOK)
	if err != nil {
		return StreamStatus{}, err
	}
	var st StreamStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return StreamStatus{}, fmt.Errorf("ssf: %s: %w: %v", op, ErrBadAnswer, err)
	}
	if st.StreamID != "" && st.StreamID != id {
		return StreamStatus{}, fmt.Errorf("ssf: %s: %w: asked for stream %q, got %q", op, ErrBadAnswer, id, st.StreamID)
	}
	switch st.Status {
	case StatusEnabled, StatusPaused, StatusDisabled:
	default:
		return StreamStatus{}, fmt.Errorf("ssf: %s: %w: status %q is not enabled, paused or disabled", op, ErrBadAnswer, st.Status)
	}
	return st, nil
}

// RequestVerification asks the transmitter to send a verification event
// carrying state (POST {"stream_id","state"}; 204, or 200). state ""
// leaves it out: the event then comes without one. A 429 is an
// [*HTTPError] with RetryAfter set when the transmitter said.
func (c *Client) RequestVerification(ctx context.Context, id, state string) error {
	body := struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state,omitempty"`
	}{id, state}
	_, err := c.call(ctx, "request verification", http.MethodPost, c.meta.VerificationEndpoint, "verification_endpoint", nil, body, http.StatusNoContent, http.StatusOK)
	return err
}

// UpdateStatus asks the transmitter to change a stream's status (SSF 1.0
// §8.1.2.2: POST status_endpoint {"stream_id","status","reason"}; 200 with
// the status, or 202/204). reason "" is left out. The answer's status is
// returned; after a 202 or 204 without a body it is what was asked for.
func (c *Client) UpdateStatus(ctx context.Context, id, status, reason string) (StreamStatus, error) {
	const op = "update stream status"
	switch status {
	case StatusEnabled, StatusPaused, StatusDisabled:
	default:
		return StreamStatus{}, fmt.Errorf("ssf: %s: status %q is not enabled, paused or disabled", op, status)
	}
	req := StreamStatus{StreamID: id, Status: status, Reason: reason}
	body, err := c.call(ctx, op, http.MethodPost, c.meta.StatusEndpoint, "status_endpoint", url.Values{"stream_id": {id}}, req,
		http.StatusOK, http.StatusAccepted, http.StatusNoContent)
	if err != nil {
		return StreamStatus{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	var st StreamStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return StreamStatus{}, fmt.Errorf("ssf: %s: %w: %v", op, ErrBadAnswer, err)
	}
	if st.StreamID != "" && st.StreamID != id {
		return StreamStatus{}, fmt.Errorf("ssf: %s: %w: asked for stream %q, got %q", op, ErrBadAnswer, id, st.StreamID)
	}
	return st, nil
}

// AddSubject adds a subject (an RFC 9493 subject identifier object) to a
// stream (SSF 1.0 §8.1.3.2: POST add_subject_endpoint
// {"stream_id","subject"[,"verified"]}; 200 or 204). verified nil leaves
// the member out.
func (c *Client) AddSubject(ctx context.Context, id string, subject json.RawMessage, verified *bool) error {
	body := struct {
		StreamID string          `json:"stream_id"`
		Subject  json.RawMessage `json:"subject"`
		Verified *bool           `json:"verified,omitempty"`
	}{id, subject, verified}
	_, err := c.call(ctx, "add subject", http.MethodPost, c.meta.AddSubjectEndpoint, "add_subject_endpoint", nil, body, http.StatusOK, http.StatusNoContent, http.StatusAccepted)
	return err
}

// RemoveSubject removes a subject from a stream (SSF 1.0 §8.1.3.3: POST
// remove_subject_endpoint {"stream_id","subject"}; 204 or 200).
func (c *Client) RemoveSubject(ctx context.Context, id string, subject json.RawMessage) error {
	body := struct {
		StreamID string          `json:"stream_id"`
		Subject  json.RawMessage `json:"subject"`
	}{id, subject}
	_, err := c.call(ctx, "remove subject", http.MethodPost, c.meta.RemoveSubjectEndpoint, "remove_subject_endpoint", nil, body, http.StatusNoContent, http.StatusOK, http.StatusAccepted)
	return err
}

// decodeStream parses one stream configuration and checks it.
func (c *Client) decodeStream(op string, body []byte, wantID string) (StreamConfig, error) {
	var s StreamConfig
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return StreamConfig{}, fmt.Errorf("ssf: %s: %w: not a JSON object", op, ErrBadAnswer)
	}
	if err := json.Unmarshal(trimmed, &s); err != nil {
		return StreamConfig{}, fmt.Errorf("ssf: %s: %w: %v", op, ErrBadAnswer, err)
	}
	return s, c.checkStream(op, s, wantID)
}

// checkStream applies the checks setgate makes strictly after every
// create, read and update (README "Adding an SSF transmitter"): the
// stream has a stream_id, is the one asked for, and its iss is the
// metadata's issuer (SSF 1.0 §8.1.1: a stream of another issuer is never
// used). A missing aud is tolerated: see [StreamConfig.Warnings].
func (c *Client) checkStream(op string, s StreamConfig, wantID string) error {
	switch {
	case s.StreamID == "":
		return fmt.Errorf("ssf: %s: %w: stream has no stream_id", op, ErrBadAnswer)
	case wantID != "" && s.StreamID != wantID:
		return fmt.Errorf("ssf: %s: %w: asked for stream %q, got %q", op, ErrBadAnswer, wantID, s.StreamID)
	case s.Iss != c.meta.Issuer:
		return fmt.Errorf("ssf: %s: stream %q: %w: iss is %q, metadata issuer is %q", op, s.StreamID, ErrIssuerMismatch, s.Iss, c.meta.Issuer)
	}
	return nil
}

// Warnings lists what is wrong with a stream configuration that setgate
// tolerates because nothing depends on it (shown on /issuers).
func (s StreamConfig) Warnings() []string {
	var w []string
	if len(s.Aud) == 0 || s.Aud[0] == "" {
		w = append(w, "the transmitter's stream configuration has no aud (SSF 1.0 §8.1.1 requires it); setgate checks each SET's aud against the configured audience instead")
	}
	return w
}

// invalidator is an Auth whose credential can go stale (OAuth 2.0): it is
// dropped after a 401 so the next call fetches a new one.
type invalidator interface{ Invalidate() }

// call sends one management request and returns the answer's body when
// its status is one of want.
func (c *Client) call(ctx context.Context, op, method, endpoint, endpointName string, q url.Values, body any, want ...int) ([]byte, error) {
	if endpoint == "" {
		return nil, fmt.Errorf("ssf: %s: %w: the metadata has no %s", op, ErrNotSupported, endpointName)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("ssf: %s: %s %q: %w", op, endpointName, endpoint, err)
	}
	if len(q) > 0 {
		qq := u.Query()
		for k, v := range q {
			qq[k] = v
		}
		u.RawQuery = qq.Encode()
	}
	var data []byte
	if body != nil {
		if data, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("ssf: %s: encode: %w", op, err)
		}
	}
	// An OAuth 2.0 access token can expire between two calls: a 401 drops
	// it and the call is sent once more with a fresh one, so an expired
	// token never surfaces as a failed call.
	inv, canRefresh := c.auth.(invalidator)
	for attempt := 0; ; attempt++ {
		status, header, answer, err := c.send(ctx, method, u, data)
		if err != nil {
			return nil, fmt.Errorf("ssf: %s: %s %s: %w", op, method, u.Redacted(), err)
		}
		for _, w := range want {
			if status == w {
				c.log.DebugContext(ctx, "ssf call", "op", op, "status", status)
				return answer, nil
			}
		}
		if status == http.StatusUnauthorized && canRefresh {
			inv.Invalidate()
			if attempt == 0 {
				c.log.DebugContext(ctx, "ssf call answered 401; retrying with a new access token", "op", op)
				continue
			}
		}
		return nil, newHTTPError(op, method, u.Redacted(), status, header, answer)
	}
}

// send makes one request with a fresh Authorization header.
func (c *Client) send(ctx context.Context, method string, u *url.URL, data []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != nil {
		if err := c.auth.Authorize(ctx, req); err != nil {
			return 0, nil, nil, err
		}
	}
	return roundTrip(c.hc, req)
}
