package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/issuers"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// streamActions are the sub-commands of "setgate stream".
var streamActions = []string{"get", "create", "update", "replace", "status", "delete", "verify"}

// streamVerb runs "setgate stream get|create|update|replace|status|delete|verify":
// the SSF stream management serve does for an issuer's stream block, by
// hand, and the receiver's side of SSF 1.0 §8 serve does not do on its
// own (replace, status change). It discovers the transmitter, builds the
// client and the stream configuration exactly as serve does (create and
// update run the same Manager.Ensure), and calls the transmitter's
// configuration, status and verification endpoints with the stream
// block's credential.
func streamVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("stream", "get|create|update|delete|verify|replace|status [flags]", stdout,
		"Manage an issuer's SSF stream at its transmitter by hand, with the issuers file's stream block\n"+
			"(discovery, credential, delivery, events_requested, description) as serve uses it:\n"+
			"  get      the stream (--stream-id or stream.stream_id), or every stream listed at the\n"+
			"           configuration endpoint, each with its status\n"+
			"  create   set up the stream serve would (reuse, update when different, or create)\n"+
			"  update   the same as create; with --stream-id, that stream\n"+
			"  replace  PUT the whole configuration (events_requested, description, delivery) to the stream\n"+
			"  status   enabled|paused|disabled [--reason TEXT]: ask the transmitter to change the status\n"+
			"  delete   delete --stream-id ID, or --all-mine: the streams pushing to this setgate\n"+
			"           (SETGATE_PUBLIC_URL/events/<issuer>) and every poll stream\n"+
			"  verify   ask the transmitter for a verification event (without state, so a running\n"+
			"           setgate accepts it as the transmitter's own)\n"+
			"Without --stream-id, replace, status and verify use stream.stream_id, else the only (or own)\n"+
			"stream listed. The issuers file is loaded as serve loads it, so the secrets it names must be readable.",
		"ISSUERS_FILE", "PUBLIC_URL", "SUBJECT_PREFIX", "LOG_LEVEL", "LOG_FORMAT")
	issuersPath := fs.String("issuers", "", "issuers file (default $SETGATE_ISSUERS_FILE)")
	name := fs.String("issuer", "", "name of the issuer in the file (may be left out when one issuer has a stream block)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	streamID := fs.String("stream-id", "", "the stream (delete: required unless --all-mine; others: default stream.stream_id, else the only or own stream)")
	allMine := fs.Bool("all-mine", false, "delete: every stream pushing to this setgate's endpoint and every poll stream")
	reason := fs.String("reason", "", "status: the reason given to the transmitter")
	timeout := fs.Duration("timeout", time.Minute, "bound on the whole command")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || !slices.Contains(streamActions, pos[0]) {
		fs.Usage()
		if len(pos) == 0 {
			return errors.New("stream: name an action: " + strings.Join(streamActions, ", "))
		}
		return fmt.Errorf("stream: unknown action %q (want %s)", pos[0], strings.Join(streamActions, ", "))
	}
	action := pos[0]
	fail := func(err error) error { return fmt.Errorf("stream %s: %w", action, err) }
	var newStatus string
	switch {
	case action == "status" && len(pos) != 2:
		return fail(errors.New("name the new status: enabled, paused or disabled"))
	case action == "status":
		newStatus = pos[1]
		if !slices.Contains([]string{ssf.StatusEnabled, ssf.StatusPaused, ssf.StatusDisabled}, newStatus) {
			return fail(fmt.Errorf("%q is not enabled, paused or disabled", newStatus))
		}
	case len(pos) > 1:
		return fmt.Errorf("stream: want one action, got %q", pos)
	}
	switch {
	case action != "delete" && *allMine:
		return fail(errors.New("--all-mine is only for delete"))
	case action == "delete" && *allMine && *streamID != "":
		return fail(errors.New("--stream-id and --all-mine exclude each other"))
	case action == "delete" && !*allMine && *streamID == "":
		return fail(errors.New("name the stream with --stream-id ID (see stream get), or use --all-mine"))
	case action == "create" && *streamID != "":
		return fail(fmt.Errorf("--stream-id is not for create (update uses the stream it names)"))
	case action != "status" && *reason != "":
		return fail(errors.New("--reason is only for status"))
	}

	sc, s, err := openStreamCommand(ctx, vars, *issuersPath, *name, *timeout, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	defer sc.cancel()
	ctx = sc.ctx
	fail = func(err error) error { return fmt.Errorf("stream %s: issuer %q: %w", action, sc.spec.Name, err) }
	if sc.cfgErr != nil && (action == "create" || action == "update" || action == "replace") {
		return fail(sc.cfgErr) // push without SETGATE_PUBLIC_URL: nothing to create
	}
	sc.json = *asJSON
	if *streamID != "" {
		sc.cfg.StreamID = *streamID
	}

	switch action {
	case "get":
		err = sc.get(ctx)
	case "create", "update":
		err = sc.ensure(ctx)
	case "replace":
		err = sc.replace(ctx)
	case "status":
		err = sc.setStatus(ctx, newStatus, *reason)
	case "delete":
		err = sc.delete(ctx, *streamID, *allMine)
	case "verify":
		subjects, serr := bridge.NewSubjects(s.SubjectPrefix)
		if serr != nil {
			return serr
		}
		err = sc.verify(ctx, subjects.For(sc.spec.Name, verify.EventVerification, sc.spec.Overrides))
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// openStreamCommand loads the issuers file, picks the issuer, discovers
// its transmitter and builds the client as serve does. The command's
// context (bounded by timeout) is sc.ctx; call sc.cancel when done.
func openStreamCommand(ctx context.Context, vars map[string]string, issuersPath, name string, timeout time.Duration, stdout, stderr io.Writer) (*streamCommand, config.Settings, error) {
	s, err := config.Load(vars)
	if err != nil {
		return nil, s, err
	}
	path := issuersPath
	if path == "" {
		path = s.IssuersFile
	}
	if path == "" {
		return nil, s, errors.New("name the issuers file with --issuers or SETGATE_ISSUERS_FILE")
	}
	loaded, err := config.LoadIssuers(path, vars)
	if err != nil {
		return nil, s, err
	}
	spec, err := pickStreamIssuer(loaded.Issuers, name)
	if err != nil {
		return nil, s, err
	}
	cancel := func() {}
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	log := newLogger(s, stderr).With("issuer", spec.Name)
	calls := &streamCalls{next: http.DefaultTransport.(*http.Transport).Clone()}
	// As serve: the outbound policy, and endpoints on the issuer's origin
	// or stream.allowed_origins only.
	hc := outbound.Policy{Timeout: ssf.DefaultCallTimeout, MaxBytes: ssf.MaxBodyBytes, Transport: calls}.Client()
	meta, err := ssf.Discover(ctx, hc, spec.Verify.Issuer, spec.DiscoverOptions())
	if err != nil {
		cancel()
		return nil, s, fmt.Errorf("issuer %q: discovery: %w", spec.Name, err)
	}
	cfg, cfgErr := issuers.StreamManagerConfig(spec, meta, s.PublicURL, hc, log)
	if cfg.Client == nil { // the credential could not be built
		cancel()
		return nil, s, fmt.Errorf("issuer %q: %w", spec.Name, cfgErr)
	}
	sc := &streamCommand{ctx: ctx, cancel: cancel, spec: spec, meta: meta, cfg: cfg, cfgErr: cfgErr, client: cfg.Client, calls: calls, out: stdout}
	if s.PublicURL != "" { // whatever the configured delivery: --all-mine also finds a push stream left from before
		sc.pushTo = issuers.StreamPushEndpoint(s.PublicURL, spec.Name)
	}
	return sc, s, nil
}

// pickStreamIssuer returns the issuer called name, which must have a
// stream block, or when name is empty the only issuer with one.
func pickStreamIssuer(specs []config.Issuer, name string) (config.Issuer, error) {
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

// streamCalls is an http.RoundTripper that remembers the method of each
// request, so the verbs can tell whether Ensure created (POST) or updated
// (PATCH) the stream.
type streamCalls struct {
	next http.RoundTripper

	mu      sync.Mutex
	methods []string
}

func (c *streamCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.methods = append(c.methods, r.Method)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// since returns the methods of the requests after the first n.
func (c *streamCalls) since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.methods[min(n, len(c.methods)):])
}

func (c *streamCalls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.methods)
}

// streamCommand is one run of a stream action against one issuer.
type streamCommand struct {
	ctx    context.Context
	cancel context.CancelFunc
	// cfgErr is why cfg cannot create a stream (push without
	// SETGATE_PUBLIC_URL); the client works regardless.
	cfgErr error
	spec   config.Issuer
	meta   *ssf.Metadata
	cfg    ssf.ManagerConfig
	client *ssf.Client
	calls  *streamCalls
	// pushTo is this setgate's push endpoint for the issuer
	// (SETGATE_PUBLIC_URL/events/<name>), "" without SETGATE_PUBLIC_URL.
	pushTo string
	out    io.Writer
	json   bool
}

// streamView is one stream as the verbs print it: never its
// authorization_header, only whether the transmitter returned one.
type streamView struct {
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

func newStreamView(s ssf.StreamConfig) streamView {
	v := streamView{
		StreamID:                s.StreamID,
		Method:                  s.Delivery.Method,
		EndpointURL:             streamRedactURL(s.Delivery.EndpointURL),
		AuthorizationHeader:     s.Delivery.AuthorizationHeader != "",
		Aud:                     s.Aud,
		EventsRequested:         streamNonNil(s.EventsRequested),
		EventsDelivered:         streamNonNil(s.EventsDelivered),
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

func streamNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// streamRedactURL hides a password in a URL's user information.
func streamRedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// withStatus reads the stream's status into v; a failure is shown, not
// fatal.
func (c *streamCommand) withStatus(ctx context.Context, v *streamView) {
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
func (c *streamCommand) listStreams(ctx context.Context) ([]ssf.StreamConfig, error) {
	streams, err := c.client.GetStreams(ctx)
	switch ssf.StatusCode(err) {
	case http.StatusNotFound:
		return nil, nil
	case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, fmt.Errorf("%w (the transmitter does not list streams: name one with --stream-id or stream.stream_id; a running setgate shows its stream_id on /issuers)", err)
	}
	return streams, err
}

// streamID returns the stream an action is about: --stream-id or
// stream.stream_id, else the only (or own) stream listed.
func (c *streamCommand) streamID(ctx context.Context) (string, error) {
	if c.cfg.StreamID != "" {
		return c.cfg.StreamID, nil
	}
	streams, err := c.listStreams(ctx)
	if err != nil {
		return "", err
	}
	return c.defaultStream(streams)
}

func (c *streamCommand) get(ctx context.Context) error {
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
	views := make([]streamView, 0, len(streams))
	for _, s := range streams {
		v := newStreamView(s)
		c.withStatus(ctx, &v)
		views = append(views, v)
	}
	if c.json {
		return c.printJSON(struct {
			Issuer                string       `json:"issuer"`
			ConfigurationEndpoint string       `json:"configuration_endpoint"`
			Streams               []streamView `json:"streams"`
		}{c.spec.Name, c.meta.ConfigurationEndpoint, views})
	}
	fmt.Fprintf(c.out, "issuer %s: %d stream(s) at %s\n", c.spec.Name, len(views), c.meta.ConfigurationEndpoint)
	for _, v := range views {
		fmt.Fprintln(c.out)
		c.printView(v)
	}
	return nil
}

// ensure runs the Manager's Ensure, as serve does at start-up, and says
// whether it created, updated or kept the stream. It requests no
// verification (serve does for a stream it creates): use stream verify.
func (c *streamCommand) ensure(ctx context.Context) error {
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
	v := newStreamView(sc)
	c.withStatus(ctx, &v)
	if c.json {
		return c.printJSON(struct {
			Issuer string     `json:"issuer"`
			Result string     `json:"result"`
			Stream streamView `json:"stream"`
		}{c.spec.Name, result, v})
	}
	fmt.Fprintf(c.out, "issuer %s: stream %s %s\n\n", c.spec.Name, v.StreamID, result)
	c.printView(v)
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

// streamOwn reports whether s is one of this setgate's streams for --all-mine
// and verify's default: a push stream to pushTo, or a poll stream.
func streamOwn(s ssf.StreamConfig, pushTo string) bool {
	switch s.Delivery.Method {
	case ssf.MethodPush:
		return pushTo != "" && s.Delivery.EndpointURL == pushTo
	case ssf.MethodPoll, "":
		return true
	}
	return false
}

func (c *streamCommand) delete(ctx context.Context, id string, allMine bool) error {
	ids := []string{id}
	if allMine {
		streams, err := c.listStreams(ctx)
		if err != nil {
			return err
		}
		ids = nil
		for _, s := range streams {
			if streamOwn(s, c.pushTo) {
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

func (c *streamCommand) verify(ctx context.Context, subject string) error {
	id, err := c.streamID(ctx)
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

// replace sends the whole configuration (PUT, SSF 1.0 §8.1.1.4):
// events_requested, description and delivery as serve would set them.
func (c *streamCommand) replace(ctx context.Context) error {
	id, err := c.streamID(ctx)
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
	v := newStreamView(sc)
	c.withStatus(ctx, &v)
	if c.json {
		return c.printJSON(struct {
			Issuer string     `json:"issuer"`
			Result string     `json:"result"`
			Stream streamView `json:"stream"`
		}{c.spec.Name, "replaced", v})
	}
	fmt.Fprintf(c.out, "issuer %s: stream %s replaced\n\n", c.spec.Name, v.StreamID)
	c.printView(v)
	return nil
}

// setStatus asks the transmitter to change the stream's status (SSF 1.0
// §8.1.2.2) and prints the status it answers.
func (c *streamCommand) setStatus(ctx context.Context, status, reason string) error {
	id, err := c.streamID(ctx)
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
func (c *streamCommand) defaultStream(streams []ssf.StreamConfig) (string, error) {
	if len(streams) == 1 {
		return streams[0].StreamID, nil
	}
	if len(streams) == 0 {
		return "", errors.New("the transmitter has no stream for this receiver (create one with stream create)")
	}
	var mine, all []string
	for _, s := range streams {
		all = append(all, s.StreamID)
		if streamOwn(s, c.pushTo) && newStreamView(s).Delivery == c.cfg.Delivery {
			mine = append(mine, s.StreamID)
		}
	}
	if len(mine) == 1 {
		return mine[0], nil
	}
	return "", fmt.Errorf("the transmitter has %d streams (%s): name one with --stream-id", len(all), strings.Join(all, ", "))
}

func (c *streamCommand) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *streamCommand) printView(v streamView) {
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
