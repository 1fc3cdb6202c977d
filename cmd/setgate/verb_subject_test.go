package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
)

// runSubject runs "setgate subject args…".
func runSubject(tb testing.TB, vars map[string]string, args ...string) (string, error) {
	tb.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"subject"}, args...), vars, &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), streamSSFSecret) {
		tb.Fatalf("subject %v printed a credential", args)
	}
	return out.String(), err
}

// TestSubjectVerb: subjects of any RFC 9493 format are added to and
// removed from the stream, found without listing when the transmitter
// refuses to list (--stream-id, or stream.stream_id).
func TestSubjectVerb(t *testing.T) {
	tr := newStreamTransmitter(t)
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "")
	vars := streamVars("")
	id := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "create", "--issuers", file, "--json")).Stream.StreamID

	adds := []struct {
		args []string
		want string
	}{
		{[]string{"--format", "email", "--email", "alice@example.com"}, `{"email":"alice@example.com","format":"email"}`},
		{[]string{"--format", "iss_sub", "--iss", "https://idp.example/", "--sub", "42"}, `{"format":"iss_sub","iss":"https://idp.example/","sub":"42"}`},
		{[]string{"--format", "phone_number", "--phone-number", "+12065550100"}, `{"format":"phone_number","phone_number":"+12065550100"}`},
		{[]string{"--format", "saml_assertion_id", "--member", "issuer=https://idp.example/", "--assertion-id", "a1"}, `{"assertion_id":"a1","format":"saml_assertion_id","issuer":"https://idp.example/"}`},
		{[]string{"--subject", `{"format":"opaque","id":"u-7"}`}, `{"format":"opaque","id":"u-7"}`},
	}
	var want []string
	for _, a := range adds {
		out, err := runSubject(t, vars, append([]string{"add", "--issuers", file, "--issuer", "acme"}, a.args...)...)
		if err != nil {
			t.Fatalf("add %v: %v", a.args, err)
		}
		if !strings.Contains(out, "added to stream "+id) {
			t.Fatalf("add %v: output %q", a.args, out)
		}
		want = append(want, a.want)
	}
	if got := tr.Subjects(id); !slices.Equal(got, want) {
		t.Fatalf("transmitter subjects:\nwant %q\ngot  %q", want, got)
	}

	// The transmitter refuses to list: --stream-id names the stream.
	tr.SetFaults(transmitter.SSFFaults{ListRefused: true})
	if _, err := runSubject(t, vars, "remove", "--issuers", file, "--format", "email", "--email", "alice@example.com"); err == nil ||
		!strings.Contains(err.Error(), "--stream-id") {
		t.Fatalf("remove without a stream while listing is refused: want a hint at --stream-id, got %v", err)
	}
	if _, err := runSubject(t, vars, "remove", "--issuers", file, "--stream-id", id, "--format", "email", "--email", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := tr.Subjects(id); slices.Contains(got, want[0]) || len(got) != len(want)-1 {
		t.Fatalf("want alice removed, got %q", got)
	}

	// Bad subjects are refused before anything is sent.
	calls := len(tr.Calls())
	for _, bad := range [][]string{
		{"--format", "email", "--email", "not-an-address"},
		{"--format", "email"},
		{"--format", "email", "--email", "a@example.com", "--sub", "x"},
		{"--subject", `{"format":"email","email":"a@example.com"}`, "--format", "email"},
		{},
	} {
		if _, err := runSubject(t, vars, append([]string{"add", "--issuers", file, "--stream-id", id}, bad...)...); err == nil {
			t.Errorf("add %v: want an error", bad)
		}
	}
	if n := len(tr.Calls()); n != calls {
		t.Fatalf("bad subjects reached the transmitter: %v", tr.Calls()[calls:])
	}
}

// TestStreamStatusAndReplace: the receiver changes the stream's status
// (SSF 1.0 §8.1.2.2) and replaces its configuration (PUT), with the stream
// pinned by stream.stream_id where the transmitter refuses to list.
func TestStreamStatusAndReplace(t *testing.T) {
	tr := newStreamTransmitter(t)
	vars := streamVars("")
	id := tr.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, []string{transmitter.CredentialChange})
	file := streamIssuersFile(t, tr.Issuer(), "poll", []string{transmitter.SessionRevoked}, "      stream_id: "+id+"\n")
	tr.SetFaults(transmitter.SSFFaults{ListRefused: true, StreamIDQueryOnly: true, NoAud: true})

	out := mustStream(t, vars, "status", "paused", "--reason", "maintenance window", "--issuers", file)
	if !strings.Contains(out, "stream "+id+" is paused (maintenance window)") {
		t.Fatalf("status output:\n%s", out)
	}
	if st, reason := tr.StreamStatus(id); st != "paused" || reason != "maintenance window" {
		t.Fatalf("transmitter: want paused (maintenance window), got %s (%s)", st, reason)
	}
	mustStream(t, vars, "status", "enabled", "--issuers", file)
	if st, _ := tr.StreamStatus(id); st != "enabled" {
		t.Fatalf("transmitter: want enabled, got %s", st)
	}

	got := decodeStreamJSON[streamEnsureOut](t, mustStream(t, vars, "replace", "--issuers", file, "--json"))
	st := tr.Streams()[0]
	if got.Result != "replaced" || tr.Replaced() != 1 || !slices.Equal(st.EventsRequested, []string{transmitter.SessionRevoked}) ||
		st.Description != "setgate under test" {
		t.Fatalf("want the configuration replaced, got %+v; transmitter has %+v", got, st)
	}
	if out := mustStream(t, vars, "get", "--issuers", file); !strings.Contains(out, "stream "+id) {
		t.Fatalf("get of the pinned stream:\n%s", out)
	}

	for _, bad := range [][]string{{"status"}, {"status", "sleeping"}, {"get", "--reason", "x"}} {
		if _, err := runStream(t, vars, append(bad, "--issuers", file)...); err == nil {
			t.Errorf("stream %v: want an error", bad)
		}
	}
}
