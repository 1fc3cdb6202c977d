package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/internal/transmitter"
)

// The black-box tests of poll delivery (RFC 8936): the binary polls a
// transmitter.PollServer for the issuer initech, which has no push block.

const (
	pollIssuer = "initech"
	// leaseKey is the issuer's poll lease in the KV bucket setgate_leases:
	// "<stream>.poll.<issuer>".
	leaseKey = streamName + ".poll." + pollIssuer
)

// pollRig is one poll-only issuer: a transmitter that signs its SETs and
// serves its JWKS, a PollServer that hands them out, and an issuers file
// naming both.
type pollRig struct {
	tr    *transmitter.Transmitter
	ps    *transmitter.PollServer
	token string            // the poll bearer token
	env   map[string]string // for the gateway (the token variable with TokenEnv)
	is    *issuers
}

// pollRigOptions say how to set up a pollRig.
type pollRigOptions struct {
	// Hold is how long the PollServer holds an empty long poll (default
	// 500ms).
	Hold time.Duration
	// LongPollTimeout is poll.long_poll_timeout (default "1s").
	LongPollTimeout string
	// MaxEvents is poll.max_events; 0 leaves it out.
	MaxEvents int
	// TokenEnv, if set, names the bearer token by bearer_token_env with
	// this variable instead of bearer_token_file.
	TokenEnv string
}

// newPollRig starts the transmitter and the PollServer (closed at the end
// of the test, after any gateway started later has stopped) and writes the
// issuers file.
func newPollRig(t *testing.T, o pollRigOptions) *pollRig {
	t.Helper()
	if o.Hold == 0 {
		o.Hold = 500 * time.Millisecond
	}
	if o.LongPollTimeout == "" {
		o.LongPollTimeout = "1s"
	}
	r := &pollRig{tr: newTransmitter(t, "ES256"), token: randomHex(t), env: map[string]string{}}
	ps, err := transmitter.NewPollServer(transmitter.PollOptions{Bearer: r.token, Hold: o.Hold})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	r.ps = ps

	dir := t.TempDir()
	auth := ""
	if o.TokenEnv != "" {
		auth = "bearer_token_env: " + o.TokenEnv
		r.env[o.TokenEnv] = r.token
	} else {
		f := filepath.Join(dir, "initech-poll.token")
		writeFile(t, f, r.token+"\n")
		auth = "bearer_token_file: " + f
	}
	maxEvents := ""
	if o.MaxEvents != 0 {
		maxEvents = fmt.Sprintf("      max_events: %d\n", o.MaxEvents)
	}
	file := filepath.Join(dir, "issuers.yaml")
	writeFile(t, file, fmt.Sprintf(`issuers:
  - name: %s
    issuer: %s
    audience: [%s]
    jwks_uri: %s
    algorithms: [ES256]
    poll:
      endpoint: %s
      long_poll_timeout: %s
%s      %s
`, pollIssuer, r.tr.Issuer(), audience, r.tr.JWKSURL(), ps.URL(), o.LongPollTimeout, maxEvents, auth))
	r.is = &issuers{acme: r.tr, file: file}
	return r
}

// gateway starts setgate on ns with the rig's issuers file; env is added
// to the environment.
func (r *pollRig) gateway(t *testing.T, ns *natsServer, env map[string]string) *gatewayProc {
	t.Helper()
	all := maps.Clone(r.env)
	maps.Copy(all, env)
	return startGateway(t, gwOptions{NATS: ns, Issuers: r.is, Env: all})
}

// sentSET is one SET handed to the PollServer.
type sentSET struct {
	jti, set, eventType, subject string
	payload                      map[string]any
}

// pollEvents are the valid events the tests send, in turn.
var pollEvents = []struct {
	eventType string
	payload   map[string]any
	subject   string
}{
	{transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "secevent.caep.session-revoked." + pollIssuer},
	{transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}, "secevent.risc.account-disabled." + pollIssuer},
	{transmitter.CredentialChange, map[string]any{"credential_type": "password", "change_type": "update"}, "secevent.caep.credential-change." + pollIssuer},
}

// sign signs the i-th valid SET (event type pollEvents[i%3]). It does not
// fail the test, so that it can run on any goroutine.
func (r *pollRig) sign(i int) (sentSET, error) {
	ev := pollEvents[i%len(pollEvents)]
	jti, set, err := r.tr.SET(ev.eventType, ev.payload, fmt.Sprintf("user%d@initech.example", i))
	if err != nil {
		return sentSET{}, err
	}
	return sentSET{jti: jti, set: set, eventType: ev.eventType, subject: ev.subject, payload: ev.payload}, nil
}

// enqueue signs the i-th valid SET and queues it under its jti.
func (r *pollRig) enqueue(t *testing.T, i int) sentSET {
	t.Helper()
	s, err := r.sign(i)
	if err != nil {
		t.Fatal(err)
	}
	r.ps.Enqueue(s.jti, s.set)
	return s
}

// enqueuer queues valid SETs one every interval on its own goroutine
// until stop is called; stop returns every SET queued.
type enqueuer struct {
	stopc chan struct{}
	done  chan struct{}
	count atomic.Int64

	mu   sync.Mutex
	sent []sentSET
	err  error
}

func (r *pollRig) startEnqueuer(interval time.Duration) *enqueuer {
	e := &enqueuer{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			s, err := r.sign(i)
			if err != nil {
				e.mu.Lock()
				e.err = err
				e.mu.Unlock()
				return
			}
			r.ps.Enqueue(s.jti, s.set)
			e.mu.Lock()
			e.sent = append(e.sent, s)
			e.mu.Unlock()
			e.count.Add(1)
			select {
			case <-e.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return e
}

func (e *enqueuer) stop(t *testing.T) []sentSET {
	t.Helper()
	select {
	case <-e.done:
	default:
		close(e.stopc)
		<-e.done
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		t.Fatalf("enqueuer: %v", e.err)
	}
	return slices.Clone(e.sent)
}

// waitAcked waits until every SET of sent is acknowledged and nothing is
// pending at the PollServer.
func waitAcked(t *testing.T, ps *transmitter.PollServer, sent []sentSET) {
	t.Helper()
	checkFor(t, waitLong, poll, func() error {
		acked := ps.Acked()
		missing := 0
		for _, s := range sent {
			if acked[s.jti] == 0 {
				missing++
			}
		}
		if missing > 0 || ps.Pending() > 0 {
			return fmt.Errorf("%d of %d SETs not acknowledged yet; %d pending at the transmitter", missing, len(sent), ps.Pending())
		}
		return nil
	})
}

// checkStoredOnce checks that the stream holds exactly the SETs of sent,
// each once, on its subject and marked as polled.
func checkStoredOnce(t *testing.T, msgs []stored, r *pollRig, sent []sentSET) {
	t.Helper()
	index := byJTI(msgs)
	var notOnce []string
	for _, s := range sent {
		got := index[s.jti]
		if len(got) != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%s stored %d times", s.jti, len(got)))
			continue
		}
		checkPolled(t, got[0], r, s)
	}
	if len(notOnce) > 0 {
		t.Errorf("%d of %d SETs are not stored exactly once, e.g. %q", len(notOnce), len(sent), notOnce[:min(5, len(notOnce))])
	}
	if len(msgs) != len(sent) {
		t.Errorf("stream: want %d messages (one per SET), got %d", len(sent), len(msgs))
	}
}

// checkPolled checks one stored message against the SET it came from.
func checkPolled(t *testing.T, m stored, r *pollRig, s sentSET) {
	t.Helper()
	if m.Subject != s.subject {
		t.Errorf("jti %s: subject: want %q, got %q", s.jti, s.subject, m.Subject)
	}
	sum := sha256.Sum256([]byte(r.tr.Issuer() + "\x00" + s.jti + "\x00" + s.eventType))
	for k, v := range map[string]string{
		"Content-Type":       "application/json",
		"Setgate-Issuer":     pollIssuer,
		"Setgate-Iss":        r.tr.Issuer(),
		"Setgate-Jti":        s.jti,
		"Setgate-Event-Type": s.eventType,
		"Setgate-Delivery":   "poll",
		"Nats-Msg-Id":        base64.RawURLEncoding.EncodeToString(sum[:18]),
	} {
		if got := m.Header.Get(k); got != v {
			t.Errorf("jti %s: header %s: want %q, got %q", s.jti, k, v, got)
		}
	}
	var env struct {
		Issuer    string         `json:"issuer"`
		Iss       string         `json:"iss"`
		JTI       string         `json:"jti"`
		EventType string         `json:"event_type"`
		Event     map[string]any `json:"event"`
		Delivery  string         `json:"delivery"`
		SET       string         `json:"set"`
	}
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Errorf("jti %s: envelope is not JSON: %v: %s", s.jti, err, m.Data)
		return
	}
	want := struct{ Issuer, Iss, JTI, EventType, Delivery, SET string }{pollIssuer, r.tr.Issuer(), s.jti, s.eventType, "poll", s.set}
	got := struct{ Issuer, Iss, JTI, EventType, Delivery, SET string }{env.Issuer, env.Iss, env.JTI, env.EventType, env.Delivery, env.SET}
	if got != want {
		t.Errorf("jti %s: envelope: want %+v, got %+v", s.jti, want, got)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(env.Event)), slices.Sorted(maps.Keys(s.payload))) {
		t.Errorf("jti %s: envelope event: want %v, got %v", s.jti, s.payload, env.Event)
	}
}

// checkAckedStored checks that nothing was acknowledged that is not in the
// stream.
func checkAckedStored(t *testing.T, ps *transmitter.PollServer, msgs []stored) {
	t.Helper()
	index := byJTI(msgs)
	var bad []string
	for key := range ps.Acked() {
		if len(index[key]) == 0 {
			bad = append(bad, key)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d jtis acknowledged to the transmitter are not in the stream, e.g. %q", len(bad), bad[:min(5, len(bad))])
	}
}

// logRecords returns the records of l with msg, in order.
func logRecords(l *logSink, msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range l.records() {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// recordTime is the "time" of a JSON log record.
func recordTime(t *testing.T, rec map[string]any) time.Time {
	t.Helper()
	s, _ := rec["time"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("log record time %q: %v", s, err)
	}
	return at
}

// leaseHolderPID returns the process id in the holder of the initech poll
// lease on the server at url; ok is false when nobody holds it.
func leaseHolderPID(t *testing.T, url string) (pid int, ok bool) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("setgate-test-lease"))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	kv, err := js.KeyValue(ctx, "setgate_leases")
	if err != nil {
		t.Fatalf("lease bucket: %v", err)
	}
	entry, err := kv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("lease %s: %v", leaseKey, err)
	}
	var v struct{ Holder string }
	if err := json.Unmarshal(entry.Value(), &v); err != nil {
		t.Fatalf("lease %s: value %q: %v", leaseKey, entry.Value(), err)
	}
	// The holder is "<host>-<pid>-<random hex>".
	parts := strings.Split(v.Holder, "-")
	if len(parts) < 3 {
		t.Fatalf("lease %s: holder %q is not host-pid-random", leaseKey, v.Holder)
	}
	pid, err = strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		t.Fatalf("lease %s: holder %q: %v", leaseKey, v.Holder, err)
	}
	return pid, true
}

// isAckOnly reports whether req is the acknowledge-only request of RFC
// 8936 §2.4: maxEvents 0 and returnImmediately true.
func isAckOnly(req transmitter.PollRequest) bool {
	return req.MaxEvents != nil && *req.MaxEvents == 0 && req.ReturnImmediately
}

func describe(req transmitter.PollRequest) string {
	maxEvents := "absent"
	if req.MaxEvents != nil {
		maxEvents = strconv.Itoa(*req.MaxEvents)
	}
	return fmt.Sprintf("{maxEvents %s, returnImmediately %v, %d acks, %d setErrs, status %d}",
		maxEvents, req.ReturnImmediately, len(req.Ack), len(req.SetErrs), req.Status)
}

// ---------------------------------------------------------------------

// TestPollStoresEvents: SETs handed out by the transmitter are stored once
// each, marked as polled, and each is acknowledged exactly once.
func TestPollStoresEvents(t *testing.T) {
	t.Parallel()
	const n = 50
	tests := []struct {
		name          string
		opts          pollRigOptions
		wantMaxEvents int
	}{
		{"token file, default max_events", pollRigOptions{}, 100},
		{"token env, max_events 7", pollRigOptions{MaxEvents: 7, TokenEnv: "INITECH_POLL_TOKEN"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := startNATS(t)
			r := newPollRig(t, tt.opts)
			g := r.gateway(t, ns, nil)

			sent := make([]sentSET, 0, n)
			for i := range n {
				sent = append(sent, r.enqueue(t, i))
			}
			waitAcked(t, r.ps, sent)

			acked := r.ps.Acked()
			if len(acked) != n {
				t.Errorf("acknowledged: want %d jtis, got %d", n, len(acked))
			}
			for _, s := range sent {
				if acked[s.jti] != 1 {
					t.Errorf("jti %s acknowledged %d times, want 1", s.jti, acked[s.jti])
				}
			}
			if errs := r.ps.Errors(); len(errs) != 0 {
				t.Errorf("setErrs: want none, got %v", errs)
			}
			msgs := readStream(t, ns.URL())
			checkStoredOnce(t, msgs, r, sent)
			checkAckedStored(t, r.ps, msgs)

			// Every poll so far: authorized, JSON, a long poll for the
			// configured batch size, answered 200 (or still held).
			reqs := r.ps.Requests()
			if len(reqs) == 0 {
				t.Fatal("the PollServer saw no request")
			}
			for i, req := range reqs {
				if req.Status == 0 {
					continue // being answered
				}
				if req.Status != http.StatusOK {
					t.Errorf("request #%d: answered %d, want 200: %s", i+1, req.Status, describe(req))
					continue
				}
				if got := req.Header.Get("Authorization"); got != "Bearer "+r.token {
					t.Errorf("request #%d: Authorization: want the bearer token, got %q", i+1, got)
				}
				if got := req.Header.Get("Content-Type"); got != "application/json" {
					t.Errorf("request #%d: Content-Type: want %q, got %q", i+1, "application/json", got)
				}
				if req.MaxEvents == nil || *req.MaxEvents != tt.wantMaxEvents || req.ReturnImmediately {
					t.Errorf("request #%d: want maxEvents %d, returnImmediately false, got %s", i+1, tt.wantMaxEvents, describe(req))
				}
			}

			// initech takes no pushes.
			resp := g.pushAs(t, pollIssuer, r.token, sent[0].set)
			checkError(t, resp, http.StatusNotFound, "invalid_request")
			if strings.Contains(g.log.String(), r.token) {
				t.Errorf("the log contains the poll bearer token")
			}
		})
	}
}

// TestPollRejectsBadSETs: invalid SETs are reported in setErrs with their
// code, never stored nor acknowledged, and announced as polled rejections;
// the valid ones around them are stored and acknowledged.
func TestPollRejectsBadSETs(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	r := newPollRig(t, pollRigOptions{})
	nc := connect(t, ns.URL())
	sub, err := nc.SubscribeSync("setgate.rejected." + pollIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	rogue := newTransmitter(t, "ES256")
	g := r.gateway(t, ns, map[string]string{"SETGATE_MAX_BODY_BYTES": "32768"})

	sign := func(t *testing.T, tr *transmitter.Transmitter, claims map[string]any) string {
		t.Helper()
		set, err := tr.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	session := func() map[string]any {
		return r.tr.Claims(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "alice@initech.example")
	}
	tests := []struct {
		name string
		// enqueue queues one bad SET and returns its map key and jti.
		enqueue func(t *testing.T) (key, jti string)
		wantErr string
		// announced: an announcement on setgate.rejected.initech is
		// required; otherwise one is allowed (with the right code) but not
		// required.
		announced bool
	}{
		{"aud of another receiver", func(t *testing.T) (string, string) {
			c := session()
			c["aud"] = "https://other-receiver.example/"
			jti := c["jti"].(string)
			r.ps.Enqueue(jti, sign(t, r.tr, c))
			return jti, jti
		}, "invalid_audience", true},
		{"another transmitter's key", func(t *testing.T) (string, string) {
			c := session()
			jti := c["jti"].(string)
			r.ps.Enqueue(jti, sign(t, rogue, c))
			return jti, jti
		}, "invalid_key", true},
		{"credential-change without change_type", func(t *testing.T) (string, string) {
			c := r.tr.Claims(transmitter.CredentialChange, map[string]any{"credential_type": "password"}, "alice@initech.example")
			jti := c["jti"].(string)
			r.ps.Enqueue(jti, sign(t, r.tr, c))
			return jti, jti
		}, "invalid_request", true},
		// A valid SET under a key that is not its jti: the poll loop
		// rejects it before verification, and announces it like any other.
		{"map key is not the jti", func(t *testing.T) (string, string) {
			c := session()
			jti := c["jti"].(string)
			key := "not-" + jti
			r.ps.EnqueueAs(key, jti, sign(t, r.tr, c))
			return key, jti
		}, "invalid_request", true},
		// Longer than SETGATE_MAX_BODY_BYTES (32768 here, under the
		// poller's own default): what a push would get 413 for is
		// refused before verification.
		{"over SETGATE_MAX_BODY_BYTES", func(t *testing.T) (string, string) {
			c := r.tr.Claims("urn:example:event:big", map[string]any{"blob": strings.Repeat("b", 32<<10)}, "alice@initech.example")
			jti := c["jti"].(string)
			r.ps.Enqueue(jti, sign(t, r.tr, c))
			return jti, jti
		}, "invalid_request", true},
	}

	type badSET struct {
		key, jti string
	}
	bad := make([]badSET, len(tests))
	var valid []sentSET
	for i, tt := range tests {
		valid = append(valid, r.enqueue(t, 2*i))
		key, jti := tt.enqueue(t)
		bad[i] = badSET{key, jti}
		valid = append(valid, r.enqueue(t, 2*i+1))
	}
	waitAcked(t, r.ps, valid)
	checkFor(t, waitLong, poll, func() error {
		if n := len(r.ps.Errors()); n < len(tests) {
			return fmt.Errorf("want %d setErrs, got %d", len(tests), n)
		}
		return nil
	})

	errs := r.ps.Errors()
	acked := r.ps.Acked()
	msgs := readStream(t, ns.URL())
	stored := byJTI(msgs)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bad[i]
			e, ok := errs[b.key]
			if !ok {
				t.Fatalf("no setErr for key %s; setErrs: %v", b.key, errs)
			}
			if e.Err != tt.wantErr {
				t.Errorf("setErr: want %q, got %q (%q)", tt.wantErr, e.Err, e.Description)
			}
			if e.Description == "" {
				t.Errorf("setErr %q has no description", e.Err)
			}
			if n := acked[b.key] + acked[b.jti]; n != 0 {
				t.Errorf("rejected SET acknowledged %d times", n)
			}
			if n := len(stored[b.jti]); n != 0 {
				t.Errorf("rejected SET stored %d times", n)
			}
		})
	}
	if len(errs) != len(tests) {
		t.Errorf("setErrs: want %d keys, got %d: %v", len(tests), len(errs), errs)
	}
	checkStoredOnce(t, msgs, r, valid)
	checkAckedStored(t, r.ps, msgs)

	// Announcements, in any order, keyed by jti (or, for the map key
	// case, possibly by map key).
	want, allowed := map[string]string{}, map[string]string{} // -> code
	for i, tt := range tests {
		allowed[bad[i].jti] = tt.wantErr
		allowed[bad[i].key] = tt.wantErr
		if tt.announced {
			want[bad[i].jti] = tt.wantErr
		}
	}
	got := map[string]string{}
	check := func(msg *nats.Msg) {
		t.Helper()
		var rej struct {
			Issuer, Code, Description, JTI, Delivery string
			ReceivedAt                               time.Time `json:"received_at"`
		}
		if err := json.Unmarshal(msg.Data, &rej); err != nil {
			t.Fatalf("announcement is not JSON: %v: %s", err, msg.Data)
		}
		code, ok := allowed[rej.JTI]
		if !ok {
			t.Errorf("announcement of a SET that was not rejected: %s", msg.Data)
			return
		}
		if rej.Code != code {
			t.Errorf("announced code for %s: want %q, got %q", rej.JTI, code, rej.Code)
		}
		if _, ok := want[rej.JTI]; ok {
			got[rej.JTI] = rej.Code
		}
		if rej.Issuer != pollIssuer || rej.Delivery != "poll" || rej.Description == "" || rej.ReceivedAt.IsZero() {
			t.Errorf("announcement: want issuer %q, delivery %q, a description and received_at, got %s", pollIssuer, "poll", msg.Data)
		}
		if bytes.Contains(msg.Data, []byte(r.token)) {
			t.Errorf("announcement contains the poll bearer token: %s", msg.Data)
		}
	}
	for len(got) < len(want) {
		msg, err := sub.NextMsg(waitShort)
		if err != nil {
			t.Fatalf("announcements: got %d of %d (%v), then: %v", len(got), len(want), got, err)
		}
		check(msg)
	}
	for { // whatever else has arrived meanwhile
		msg, err := sub.NextMsg(time.Millisecond)
		if err != nil {
			break
		}
		check(msg)
	}
	if strings.Contains(g.log.String(), r.token) {
		t.Errorf("the log contains the poll bearer token")
	}
}

// TestPollLeaseTakeover runs two gateways for the same issuer on the same
// NATS: one polls; when it is killed (no release) the other takes over
// once the lease has expired, and every SET is stored once and
// acknowledged.
func TestPollLeaseTakeover(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	r := newPollRig(t, pollRigOptions{})
	env := map[string]string{"SETGATE_POLL_LEASE_TTL": "2s"}

	// a starts first and takes the lease (nobody holds it yet).
	a := r.gateway(t, ns, env)
	checkFor(t, waitLong, poll, func() error {
		if len(logRecords(a.log, "lease acquired, polling")) == 0 || len(r.ps.Requests()) == 0 {
			return errors.New("the first gateway has not started polling")
		}
		return nil
	})
	b := r.gateway(t, ns, env)

	enq := r.startEnqueuer(10 * time.Millisecond)
	defer enq.stop(t)
	checkFor(t, waitLong, poll, func() error {
		if n := r.ps.AckedCount(); n < 20 {
			return fmt.Errorf("want 20 SETs acknowledged before the kill, got %d", n)
		}
		return nil
	})

	// Kill whichever holds the lease now (a, unless it lost the lease
	// meanwhile).
	pid, ok := leaseHolderPID(t, ns.URL())
	if !ok {
		t.Fatal("nobody holds the poll lease while SETs are being polled")
	}
	holder, other := a, b
	switch pid {
	case a.cmd.Process.Pid:
	case b.cmd.Process.Pid:
		t.Logf("the second gateway took the lease before the kill")
		holder, other = b, a
	default:
		t.Fatalf("the lease holder pid %d is neither gateway (%d, %d)", pid, a.cmd.Process.Pid, b.cmd.Process.Pid)
	}
	ackedAtKill := r.ps.AckedCount()
	killAt := time.Now()
	holder.kill()

	var acquiredAt time.Time
	checkFor(t, waitLong, poll, func() error {
		if pid, ok := leaseHolderPID(t, ns.URL()); !ok || pid != other.cmd.Process.Pid {
			return fmt.Errorf("the lease is not held by the surviving gateway (holder pid %d, held %v)", pid, ok)
		}
		recs := logRecords(other.log, "lease acquired, polling")
		if len(recs) == 0 {
			return errors.New("the surviving gateway has not logged that it acquired the lease")
		}
		acquiredAt = recordTime(t, recs[len(recs)-1])
		return nil
	})
	gap := acquiredAt.Sub(killAt)
	checkFor(t, waitLong, poll, func() error {
		if n := r.ps.AckedCount(); n < ackedAtKill+20 {
			return fmt.Errorf("want 20 more SETs acknowledged after the takeover, got %d", n-ackedAtKill)
		}
		return nil
	})
	sent := enq.stop(t)

	waitAcked(t, r.ps, sent)
	msgs := readStream(t, ns.URL())
	checkStoredOnce(t, msgs, r, sent)
	checkAckedStored(t, r.ps, msgs)
	reacked := 0
	for _, n := range r.ps.Acked() {
		if n > 1 {
			reacked++
		}
	}
	t.Logf("takeover: killed pid %d; pid %d acquired the lease %v later (TTL 2s); %d SETs, %d acknowledged before the kill, %d acknowledged more than once",
		holder.cmd.Process.Pid, other.cmd.Process.Pid, gap.Round(time.Millisecond), len(sent), ackedAtKill, reacked)
}

// TestPollGracefulShutdown sends SIGTERM to a polling gateway: its last
// request is acknowledge-only and carries the acks of what it stored; it
// releases the lease and exits with 0.
func TestPollGracefulShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hold time.Duration
		// before runs until the moment of SIGTERM; it returns a function
		// that stops anything it started and returns what was enqueued.
		before func(t *testing.T, r *pollRig) func() []sentSET
		// held: SIGTERM came while a long poll carrying the acks of the
		// last batch was held by the transmitter, so the final request
		// must carry exactly those acks again.
		held bool
	}{
		{"SETs arriving continuously", 5 * time.Second, func(t *testing.T, r *pollRig) func() []sentSET {
			enq := r.startEnqueuer(5 * time.Millisecond)
			checkFor(t, waitLong, poll, func() error {
				if n := r.ps.AckedCount(); n < 30 {
					return fmt.Errorf("want 30 SETs acknowledged before SIGTERM, got %d", n)
				}
				return nil
			})
			return func() []sentSET { return enq.stop(t) }
		}, false},
		{"long poll held after a batch", 30 * time.Second, func(t *testing.T, r *pollRig) func() []sentSET {
			const n = 10
			sent := make([]sentSET, 0, n)
			for i := range n {
				sent = append(sent, r.enqueue(t, i))
			}
			// The acks of the last batch ride on the next long poll,
			// which the transmitter then holds (nothing is pending).
			checkFor(t, waitLong, poll, func() error {
				reqs := r.ps.Requests()
				if r.ps.AckedCount() < n || r.ps.Pending() > 0 || len(reqs) == 0 || reqs[len(reqs)-1].Status != 0 {
					return fmt.Errorf("want %d SETs acknowledged and a long poll held; acked %d, pending %d, %d requests",
						n, r.ps.AckedCount(), r.ps.Pending(), len(reqs))
				}
				return nil
			})
			return func() []sentSET { return sent }
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := startNATS(t)
			r := newPollRig(t, pollRigOptions{Hold: tt.hold, LongPollTimeout: tt.hold.String()})
			g := r.gateway(t, ns, nil)
			checkFor(t, waitLong, poll, func() error {
				if _, ok := leaseHolderPID(t, ns.URL()); !ok {
					return errors.New("the gateway does not hold the poll lease")
				}
				return nil
			})
			finish := tt.before(t, r)

			g.terminate()
			err := g.wait(waitLong)
			sent := finish()
			if err != nil {
				t.Errorf("exit: want status 0, got %v", err)
			}

			// Every request has been answered (the one cancelled by the
			// shutdown is recorded once the PollServer noticed).
			var reqs []transmitter.PollRequest
			checkFor(t, waitShort, poll, func() error {
				reqs = r.ps.Requests()
				for i, req := range reqs {
					if req.Status == 0 {
						return fmt.Errorf("request #%d of %d still being answered", i+1, len(reqs))
					}
				}
				return nil
			})
			if len(reqs) < 2 {
				t.Fatalf("want at least 2 requests, got %d", len(reqs))
			}
			// The final request is the one acknowledge-only request. The
			// transmitter records requests as its handlers start, so the
			// poll the shutdown cancelled, sent before the final one, may
			// still be recorded after it when the final one's handler ran
			// first; such a poll carries no ack the final one does not
			// (the final one repeats the acks of the cancelled poll), and
			// whatever it was given stays unacknowledged: RFC 8936 poll
			// answers include SETs sent before and not yet acknowledged.
			k := len(reqs) - 1
			for k > 0 && !isAckOnly(reqs[k]) {
				k--
			}
			last := reqs[k]
			if !isAckOnly(last) || len(last.Ack) == 0 || last.Status != http.StatusOK {
				t.Errorf("final request: want acknowledge-only (maxEvents 0, returnImmediately true) with acks, answered 200; got %s", describe(last))
			}
			for i, req := range reqs[k+1:] {
				if len(reqs)-k > 2 || isAckOnly(req) || len(req.Ack) == 0 || !subset(req.Ack, last.Ack) {
					t.Errorf("request #%d of %d, after the final acknowledgement: want at most the cancelled poll, whose acks the final one repeats; got %s", k+2+i, len(reqs), describe(req))
				}
			}
			for i, req := range reqs[:k] {
				if isAckOnly(req) {
					t.Errorf("request #%d of %d is acknowledge-only; want only the final one: %s", i+1, len(reqs), describe(req))
				}
			}
			if tt.held {
				prev := reqs[k-1]
				if len(prev.Ack) == 0 || !slices.Equal(slices.Sorted(slices.Values(last.Ack)), slices.Sorted(slices.Values(prev.Ack))) {
					t.Errorf("last request: want the acks of the cancelled long poll (%d), got %d", len(prev.Ack), len(last.Ack))
				}
			}

			msgs := readStream(t, ns.URL())
			checkAckedStored(t, r.ps, msgs)
			stored := byJTI(msgs)
			inLast := make(map[string]bool, len(last.Ack))
			for _, k := range last.Ack {
				inLast[k] = true
			}
			acked := r.ps.Acked()
			var unacked []string
			for jti := range stored {
				if acked[jti] == 0 {
					unacked = append(unacked, jti)
				}
			}
			if len(unacked) > 0 {
				t.Errorf("%d stored SETs were never acknowledged, e.g. %q", len(unacked), unacked[:min(5, len(unacked))])
			}
			byKey := make(map[string]sentSET, len(sent))
			for _, s := range sent {
				byKey[s.jti] = s
			}
			for jti, ms := range stored {
				s, ok := byKey[jti]
				switch {
				case !ok:
					t.Errorf("the stream holds jti %s that was never enqueued", jti)
				case len(ms) != 1:
					t.Errorf("jti %s stored %d times", jti, len(ms))
				default:
					checkPolled(t, ms[0], r, s)
				}
			}
			if _, ok := leaseHolderPID(t, ns.URL()); ok {
				t.Errorf("the poll lease is still held after a clean exit; want it released")
			}
			if !hasRecord(g.log, "final acknowledgement sent") {
				t.Errorf("log: want a %q record", "final acknowledgement sent")
			}
			t.Logf("%d SETs enqueued, %d stored, %d requests; the last one acknowledged %d", len(sent), len(msgs), len(reqs), len(last.Ack))
		})
	}
}

// TestPollNATSOutage stops NATS while SETs are being polled: nothing that
// is not in the stream is acknowledged, and once NATS is back every SET is
// stored once and acknowledged.
func TestPollNATSOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		leaseTTL string
		// failures is how many failed batches to wait for before NATS
		// comes back.
		failures int
		// leaseLost: the outage outlasts the lease, so the loop stops
		// polling until NATS is back and it holds the lease again.
		leaseLost bool
	}{
		// The loop keeps polling, fails to persist what it receives,
		// backs off and fails again.
		{"lease outlasts the outage", "15s", 2, false},
		{"lease expires during the outage", "2s", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := startNATS(t)
			r := newPollRig(t, pollRigOptions{})
			g := r.gateway(t, ns, map[string]string{"SETGATE_PUBLISH_TIMEOUT": "1s", "SETGATE_POLL_LEASE_TTL": tt.leaseTTL})

			var before []sentSET
			for i := range 10 {
				before = append(before, r.enqueue(t, i))
			}
			waitAcked(t, r.ps, before)

			downAt := time.Now()
			ns.Shutdown()
			var during []sentSET
			for i := range 10 {
				during = append(during, r.enqueue(t, 100+i))
			}
			checkFor(t, waitLong, poll, func() error {
				if n := len(logRecords(g.log, "SETs not persisted; they stay with the transmitter")); n < tt.failures {
					return fmt.Errorf("want %d batches that failed to persist, got %d", tt.failures, n)
				}
				if tt.leaseLost && len(logRecords(g.log, "lease expiring unrenewed; stopping polls")) == 0 {
					return errors.New("the gateway has not given up the lease yet")
				}
				return nil
			})
			// NATS is down: nothing new can be in the stream, so nothing
			// new may be acknowledged.
			known := make(map[string]bool, len(before))
			for _, s := range before {
				known[s.jti] = true
			}
			for key := range r.ps.Acked() {
				if !known[key] {
					t.Errorf("jti %s acknowledged while NATS was down", key)
				}
			}
			upAt := time.Now()
			ns.Start()

			var after []sentSET
			for i := range 10 {
				after = append(after, r.enqueue(t, 200+i))
			}
			all := slices.Concat(before, during, after)
			waitAcked(t, r.ps, all)
			recovered := time.Since(upAt)
			if n := len(logRecords(g.log, "lease acquired, polling")); tt.leaseLost && n < 2 {
				t.Errorf("log: want the lease acquired twice (before and after the outage), got %d", n)
			}
			msgs := readStream(t, ns.URL())
			checkStoredOnce(t, msgs, r, all)
			checkAckedStored(t, r.ps, msgs)
			t.Logf("NATS down for %v; all %d SETs acknowledged %v after the restart; %d polls",
				upAt.Sub(downAt).Round(time.Millisecond), len(all), recovered.Round(time.Millisecond), len(r.ps.Requests()))
		})
	}
}

// TestPollBadConfigStopsStart: a wrong poll block stops the start with a
// message naming the issuer and the key.
func TestPollBadConfigStopsStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := filepath.Join(dir, "initech.token")
	writeFile(t, token, "secret\n")
	secret := filepath.Join(dir, "initech.secret")
	writeFile(t, secret, "client-secret\n")
	const base = `issuers:
  - name: initech
    issuer: http://127.0.0.1:1/
    audience: [https://setgate.test/]
    jwks_uri: http://127.0.0.1:1/jwks
    poll:
`
	tests := []struct {
		name string
		poll string // the poll block's members, indented by 6
		want []string
	}{
		{"no endpoint", "      bearer_token_file: TOKEN\n", []string{`"initech"`, "poll.endpoint", "required"}},
		{"http endpoint not on loopback", "      endpoint: http://transmitter.example/poll\n      bearer_token_file: TOKEN\n",
			[]string{`"initech"`, "poll.endpoint", "https"}},
		{"bearer token and oauth2", "      endpoint: http://127.0.0.1:1/poll\n      bearer_token_file: TOKEN\n" +
			"      oauth2:\n        token_url: https://idp.initech.example/token\n        client_id: setgate\n        client_secret_file: SECRET\n",
			[]string{`"initech"`, "poll", "bearer", "oauth2", "not both"}},
		{"no credential", "      endpoint: http://127.0.0.1:1/poll\n", []string{`"initech"`, "poll.bearer_token_file"}},
		{"negative max_events", "      endpoint: http://127.0.0.1:1/poll\n      max_events: -1\n      bearer_token_file: TOKEN\n",
			[]string{`"initech"`, "poll.max_events"}},
		{"bad long_poll_timeout", "      endpoint: http://127.0.0.1:1/poll\n      long_poll_timeout: soon\n      bearer_token_file: TOKEN\n",
			[]string{`"initech"`, "poll.long_poll_timeout", "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "issuers.yaml")
			writeFile(t, file, base+strings.NewReplacer("TOKEN", token, "SECRET", secret).Replace(tt.poll))
			stderr := startMustFail(t, file)
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr: want it to contain %q, got %q", w, stderr)
				}
			}
			if strings.Contains(stderr, "client-secret") {
				t.Errorf("stderr contains the oauth2 client secret: %q", stderr)
			}
		})
	}
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
