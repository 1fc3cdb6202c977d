package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/ssfadmin"
	"github.com/setgate/setgate/internal/transmitter"
)

const (
	streamSSFSecret  = "ssf-secret-do-not-print"
	streamPushSecret = "push-secret-do-not-print"
)

func newStreamTransmitter(tb testing.TB) *transmitter.SSFTransmitter {
	tb.Helper()
	tr, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: verbAudience, Bearer: streamSSFSecret})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Close() })
	return tr
}

// streamIssuersFile writes an issuers file with issuer "acme" managing a
// stream at the SSF transmitter issuer (credentials from the variables of streamVars), plus extra
// issuers, and returns its path.
func streamIssuersFile(tb testing.TB, issuer string, delivery string, events []string, extra string) string {
	tb.Helper()
	auth := ""
	if delivery == "push" {
		auth = "      authorization_header_env: PUSH_TOKEN\n"
	}
	yaml := fmt.Sprintf(`issuers:
  - name: acme
    issuer: %s
    audience: [%s]
    discovery: true
    stream:
      manage: true
      delivery: %s
      events_requested: [%s]
      description: setgate under test
      bearer_token_env: SSF_TOKEN
%s%s`, issuer, verbAudience, delivery, strings.Join(events, ", "), auth, extra)
	path := filepath.Join(tb.TempDir(), "issuers.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func streamVars(publicURL string) map[string]string {
	v := map[string]string{"SSF_TOKEN": streamSSFSecret, "PUSH_TOKEN": streamPushSecret, "SETGATE_LOG_LEVEL": "warn"}
	if publicURL != "" {
		v["SETGATE_PUBLIC_URL"] = publicURL
	}
	return v
}

// runStream runs "setgate stream args…" and checks no credential shows.
func runStream(tb testing.TB, vars map[string]string, args ...string) (string, error) {
	tb.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"stream"}, args...), vars, &out, &errOut)
	all := out.String() + errOut.String()
	if err != nil {
		all += err.Error()
	}
	for _, secret := range []string{streamSSFSecret, streamPushSecret, "other-secret"} {
		if strings.Contains(all, secret) {
			tb.Fatalf("stream %v printed a credential:\n%s", args, all)
		}
	}
	return out.String(), err
}

func mustStream(tb testing.TB, vars map[string]string, args ...string) string {
	tb.Helper()
	out, err := runStream(tb, vars, args...)
	if err != nil {
		tb.Fatalf("stream %v: %v\n%s", args, err, out)
	}
	return out
}

func decodeStreamJSON[T any](tb testing.TB, out string) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		tb.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return v
}

type streamEnsureOut struct {
	Issuer string              `json:"issuer"`
	Result string              `json:"result"`
	Stream ssfadmin.StreamView `json:"stream"`
}

func countCalls(tr *transmitter.SSFTransmitter, call string) int {
	n := 0
	for _, c := range tr.Calls() {
		if c == call {
			n++
		}
	}
	return n
}

func TestStreamGet(t *testing.T) {
	tr := newStreamTransmitter(t)
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	vars := streamVars("")

	out := mustStream(t, vars, "get", "--issuers", file)
	if !strings.Contains(out, "0 stream(s)") {
		t.Fatalf("want no streams, got\n%s", out)
	}

	pollID := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{transmitter.SessionRevoked, "https://example.com/unsupported"})
	pushID := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: "https://elsewhere.example/events/x",
		AuthorizationHeader: "Bearer other-secret"}, []string{transmitter.CredentialChange})
	tr.SetStatus("paused", "maintenance")

	got := decodeStreamJSON[struct {
		Issuer                string                `json:"issuer"`
		ConfigurationEndpoint string                `json:"configuration_endpoint"`
		Streams               []ssfadmin.StreamView `json:"streams"`
	}](t, mustStream(t, vars, "get", "--json", "--issuers", file)) // flags after the action
	if got.Issuer != "acme" || got.ConfigurationEndpoint != tr.ConfigurationEndpoint() || len(got.Streams) != 2 {
		t.Fatalf("want 2 streams of acme, got %+v", got)
	}
	poll, push := got.Streams[0], got.Streams[1]
	if poll.StreamID != pollID || poll.Delivery != "poll" || poll.EndpointURL != tr.PollServer().URL() ||
		poll.Status != "paused" || poll.Reason != "maintenance" ||
		!slices.Equal(poll.EventsDelivered, []string{transmitter.SessionRevoked}) ||
		!slices.Equal(poll.EventsMissing, []string{"https://example.com/unsupported"}) {
		t.Fatalf("poll stream: %+v", poll)
	}
	if push.StreamID != pushID || push.Delivery != "push" || push.EndpointURL != "https://elsewhere.example/events/x" ||
		!push.AuthorizationHeader || push.Status != "paused" {
		t.Fatalf("push stream: %+v", push)
	}

	text := mustStream(t, vars, "--issuers", file, "get") // flags before the action; one stream issuer: no --issuer
	for _, want := range []string{"2 stream(s)", "stream " + pollID, "stream " + pushID, "delivery:          poll (" + transmitter.MethodPoll + ")",
		"endpoint_url:      https://elsewhere.example/events/x", "authorization:     set (not shown)", "paused (maintenance)",
		"not delivered:", "https://example.com/unsupported"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestStreamCreatePoll(t *testing.T) {
	tr := newStreamTransmitter(t)
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	vars := streamVars("")

	got := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--issuer", "acme", "--json"))
	streams := tr.Streams()
	if got.Result != "created" || len(streams) != 1 || got.Stream.StreamID != streams[0].StreamID {
		t.Fatalf("want one created stream, got %+v, transmitter has %+v", got, streams)
	}
	st := streams[0]
	if st.Delivery.Method != transmitter.MethodPoll || st.Description != "setgate under test" ||
		!slices.Equal(st.EventsRequested, []string{transmitter.SessionRevoked}) {
		t.Fatalf("stream as created: %+v", st)
	}
	if got.Stream.Delivery != "poll" || got.Stream.EndpointURL != tr.PollServer().URL() || got.Stream.Status != "enabled" {
		t.Fatalf("printed stream: %+v", got.Stream)
	}

	again := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--json"))
	if again.Result != "unchanged" || again.Stream.StreamID != st.StreamID || len(tr.Streams()) != 1 {
		t.Fatalf("second create: want the stream reused, got %+v and %d streams", again, len(tr.Streams()))
	}
	if n := countCalls(tr, "POST /ssf/stream"); n != 1 {
		t.Fatalf("want one create request, got %d: %v", n, tr.Calls())
	}
	if out := mustStream(t, vars, "update", "--issuers", file); !strings.Contains(out, "stream "+st.StreamID+" unchanged") {
		t.Fatalf("update with nothing to change:\n%s", out)
	}
}

func TestStreamCreatePush(t *testing.T) {
	tr := newStreamTransmitter(t)
	file := streamIssuersFile(t, tr.Issuer(), "push", []string{transmitter.SessionRevoked}, "")

	_, err := runStream(t, streamVars(""), "create", "--issuers", file)
	if err == nil || !strings.Contains(err.Error(), "SETGATE_PUBLIC_URL") {
		t.Fatalf("push without SETGATE_PUBLIC_URL: want an error naming it, got %v", err)
	}
	if len(tr.Streams()) != 0 {
		t.Fatalf("nothing may be created, got %+v", tr.Streams())
	}

	vars := streamVars("https://setgate.example/")
	out := mustStream(t, vars, "create", "--issuers", file)
	streams := tr.Streams()
	if len(streams) != 1 {
		t.Fatalf("want one stream, got %+v", streams)
	}
	st := streams[0]
	if st.Delivery.Method != transmitter.MethodPush || st.Delivery.EndpointURL != "https://setgate.example/events/acme" ||
		st.Delivery.AuthorizationHeader != "Bearer "+streamPushSecret {
		t.Fatalf("push stream as created: %+v", st.Delivery)
	}
	for _, want := range []string{"stream " + st.StreamID + " created", "endpoint_url:      https://setgate.example/events/acme",
		"authorization:     set (not shown)", "status:            enabled", "setgate stream verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	again := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--json"))
	if again.Result != "unchanged" || again.Stream.StreamID != st.StreamID || len(tr.Streams()) != 1 {
		t.Fatalf("second create: %+v, %d streams", again, len(tr.Streams()))
	}
}

func TestStreamUpdate(t *testing.T) {
	tr := newStreamTransmitter(t)
	vars := streamVars("")
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	created := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--json"))

	events := []string{transmitter.SessionRevoked, transmitter.CredentialChange, "https://example.com/unsupported"}
	file = streamIssuersFile(t, tr.Issuer(), "poll", events, "")
	got := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "update", "--issuers", file, "--json"))
	if got.Result != "updated" || got.Stream.StreamID != created.Stream.StreamID {
		t.Fatalf("want the stream updated, got %+v", got)
	}
	if n := countCalls(tr, "PATCH /ssf/stream"); n != 1 {
		t.Fatalf("want one PATCH, got %v", tr.Calls())
	}
	if st := tr.Streams(); len(st) != 1 || !slices.Equal(st[0].EventsRequested, events) {
		t.Fatalf("transmitter has %+v", st)
	}
	if !slices.Equal(got.Stream.EventsMissing, []string{"https://example.com/unsupported"}) {
		t.Fatalf("want the unsupported type shown as not delivered, got %+v", got.Stream)
	}
}

func TestStreamDelete(t *testing.T) {
	tr := newStreamTransmitter(t)
	vars := streamVars("https://setgate.example")
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	created := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--json"))

	if _, err := runStream(t, vars, "delete", "--issuers", file); err == nil || !strings.Contains(err.Error(), "--stream-id") {
		t.Fatalf("delete without an id: want an error naming --stream-id, got %v", err)
	}
	_, err := runStream(t, vars, "delete", "--issuers", file, "--stream-id", "nope")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such stream") {
		t.Fatalf("delete of an unknown stream: want the 404 and its body, got %v", err)
	}
	out := mustStream(t, vars, "delete", "--issuers", file, "--stream-id", created.Stream.StreamID)
	if !strings.Contains(out, "stream "+created.Stream.StreamID+" deleted") || len(tr.Streams()) != 0 {
		t.Fatalf("want the stream deleted, got %+v\n%s", tr.Streams(), out)
	}
	if countCalls(tr, "DELETE /ssf/stream") != 2 {
		t.Fatalf("calls: %v", tr.Calls())
	}

	// --all-mine: pushes to this setgate and poll streams, not the others.
	ours := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: "https://setgate.example/events/acme"}, nil)
	poll := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, nil)
	other := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: "https://elsewhere.example/events/acme"}, nil)
	got := decodeStreamJSON[struct {
		Streams []struct {
			StreamID string `json:"stream_id"`
			Deleted  bool   `json:"deleted"`
		} `json:"streams"`
	}](t, mustStream(t, vars, "delete", "--issuers", file, "--all-mine", "--json"))
	if len(got.Streams) != 2 || got.Streams[0].StreamID != ours || got.Streams[1].StreamID != poll || !got.Streams[0].Deleted || !got.Streams[1].Deleted {
		t.Fatalf("want %s and %s deleted, got %+v", ours, poll, got)
	}
	if st := tr.Streams(); len(st) != 1 || st[0].StreamID != other {
		t.Fatalf("want only %s left, got %+v", other, st)
	}
}

// pushSink records the SETs pushed to it.
type pushSink struct {
	mu   sync.Mutex
	sets []string
	got  chan struct{}
}

func newPushSink(tb testing.TB) (*pushSink, string) {
	s := &pushSink{got: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.sets = append(s.sets, string(b))
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		s.got <- struct{}{}
	}))
	tb.Cleanup(srv.Close)
	return s, srv.URL + "/events/acme"
}

func TestStreamVerify(t *testing.T) {
	tr := newStreamTransmitter(t)
	sink, endpoint := newPushSink(t)
	vars := streamVars("")
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")

	if _, err := runStream(t, vars, "verify", "--issuers", file); err == nil || !strings.Contains(err.Error(), "no stream") {
		t.Fatalf("verify without a stream: want an error, got %v", err)
	}

	pushID := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPush, EndpointURL: endpoint}, []string{transmitter.SessionRevoked})
	out := mustStream(t, vars, "verify", "--issuers", file) // the only stream
	for _, want := range []string{"verification requested for stream " + pushID, "setgate tail 'secevent.ssf.verification.acme'"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	select {
	case <-sink.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no verification event was pushed")
	}
	sink.mu.Lock()
	set := sink.sets[0]
	sink.mu.Unlock()
	parts := strings.Split(set, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", set)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Events map[string]map[string]any `json:"events"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	ev, ok := claims.Events[transmitter.Verification]
	if !ok {
		t.Fatalf("want a verification event, got %s", raw)
	}
	if _, has := ev["state"]; has {
		t.Fatalf("the verification must be requested without state, got %v", ev)
	}

	// Two streams: verify needs --stream-id unless one is this setgate's
	// (a poll stream for a poll issuer).
	pollID := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, nil)
	got := decodeStreamJSON[struct {
		StreamID  string `json:"stream_id"`
		Requested bool   `json:"requested"`
		Subject   string `json:"subject"`
	}](t, mustStream(t, vars, "verify", "--issuers", file, "--json"))
	if got.StreamID != pollID || !got.Requested || got.Subject != "secevent.ssf.verification.acme" {
		t.Fatalf("verify --json: %+v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(tr.Delivered(), func(d transmitter.SSFDelivered) bool {
		return d.StreamID == pollID && d.EventType == transmitter.Verification
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("no verification event delivered to the poll stream: %+v", tr.Delivered())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, nil)
	if _, err := runStream(t, vars, "verify", "--issuers", file); err == nil || !strings.Contains(err.Error(), "--stream-id") {
		t.Fatalf("verify with several candidate streams: want an error asking for --stream-id, got %v", err)
	}
	if _, err := runStream(t, vars, "verify", "--issuers", file, "--stream-id", pushID); err != nil {
		t.Fatal(err)
	}
	if n := countCalls(tr, "POST /ssf/verify"); n != 3 {
		t.Fatalf("want 3 verification requests, got %v", tr.Calls())
	}
}

func TestStreamErrors(t *testing.T) {
	tr := newStreamTransmitter(t)
	plain := fmt.Sprintf(`  - name: plain
    issuer: https://plain.example/
    audience: [%s]
    jwks_uri: https://plain.example/jwks
    push:
      bearer_token_env: PUSH_TOKEN
`, verbAudience)
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, plain)
	onlyPlain := filepath.Join(t.TempDir(), "plain.yaml")
	if err := os.WriteFile(onlyPlain, []byte("issuers:\n"+plain), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := streamVars("")
	wrongToken := streamVars("")
	wrongToken["SSF_TOKEN"] = "other-secret"

	tests := []struct {
		name  string
		vars  map[string]string
		fault *transmitter.SSFFaults
		args  []string
		want  []string
	}{
		{"no action", vars, nil, []string{"--issuers", file}, []string{"name an action"}},
		{"unknown action", vars, nil, []string{"list", "--issuers", file}, []string{`unknown action "list"`}},
		{"no issuers file", vars, nil, []string{"get"}, []string{"--issuers or SETGATE_ISSUERS_FILE"}},
		{"unknown issuer", vars, nil, []string{"get", "--issuers", file, "--issuer", "nope"}, []string{`no issuer "nope"`, "acme, plain"}},
		{"issuer without stream block", vars, nil, []string{"get", "--issuers", file, "--issuer", "plain"}, []string{`issuer "plain" has no stream block`}},
		{"no stream block at all", vars, nil, []string{"get", "--issuers", onlyPlain}, []string{"no issuer in the file has a stream block"}},
		{"all-mine and stream-id", vars, nil, []string{"delete", "--issuers", file, "--all-mine", "--stream-id", "x"}, []string{"exclude each other"}},
		{"all-mine outside delete", vars, nil, []string{"get", "--issuers", file, "--all-mine"}, []string{"only for delete"}},
		{"transmitter error", vars, &transmitter.SSFFaults{ConfigStatus: http.StatusInternalServerError}, []string{"get", "--issuers", file},
			[]string{`stream get: issuer "acme"`, "500 Internal Server Error", "injected"}},
		{"wrong credential", wrongToken, nil, []string{"create", "--issuers", file}, []string{"401 Unauthorized", "authentication_failed"}},
		{"discovery fails", vars, &transmitter.SSFFaults{DiscoveryStatus: http.StatusNotFound}, []string{"verify", "--issuers", file}, []string{"discovery", "404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				tr.SetFaults(*tt.fault)
				defer tr.SetFaults(transmitter.SSFFaults{})
			}
			_, err := runStream(t, tt.vars, tt.args...)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	t.Run("transmitter down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		downFile := streamIssuersFile(t, "http://"+ln.Addr().String()+"/", "poll", []string{transmitter.SessionRevoked}, "")
		ln.Close() // nothing listens there any more
		for _, action := range []string{"get", "create", "delete --stream-id x", "verify"} {
			_, err := runStream(t, vars, append(strings.Fields(action), "--issuers", downFile)...)
			if err == nil || !strings.Contains(err.Error(), "discovery") || !strings.Contains(err.Error(), "connect") {
				t.Errorf("%s: want a discovery connection error, got %v", action, err)
			}
		}
	})
}

func TestStreamHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"stream", "--help"}, nil, &out, io.Discard); err == nil {
		t.Fatal("want flag.ErrHelp")
	}
	for _, want := range []string{"get|create|update|delete|verify", "--all-mine", "SETGATE_PUBLIC_URL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	_ = run(context.Background(), []string{"help"}, nil, &out, io.Discard)
	if !strings.Contains(out.String(), "setgate stream") {
		t.Errorf("usage lacks the stream verb:\n%s", out.String())
	}
}
