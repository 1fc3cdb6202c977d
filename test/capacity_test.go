package test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
)

// capacityBytes is the stream's byte limit in the capacity tests: a few
// hundred events of about 1.5 KB.
const capacityBytes = 256 << 10

// pushFresh signs a new SET as acme and pushes it once.
func pushFresh(t *testing.T, g *gatewayProc, i int) (string, transmitter.Response) {
	t.Helper()
	jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, fmt.Sprintf("user%d@acme.example", i))
	if err != nil {
		t.Fatal(err)
	}
	return jti, g.pushAs(t, "acme", g.acmeToken, set)
}

// TestStreamFullDiscardNew fills a small stream under discard new (the
// default): once it is full every push gets 503 with Retry-After, never
// 202 or 400, and every SET that got a 202 is in the stream.
func TestStreamFullDiscardNew(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Env: map[string]string{
		"SETGATE_STREAM_MAX_BYTES": "256Ki",
	}})

	var accepted []string
	refused := 0
	for i := 0; refused < 5; i++ {
		if i > 2000 {
			t.Fatalf("%d SETs accepted into a %d-byte stream without a refusal", len(accepted), capacityBytes)
		}
		jti, resp := pushFresh(t, g, i)
		switch resp.Status {
		case http.StatusAccepted:
			if refused > 0 {
				t.Fatalf("push %d: 202 after the stream was full", i)
			}
			accepted = append(accepted, jti)
		case http.StatusServiceUnavailable:
			if ra := resp.Header.Get("Retry-After"); ra == "" {
				t.Fatalf("push %d: 503 without Retry-After", i)
			}
			refused++
		default:
			t.Fatalf("push %d: want 202 or 503, got %d %s", i, resp.Status, resp.Body)
		}
	}
	if len(accepted) == 0 {
		t.Fatal("no SET was accepted")
	}

	msgs := readStream(t, ns.URL())
	got := byJTI(msgs)
	for _, jti := range accepted {
		if len(got[jti]) != 1 {
			t.Errorf("SET %s got 202 but is stored %d times", jti, len(got[jti]))
		}
	}
	if len(msgs) != len(accepted) {
		t.Errorf("want %d events stored (the 202s), got %d", len(accepted), len(msgs))
	}

	fams := scrape(t, g)
	if v := value(fams, "setgate_stream_max_bytes", nil); v != capacityBytes {
		t.Errorf("setgate_stream_max_bytes: want %d, got %v", capacityBytes, v)
	}
	if v := value(fams, "setgate_stream_messages", nil); v != float64(len(accepted)) {
		t.Errorf("setgate_stream_messages: want %d, got %v", len(accepted), v)
	}
	if v := value(fams, "setgate_stream_bytes", nil); v <= 0.8*capacityBytes || v > capacityBytes {
		t.Errorf("setgate_stream_bytes: want above 80%% of %d and at most it, got %v", capacityBytes, v)
	}
	if v := value(fams, "setgate_stream_discarded_events_total", nil); v != 0 {
		t.Errorf("setgate_stream_discarded_events_total: want 0 under discard new, got %v", v)
	}
	if v := value(fams, "setgate_sets_not_persisted_total", map[string]string{"issuer": "acme"}); v != float64(refused) {
		t.Errorf("setgate_sets_not_persisted_total: want %d, got %v", refused, v)
	}
	t.Logf("%d SETs accepted into %d bytes, then %d refused with 503", len(accepted), capacityBytes, refused)
}

// TestStreamFullDiscardOld pushes twice what a small stream holds under
// discard old: every push gets 202, the oldest events are gone, the newest
// are there, and the removed ones are counted.
func TestStreamFullDiscardOld(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Env: map[string]string{
		"SETGATE_STREAM_MAX_BYTES": "256Ki",
		"SETGATE_STREAM_DISCARD":   "old",
	}})
	// A first scrape sets the baseline the monitor counts from.
	if v := value(scrape(t, g), "setgate_stream_discarded_events_total", nil); v != 0 {
		t.Fatalf("setgate_stream_discarded_events_total before traffic: want 0, got %v", v)
	}

	const n = 500 // about three times what 256 KiB holds
	jtis := make([]string, n)
	for i := range n {
		jti, resp := pushFresh(t, g, i)
		if resp.Status != http.StatusAccepted {
			t.Fatalf("push %d: want 202 under discard old, got %d %s", i, resp.Status, resp.Body)
		}
		jtis[i] = jti
	}

	msgs := readStream(t, ns.URL())
	if len(msgs) == 0 || len(msgs) >= n {
		t.Fatalf("want the stream to hold fewer than %d events, got %d", n, len(msgs))
	}
	got := byJTI(msgs)
	if len(got[jtis[0]]) != 0 {
		t.Errorf("the oldest SET %s is still stored", jtis[0])
	}
	if len(got[jtis[n-1]]) != 1 {
		t.Errorf("the newest SET %s is not stored", jtis[n-1])
	}
	// What is stored is exactly the newest events, in order.
	for i, m := range msgs {
		if want := jtis[n-len(msgs)+i]; m.jti() != want {
			t.Fatalf("stored event %d: want SET %s, got %s", i, want, m.jti())
		}
	}
	removed := float64(n - len(msgs))
	checkFor(t, waitShort, poll, func() error {
		fams := scrape(t, g)
		if v := value(fams, "setgate_stream_discarded_events_total", nil); v != removed {
			return fmt.Errorf("setgate_stream_discarded_events_total: want %v, got %v", removed, v)
		}
		if v := value(fams, "setgate_stream_messages", nil); v != float64(len(msgs)) {
			return fmt.Errorf("setgate_stream_messages: want %d, got %v", len(msgs), v)
		}
		return nil
	})
	t.Logf("%d SETs pushed, %d kept, %v removed and counted", n, len(msgs), removed)
}

// TestPushRateLimit: an issuer with push.rate_limit in the issuers file
// gets 429 with Retry-After once its burst is spent; the other issuer is
// not limited, and what was refused is not stored.
func TestPushRateLimit(t *testing.T) {
	t.Parallel()
	is := newIssuers(t)
	raw, err := os.ReadFile(is.file)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "    algorithms: [ES256]\n    push:\n"
	if !strings.Contains(string(raw), anchor) {
		t.Fatalf("issuers file has no %q", anchor)
	}
	writeFile(t, is.file, strings.Replace(string(raw), anchor, anchor+"      rate_limit: 1/h\n      burst: 3\n", 1))
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Issuers: is})

	var accepted []string
	for i := range 5 {
		jti, resp := pushFresh(t, g, i)
		switch {
		case i < 3 && resp.Status == http.StatusAccepted:
			accepted = append(accepted, jti)
		case i >= 3 && resp.Status == http.StatusTooManyRequests:
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 3600 {
				t.Fatalf("push %d: want Retry-After of 1 to 3600 seconds, got %q", i, resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("push %d: got %d %s", i, resp.Status, resp.Body)
		}
	}
	_, set, err := g.globex.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "bob@globex.example")
	if err != nil {
		t.Fatal(err)
	}
	if resp := g.pushAs(t, "globex", g.globexToken, set); resp.Status != http.StatusAccepted {
		t.Fatalf("globex: want 202 (no rate limit), got %d %s", resp.Status, resp.Body)
	}
	if got := readStream(t, ns.URL()); len(got) != len(accepted)+1 {
		t.Fatalf("want %d events stored (the 202s), got %d", len(accepted)+1, len(got))
	}
}

// TestPollStreamFull: a poll issuer's SETs beyond a full stream (discard
// new) are not acknowledged and stay with the transmitter; once the
// limit is raised (a restart with a larger one) every SET is stored once
// and acknowledged.
func TestPollStreamFull(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	r := newPollRig(t, pollRigOptions{MaxEvents: 10})
	g := r.gateway(t, ns, map[string]string{"SETGATE_STREAM_MAX_BYTES": "48Ki"})

	const n = 60 // about twice what 48 KiB holds
	sent := make([]sentSET, n)
	for i := range n {
		sent[i] = r.enqueue(t, i)
	}
	checkFor(t, waitLong, poll, func() error {
		if len(logRecords(g.log, "SETs not persisted; they stay with the transmitter")) == 0 {
			return fmt.Errorf("no batch has failed to persist yet; %d acked", len(r.ps.Acked()))
		}
		return nil
	})
	msgs := readStream(t, ns.URL())
	checkAckedStored(t, r.ps, msgs)
	if acked := len(r.ps.Acked()); acked >= n || len(msgs) >= n {
		t.Fatalf("want fewer than %d SETs acknowledged and stored under a 48 KiB limit, got %d acked, %d stored", n, acked, len(msgs))
	}
	t.Logf("stream full: %d of %d SETs stored, %d acknowledged, %d pending at the transmitter", len(msgs), n, len(r.ps.Acked()), r.ps.Pending())

	g.terminate()
	if err := g.wait(waitLong); err != nil {
		t.Fatalf("setgate exit: %v", err)
	}
	r.gateway(t, ns, map[string]string{"SETGATE_STREAM_MAX_BYTES": "1Mi"})
	waitAcked(t, r.ps, sent)
	msgs = readStream(t, ns.URL())
	checkStoredOnce(t, msgs, r, sent)
	checkAckedStored(t, r.ps, msgs)
}
