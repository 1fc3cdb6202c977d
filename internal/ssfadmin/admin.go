package ssfadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/issuers"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// calls is an http.RoundTripper that remembers the method of each
// request, so Ensure can tell whether Ensure created (POST) or updated
// (PATCH) the stream.
type calls struct {
	next http.RoundTripper

	mu      sync.Mutex
	methods []string
}

func (c *calls) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.methods = append(c.methods, r.Method)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// since returns the methods of the requests after the first n.
func (c *calls) since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.methods[min(n, len(c.methods)):])
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.methods)
}

// Admin runs stream and subject actions against one issuer's transmitter
// with the stream block's credential, and prints each outcome to Out: as
// text, or as one JSON object with Options.JSON. It never prints the
// stream's authorization_header or the credential.
type Admin struct {
	// cfgErr is why cfg cannot create a stream (push without
	// SETGATE_PUBLIC_URL); the client works regardless.
	cfgErr error
	spec   config.Issuer
	meta   *ssf.Metadata
	cfg    ssf.ManagerConfig
	client *ssf.Client
	calls  *calls
	// pushTo is this setgate's push endpoint for the issuer
	// (SETGATE_PUBLIC_URL/events/<name>), "" without SETGATE_PUBLIC_URL.
	pushTo string
	out    io.Writer
	json   bool
}

// ManagerConfigFunc builds the stream Manager configuration serve builds
// for spec, with its client on hc; it returns the configuration and an
// error when the stream cannot be created (push without publicURL), with
// the client set either way.
type ManagerConfigFunc func(spec config.Issuer, meta *ssf.Metadata, publicURL string, hc *http.Client, log *slog.Logger) (ssf.ManagerConfig, error)

// Options configure [Open].
type Options struct {
	// Issuer is the issuer whose stream block is used; see [PickIssuer].
	Issuer config.Issuer
	// PublicURL is SETGATE_PUBLIC_URL: the base of this setgate's push
	// endpoints ("" when unset).
	PublicURL string
	// ManagerConfig builds the configuration serve would use; nil is
	// issuers.StreamManagerConfig, serve's own.
	ManagerConfig ManagerConfigFunc
	// StreamID names the stream the actions are about; "" uses
	// stream.stream_id, else the only (or own) stream listed.
	StreamID string
	// Logger receives the client's logs.
	Logger *slog.Logger
	// Out receives what the actions print.
	Out io.Writer
	// JSON prints one JSON object per action instead of text.
	JSON bool
}

// Open discovers the issuer's transmitter (SSF 1.0 §7.1) and builds the
// stream management client as serve does: under the outbound policy, with
// endpoints on the issuer's origin or stream.allowed_origins only, and the
// stream block's credential.
func Open(ctx context.Context, o Options) (*Admin, error) {
	spec := o.Issuer
	rec := &calls{next: http.DefaultTransport.(*http.Transport).Clone()}
	hc := outbound.Policy{Timeout: ssf.DefaultCallTimeout, MaxBytes: ssf.MaxBodyBytes, Transport: rec}.Client()
	meta, err := ssf.Discover(ctx, hc, spec.Verify.Issuer, spec.DiscoverOptions())
	if err != nil {
		return nil, fmt.Errorf("issuer %q: discovery: %w", spec.Name, err)
	}
	build := o.ManagerConfig
	if build == nil {
		build = issuers.StreamManagerConfig
	}
	cfg, cfgErr := build(spec, meta, o.PublicURL, hc, o.Logger)
	if cfg.Client == nil { // the credential could not be built
		return nil, fmt.Errorf("issuer %q: %w", spec.Name, cfgErr)
	}
	if o.StreamID != "" {
		cfg.StreamID = o.StreamID
	}
	a := &Admin{spec: spec, meta: meta, cfg: cfg, cfgErr: cfgErr, client: cfg.Client, calls: rec, out: o.Out, json: o.JSON}
	if o.PublicURL != "" { // whatever the configured delivery: --all-mine also finds a push stream left from before
		a.pushTo = issuers.StreamPushEndpoint(o.PublicURL, spec.Name)
	}
	return a, nil
}

// Issuer returns the issuer whose stream is managed.
func (c *Admin) Issuer() config.Issuer { return c.spec }

// PickIssuer returns the issuer called name, which must have a stream
// block, or when name is empty the only issuer with one.
func PickIssuer(specs []config.Issuer, name string) (config.Issuer, error) {
	var withStream []string
	for _, sp := range specs {
		if sp.Stream != nil {
			withStream = append(withStream, sp.Name)
		}
	}
	if name == "" {
		switch len(withStream) {
		case 0:
			return config.Issuer{}, errors.New("no issuer in the file has a stream block (stream: with discovery: true)")
		case 1:
			name = withStream[0]
		default:
			return config.Issuer{}, fmt.Errorf("--issuer is required; issuers with a stream block: %s", strings.Join(withStream, ", "))
		}
	}
	for _, sp := range specs {
		if sp.Name != name {
			continue
		}
		if sp.Stream == nil {
			return config.Issuer{}, fmt.Errorf("issuer %q has no stream block: setgate has no SSF credential for it (add stream: with discovery: true)", name)
		}
		return sp, nil
	}
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.Name
	}
	return config.Issuer{}, fmt.Errorf("no issuer %q in the file (it has %s)", name, strings.Join(names, ", "))
}

// StreamView is one stream as the actions print it: never its
// authorization_header, only whether the transmitter returned one.
type StreamView struct {
	StreamID                string   `json:"stream_id"`
	Delivery                string   `json:"delivery"` // push, poll, or the method URN when neither
	Method                  string   `json:"method,omitempty"`
	EndpointURL             string   `json:"endpoint_url,omitempty"`
	AuthorizationHeader     bool     `json:"authorization_header"`
	Aud                     []string `json:"aud,omitempty"`
	EventsRequested         []string `json:"events_requested"`
	EventsDelivered         []string `json:"events_delivered"`
	EventsMissing           []string `json:"events_missing,omitempty"` // requested, not delivered
	Description             string   `json:"description,omitempty"`
	MinVerificationInterval int      `json:"min_verification_interval,omitempty"`
	Status                  string   `json:"status,omitempty"`
	Reason                  string   `json:"reason,omitempty"`
	StatusError             string   `json:"status_error,omitempty"`
}

// NewStreamView is the view of s: its delivery named push or poll, the
// requested events not delivered listed apart, and a password in the
// endpoint URL redacted.
func NewStreamView(s ssf.StreamConfig) StreamView {
	v := StreamView{
		StreamID:                s.StreamID,
		Method:                  s.Delivery.Method,
		EndpointURL:             redactURL(s.Delivery.EndpointURL),
		AuthorizationHeader:     s.Delivery.AuthorizationHeader != "",
		Aud:                     s.Aud,
		EventsRequested:         nonNil(s.EventsRequested),
		EventsDelivered:         nonNil(s.EventsDelivered),
		Description:             s.Description,
		MinVerificationInterval: s.MinVerificationInterval,
	}
	switch s.Delivery.Method {
	case ssf.MethodPush:
		v.Delivery = ssf.DeliveryPush
	case ssf.MethodPoll, "":
		v.Delivery = ssf.DeliveryPoll
	default:
		v.Delivery = s.Delivery.Method
	}
	for _, e := range s.EventsRequested {
		if !slices.Contains(s.EventsDelivered, e) {
			v.EventsMissing = append(v.EventsMissing, e)
		}
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// redactURL hides a password in a URL's user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// withStatus reads the stream's status into v; a failure is shown, not
// fatal.
func (c *Admin) withStatus(ctx context.Context, v *StreamView) {
	if c.meta.StatusEndpoint == "" {
		v.StatusError = "the transmitter has no status_endpoint"
		return
	}
	st, err := c.client.Status(ctx, v.StreamID)
	if err != nil {
		v.StatusError = err.Error()
		return
	}
	v.Status, v.Reason = st.Status, st.Reason
}

// listStreams is GetStreams with a 404 taken as no stream (as Ensure
// does); a transmitter that refuses to list is told apart.
func (c *Admin) listStreams(ctx context.Context) ([]ssf.StreamConfig, error) {
	streams, err := c.client.GetStreams(ctx)
	switch ssf.StatusCode(err) {
	case http.StatusNotFound:
		return nil, nil
	case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, fmt.Errorf("%w (the transmitter does not list streams: name one with --stream-id or stream.stream_id; a running setgate shows its stream_id on /issuers)", err)
	}
	return streams, err
}

// StreamID returns the stream an action is about: --stream-id or
// stream.stream_id, else the only (or own) stream listed.
func (c *Admin) StreamID(ctx context.Context) (string, error) {
	if c.cfg.StreamID != "" {
		return c.cfg.StreamID, nil
	}
	streams, err := c.listStreams(ctx)
	if err != nil {
		return "", err
	}
	return c.defaultStream(streams)
}

// Get prints the stream (Options.StreamID or stream.stream_id), or every
// stream listed at the configuration endpoint, each with its status.
func (c *Admin) Get(ctx context.Context) error {
	var streams []ssf.StreamConfig
	var err error
	if c.cfg.StreamID != "" {
		var one ssf.StreamConfig
		one, err = c.client.GetStream(ctx, c.cfg.StreamID)
		streams = []ssf.StreamConfig{one}
	} else {
		streams, err = c.listStreams(ctx)
	}
	if err != nil {
		return err
	}
	views := make([]StreamView, 0, len(streams))
	for _, s := range streams {
		v := NewStreamView(s)
		c.withStatus(ctx, &v)
		views = append(views, v)
	}
	if c.json {
		return c.printJSON(struct {
			Issuer                string       `json:"issuer"`
			ConfigurationEndpoint string       `json:"configuration_endpoint"`
			Streams               []StreamView `json:"streams"`
		}{c.spec.Name, c.meta.ConfigurationEndpoint, views})
	}
	fmt.Fprintf(c.out, "issuer %s: %d stream(s) at %s\n", c.spec.Name, len(views), c.meta.ConfigurationEndpoint)
	for _, v := range views {
		fmt.Fprintln(c.out)
		c.printView(v)
	}
	return nil
}

// Ensure runs the Manager's Ensure, as serve does at start-up, and says
// whether it created, updated or kept the stream. It requests no
// verification (serve does for a stream it creates): use stream verify.
func (c *Admin) Ensure(ctx context.Context) error {
	if c.cfgErr != nil {
		return c.cfgErr // push without SETGATE_PUBLIC_URL: nothing to create
	}
	cfg := c.cfg
	cfg.States = verify.NewStates(nil) // required; unused: Ensure requests no verification
	mgr, err := ssf.NewManager(cfg)
	if err != nil {
		return err
	}
	n := c.calls.count()
	sc, err := mgr.Ensure(ctx)
	if err != nil {
		return err
	}
	result := "unchanged"
	methods := c.calls.since(n)
	switch {
	case slices.Contains(methods, http.MethodPost):
		result = "created"
	case slices.Contains(methods, http.MethodPatch):
		result = "updated"
	}
	v, err := c.printResult(ctx, sc, result)
	if err != nil || c.json {
		return err
	}
	if cfg.Delivery == ssf.DeliveryPush && sc.Delivery.EndpointURL != cfg.PushEndpoint {
		fmt.Fprintf(c.out, "\nwarning: the transmitter pushes to %s, not to %s\n", v.EndpointURL, cfg.PushEndpoint)
	}
	if result == "created" {
		fmt.Fprintf(c.out, "\nCheck it with: setgate stream verify --issuer %s --stream-id %s\n", c.spec.Name, v.StreamID)
		fmt.Fprintf(c.out, "For a transmitter that does not list streams, pin it in the issuers file (stream.stream_id: %s):\n"+
			"a running setgate remembers only the streams it created or found itself.\n", v.StreamID)
	}
	return nil
}

// own reports whether s is one of this setgate's streams for --all-mine
// and verify's default: a push stream to pushTo, or a poll stream.
func own(s ssf.StreamConfig, pushTo string) bool {
	switch s.Delivery.Method {
	case ssf.MethodPush:
		return pushTo != "" && s.Delivery.EndpointURL == pushTo
	case ssf.MethodPoll, "":
		return true
	}
	return false
}

// Delete deletes the stream id, or with allMine every stream pushing to
// this setgate's endpoint and every poll stream, and prints each outcome.
func (c *Admin) Delete(ctx context.Context, id string, allMine bool) error {
	ids := []string{id}
	if allMine {
		streams, err := c.listStreams(ctx)
		if err != nil {
			return err
		}
		ids = nil
		for _, s := range streams {
			if own(s, c.pushTo) {
				ids = append(ids, s.StreamID)
			}
		}
	}
	type outcome struct {
		StreamID string `json:"stream_id"`
		Deleted  bool   `json:"deleted"`
		Error    string `json:"error,omitempty"`
	}
	results := make([]outcome, 0, len(ids))
	var errs []error
	for _, sid := range ids {
		err := c.client.DeleteStream(ctx, sid)
		o := outcome{StreamID: sid, Deleted: err == nil}
		if err != nil {
			o.Error = err.Error()
			errs = append(errs, err)
		}
		results = append(results, o)
	}
	if c.json {
		if err := c.printJSON(struct {
			Issuer  string    `json:"issuer"`
			Streams []outcome `json:"streams"`
		}{c.spec.Name, results}); err != nil {
			return err
		}
	} else {
		if len(results) == 0 {
			fmt.Fprintf(c.out, "issuer %s: no stream of this setgate to delete\n", c.spec.Name)
		}
		for _, o := range results {
			if o.Deleted {
				fmt.Fprintf(c.out, "issuer %s: stream %s deleted\n", c.spec.Name, o.StreamID)
			} else if allMine { // a single failure is the command's error
				fmt.Fprintf(c.out, "issuer %s: stream %s NOT deleted: %s\n", c.spec.Name, o.StreamID, o.Error)
			}
		}
		if len(results) > 0 && len(errs) < len(results) {
			fmt.Fprintln(c.out, "A running setgate managing this stream sets up a new one when its next status read (every 5m)\nfinds it gone, or at its next start or reload.")
		}
	}
	return errors.Join(errs...)
}

// Verify asks the transmitter for a verification event (SSF 1.0 §8.1.4.2)
// on the stream; subject is the NATS subject it is published on.
func (c *Admin) Verify(ctx context.Context, subject string) error {
	id, err := c.StreamID(ctx)
	if err != nil {
		return err
	}
	// No state: a running setgate would answer a state it did not request
	// with invalid_state; an event without one is the transmitter's own,
	// which setgate accepts, publishes and counts.
	if err := c.client.RequestVerification(ctx, id, ""); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(struct {
			Issuer    string `json:"issuer"`
			StreamID  string `json:"stream_id"`
			Requested bool   `json:"requested"`
			Subject   string `json:"subject"`
		}{c.spec.Name, id, true, subject})
	}
	fmt.Fprintf(c.out, "issuer %s: verification requested for stream %s (without state)\n", c.spec.Name, id)
	fmt.Fprintf(c.out, "The event is published on %s; watch it with:\n  setgate tail '%s'\n", subject, subject)
	fmt.Fprintln(c.out, "A running setgate accepts it as the transmitter's own and counts it in /issuers\n(stream.detail.unsolicited_verifications).")
	return nil
}

// Replace sends the whole configuration (PUT, SSF 1.0 §8.1.1.4):
// events_requested, description and delivery as serve would set them.
func (c *Admin) Replace(ctx context.Context) error {
	if c.cfgErr != nil {
		return c.cfgErr
	}
	id, err := c.StreamID(ctx)
	if err != nil {
		return err
	}
	d := ssf.Delivery{Method: ssf.MethodPoll}
	if c.cfg.Delivery == ssf.DeliveryPush {
		d = ssf.Delivery{Method: ssf.MethodPush, EndpointURL: c.cfg.PushEndpoint}
		if c.cfg.PushAuthorization != "" {
			d.AuthorizationHeader = "Bearer " + c.cfg.PushAuthorization
		}
	}
	sc, err := c.client.ReplaceStream(ctx, ssf.StreamConfig{StreamID: id, EventsRequested: c.cfg.EventsRequested, Description: c.cfg.Description, Delivery: d})
	if err == nil && sc.StreamID == "" { // 202 without a body: read it back
		sc, err = c.client.GetStream(ctx, id)
	}
	if err != nil {
		return err
	}
	_, err = c.printResult(ctx, sc, "replaced")
	return err
}

// printResult prints sc, with its status, as the result of an action.
func (c *Admin) printResult(ctx context.Context, sc ssf.StreamConfig, result string) (StreamView, error) {
	v := NewStreamView(sc)
	c.withStatus(ctx, &v)
	if c.json {
		return v, c.printJSON(struct {
			Issuer string     `json:"issuer"`
			Result string     `json:"result"`
			Stream StreamView `json:"stream"`
		}{c.spec.Name, result, v})
	}
	fmt.Fprintf(c.out, "issuer %s: stream %s %s\n\n", c.spec.Name, v.StreamID, result)
	c.printView(v)
	return v, nil
}

// SetStatus asks the transmitter to change the stream's status (SSF 1.0
// §8.1.2.2) and prints the status it answers.
func (c *Admin) SetStatus(ctx context.Context, status, reason string) error {
	id, err := c.StreamID(ctx)
	if err != nil {
		return err
	}
	st, err := c.client.UpdateStatus(ctx, id, status, reason)
	if err != nil {
		return err
	}
	if st.StreamID == "" {
		st.StreamID = id
	}
	if c.json {
		return c.printJSON(struct {
			Issuer string `json:"issuer"`
			ssf.StreamStatus
		}{c.spec.Name, st})
	}
	fmt.Fprintf(c.out, "issuer %s: stream %s is %s", c.spec.Name, st.StreamID, st.Status)
	if st.Reason != "" {
		fmt.Fprintf(c.out, " (%s)", st.Reason)
	}
	fmt.Fprintln(c.out)
	if st.Status != status {
		fmt.Fprintf(c.out, "warning: asked for %s; the transmitter answered %s\n", status, st.Status)
	}
	return nil
}

// defaultStream picks the stream verify uses without --stream-id: the
// only one, or the only one of this setgate's.
func (c *Admin) defaultStream(streams []ssf.StreamConfig) (string, error) {
	if len(streams) == 1 {
		return streams[0].StreamID, nil
	}
	if len(streams) == 0 {
		return "", errors.New("the transmitter has no stream for this receiver (create one with stream create)")
	}
	var mine, all []string
	for _, s := range streams {
		all = append(all, s.StreamID)
		if own(s, c.pushTo) && NewStreamView(s).Delivery == c.cfg.Delivery {
			mine = append(mine, s.StreamID)
		}
	}
	if len(mine) == 1 {
		return mine[0], nil
	}
	return "", fmt.Errorf("the transmitter has %d streams (%s): name one with --stream-id", len(all), strings.Join(all, ", "))
}

func (c *Admin) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *Admin) printView(v StreamView) {
	w := c.out
	fmt.Fprintf(w, "stream %s\n", v.StreamID)
	fmt.Fprintf(w, "  delivery:          %s (%s)\n", v.Delivery, v.Method)
	if v.EndpointURL != "" {
		fmt.Fprintf(w, "  endpoint_url:      %s\n", v.EndpointURL)
	}
	if v.AuthorizationHeader {
		fmt.Fprintln(w, "  authorization:     set (not shown)")
	}
	if v.Description != "" {
		fmt.Fprintf(w, "  description:       %s\n", v.Description)
	}
	if len(v.Aud) > 0 {
		fmt.Fprintf(w, "  aud:               %s\n", strings.Join(v.Aud, ", "))
	}
	list := func(label string, l []string) {
		if len(l) == 0 {
			fmt.Fprintf(w, "  %-18s (none)\n", label+":")
			return
		}
		fmt.Fprintf(w, "  %s\n", label+":")
		for _, e := range l {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
	list("events_requested", v.EventsRequested)
	list("events_delivered", v.EventsDelivered)
	if len(v.EventsMissing) > 0 {
		list("not delivered", v.EventsMissing)
	}
	switch {
	case v.StatusError != "":
		fmt.Fprintf(w, "  status:            unknown: %s\n", v.StatusError)
	case v.Reason != "":
		fmt.Fprintf(w, "  status:            %s (%s)\n", v.Status, v.Reason)
	default:
		fmt.Fprintf(w, "  status:            %s\n", v.Status)
	}
}

// AddSubject adds subject to the stream (SSF 1.0 §8.1.3.2); verified,
// when not nil, is sent as the verified member.
func (c *Admin) AddSubject(ctx context.Context, subject json.RawMessage, verified *bool) error {
	id, err := c.StreamID(ctx)
	if err != nil {
		return err
	}
	if err := c.client.AddSubject(ctx, id, subject, verified); err != nil {
		return err
	}
	return c.printSubject(id, "add", subject)
}

// RemoveSubject removes subject from the stream (SSF 1.0 §8.1.3.3).
func (c *Admin) RemoveSubject(ctx context.Context, subject json.RawMessage) error {
	id, err := c.StreamID(ctx)
	if err != nil {
		return err
	}
	if err := c.client.RemoveSubject(ctx, id, subject); err != nil {
		return err
	}
	return c.printSubject(id, "remove", subject)
}

func (c *Admin) printSubject(id, action string, subject json.RawMessage) error {
	if c.json {
		return c.printJSON(struct {
			Issuer   string          `json:"issuer"`
			StreamID string          `json:"stream_id"`
			Action   string          `json:"action"`
			Subject  json.RawMessage `json:"subject"`
		}{c.spec.Name, id, action, subject})
	}
	done := map[string]string{"add": "added to", "remove": "removed from"}[action]
	_, err := fmt.Fprintf(c.out, "issuer %s: subject %s %s stream %s\n", c.spec.Name, subject, done, id)
	return err
}
