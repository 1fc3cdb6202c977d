package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(samples)
	want := Latency{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, N: 100}
	if got != want {
		t.Errorf("want %+v, got %+v", want, got)
	}
	if got := Summarize([]time.Duration{time.Second}); got.P50 != time.Second || got.P99 != time.Second {
		t.Errorf("one sample: want it as every percentile, got %+v", got)
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("no samples: want zero, got %+v", got)
	}
}

func TestErrorKinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := net.Dial("tcp", addr)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), "transport timeout"},
		{"refused", refused, "transport connection refused"},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "transport connection closed"},
		{"other", errors.New("boom"), "transport other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TransportErrorKind(tt.err); got != tt.want {
				t.Errorf("want %q, got %q (%v)", tt.want, got, tt.err)
			}
		})
	}
	if got := HTTPErrorKind(400, "invalid_key"); got != "http 400 invalid_key" {
		t.Errorf("want %q, got %q", "http 400 invalid_key", got)
	}
	if got := HTTPErrorKind(503, ""); got != "http 503" {
		t.Errorf("want %q, got %q", "http 503", got)
	}
}

// pushServer answers each SET by its body: "ok" 202, "bad" 400
// invalid_key, "close" 202 with Connection: close, "big" a 400 whose body
// is longer than the load generator reads, anything else 503; a request
// without the bearer token gets 401, one that is not a complete RFC 8935
// push (method, media type, length) 418. It serves https when tlsOn, and
// counts the connections opened.
func pushServer(tb testing.TB, tlsOn bool) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/secevent+jwt" || r.ContentLength != int64(len(body)) {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		switch string(body) {
		case "ok":
			w.WriteHeader(http.StatusAccepted)
		case "bad":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"err":"invalid_key","description":"no"}`)
		case "close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		case "big":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"err":"invalid_request","description":"`+strings.Repeat("x", maxAnswer)+`"}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	tb.Cleanup(srv.Close)
	return srv, &conns
}

func TestPushCount(t *testing.T) {
	srv, conns := pushServer(t, false)
	var items []Item
	for i := range 300 {
		body := []string{"ok", "ok", "bad", "ok", "down"}[i%5]
		items = append(items, Item{Target: 0, Body: []byte(body)})
	}
	var progress bytes.Buffer
	res, err := Push(t.Context(), LoadConfig{
		Targets: []Target{{URL: srv.URL, Bearer: "tok"}}, Concurrency: 4, Progress: &progress, Label: "push",
	}, items)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 300 || res.Accepted != 180 || len(res.Latencies) != 180 || res.Exhausted {
		t.Errorf("want 300 sent, 180 accepted with latencies, not exhausted; got %d, %d, %d, %v", res.Sent, res.Accepted, len(res.Latencies), res.Exhausted)
	}
	if want := map[string]int{"http 400 invalid_key": 60, "http 503": 60}; fmt.Sprint(res.Errors) != fmt.Sprint(want) {
		t.Errorf("want errors %v, got %v", want, res.Errors)
	}
	for i, o := range res.Outcomes {
		want := []Outcome{Acked, Acked, Rejected, Acked, Unknown}[i%5]
		if o != want {
			t.Fatalf("item %d: want %s, got %s", i, want, o)
		}
	}
	if len(res.Lags) != 0 {
		t.Errorf("want no lags without a rate, got %d", len(res.Lags))
	}
	if n := conns.Load(); n > 4 {
		t.Errorf("want at most 4 keep-alive connections, got %d", n)
	}
}

func TestPushDuration(t *testing.T) {
	srv, _ := pushServer(t, false)
	items := []Item{{Body: []byte("ok")}, {Body: []byte("ok")}}
	res, err := Push(t.Context(), LoadConfig{Targets: []Target{{URL: srv.URL, Bearer: "tok"}}, Concurrency: 2, Duration: time.Minute}, items)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exhausted || res.Accepted != 2 {
		t.Errorf("want the two items sent and the pool exhausted, got %d accepted, exhausted %v", res.Accepted, res.Exhausted)
	}
	if _, err := Push(t.Context(), LoadConfig{Targets: []Target{{URL: srv.URL}}}, items); err == nil {
		t.Error("want an error for concurrency 0")
	}
}

func TestPushRate(t *testing.T) {
	srv, _ := pushServer(t, false)
	items := make([]Item, 20)
	for i := range items {
		items[i].Body = []byte("ok")
	}
	res, err := Push(t.Context(), LoadConfig{Targets: []Target{{URL: srv.URL, Bearer: "tok"}}, Concurrency: 4, Rate: 200}, items)
	if err != nil {
		t.Fatal(err)
	}
	// The last of 20 items is due 95ms after the start.
	if res.Accepted != 20 || res.Elapsed < 95*time.Millisecond {
		t.Errorf("want 20 SETs paced over at least 95ms, got %d in %v", res.Accepted, res.Elapsed)
	}
	if len(res.Lags) != 20 {
		t.Errorf("want the lag of each of the 20 paced requests, got %d", len(res.Lags))
	}
	// Paced to end within a duration: items due later are not sent.
	res, err = Push(t.Context(), LoadConfig{Targets: []Target{{URL: srv.URL, Bearer: "tok"}}, Concurrency: 4, Rate: 100, Duration: 55 * time.Millisecond}, items)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 4 || res.Sent > 7 || res.Outcomes[19] != NotSent || res.Exhausted {
		t.Errorf("want about 6 SETs sent in 55ms at 100/s, not exhausted; got %d, %v", res.Sent, res.Exhausted)
	}
}

func TestRun(t *testing.T) {
	c := Run(t.Context(), 4, 0, 100, func(_ context.Context, i int) error {
		if i%10 == 0 {
			return fmt.Errorf("op %d", i)
		}
		return nil
	})
	if c.OK != 90 || c.Failed != 10 || c.FirstErr == nil || !strings.HasPrefix(c.FirstErr.Error(), "op ") {
		t.Errorf("want 90 ok and 10 failed with the first error, got %+v", c)
	}
	c = Run(t.Context(), 2, 20*time.Millisecond, 0, func(context.Context, int) error { time.Sleep(time.Millisecond); return nil })
	if c.OK == 0 || c.Elapsed < 20*time.Millisecond || c.Rate() <= 0 {
		t.Errorf("want calls until the duration passed, got %+v", c)
	}
	if got := c.Add(Ceiling{OK: 1, Elapsed: time.Second}); got.OK != c.OK+1 || got.Elapsed != c.Elapsed+time.Second {
		t.Errorf("Add: got %+v", got)
	}
}

// TestPlainJWT checks ceiling (0)'s operation: SETs signed by Key.Sign
// verify against their own public key and fail against another key or
// when the algorithm is not the one allowed.
func TestPlainJWT(t *testing.T) {
	newKey := func() Key {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return Key{ID: "k", Alg: "ES256", Signer: k}
	}
	k1, k2 := newKey(), newKey()
	tok, err := k1.Sign(map[string]any{"iss": "https://tx.example/", "jti": "1", "iat": time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		alg     string
		key     crypto.PublicKey
		wantErr bool
	}{
		{"own key", "ES256", k1.Signer.Public(), false},
		{"another key", "ES256", k2.Signer.Public(), true},
		{"algorithm not allowed", "RS256", k1.Signer.Public(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := PlainJWT(tt.alg, []string{string(tok)}, []crypto.PublicKey{tt.key})
			if err := op(t.Context(), 3); (err != nil) != tt.wantErr {
				t.Errorf("want error %v, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []Outcome
		counts   []int32
		foreign  int
		others   int
		strict   bool
		pass     bool
		want     Verdict
	}{
		{"exact", []Outcome{Acked, Acked, Rejected, NotSent}, []int32{2, 2, 0, 0}, 0, 0, true, true,
			Verdict{Acked: 2}},
		{"missing", []Outcome{Acked, Acked}, []int32{2, 1}, 0, 0, true, false,
			Verdict{Acked: 2, Missing: 1}},
		{"duplicated", []Outcome{Acked}, []int32{3}, 0, 0, true, false,
			Verdict{Acked: 1, Duplicated: 1}},
		{"rejected but stored", []Outcome{Rejected, NotSent}, []int32{2, 0}, 0, 0, true, false,
			Verdict{Unexpected: 1}},
		{"never sent but stored", []Outcome{NotSent}, []int32{1}, 0, 0, true, false,
			Verdict{Unexpected: 1}},
		{"stored after a 503", []Outcome{Unknown, Unknown}, []int32{2, 0}, 0, 0, true, true,
			Verdict{StoredUnknown: 1}},
		{"foreign number", []Outcome{Acked}, []int32{2}, 1, 0, false, false,
			Verdict{Acked: 1, Foreign: 1}},
		{"others in own stream", []Outcome{Acked}, []int32{2}, 0, 3, true, false,
			Verdict{Acked: 1, Others: 3}},
		{"others in a shared stream", []Outcome{Acked}, []int32{2}, 0, 3, false, true,
			Verdict{Acked: 1, Others: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Stored{Counts: tt.counts, Foreign: tt.foreign, Others: tt.others}
			for _, c := range tt.counts {
				st.Messages += int(c)
			}
			st.Messages += tt.foreign + tt.others
			got := Check(tt.outcomes, 2, st, tt.strict)
			if got.Passed != tt.pass {
				t.Errorf("want passed %v, got %v (%v)", tt.pass, got.Passed, got.Problems)
			}
			if got.Passed != (len(got.Problems) == 0) {
				t.Errorf("want problems exactly when failing, got %v", got.Problems)
			}
			tt.want.Passed, tt.want.Messages, tt.want.Problems = got.Passed, st.Messages, got.Problems
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("want %+v, got %+v", tt.want, got)
			}
		})
	}
}

func TestStoredCount(t *testing.T) {
	st := Stored{Counts: make([]int32, 3)}
	for _, jti := range []string{"run-0", "run-2", "run-2", "run-3", "run-x", "other-1", ""} {
		st.count(jti, "run-")
	}
	if fmt.Sprint(st.Counts) != "[1 0 2]" || st.Foreign != 2 || st.Others != 2 || st.Messages != 7 {
		t.Errorf("got %+v", st)
	}
}

func TestArena(t *testing.T) {
	a, packed, err := NewArena([][]byte{[]byte("one"), {}, []byte("three")})
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) != 3 || string(packed[0]) != "one" || len(packed[1]) != 0 || string(packed[2]) != "three" || a.Size() != 8 {
		t.Fatalf("got %q, size %d", packed, a.Size())
	}
	if cap(packed[0]) != 3 {
		t.Errorf("want each copy capped at its length, got cap %d", cap(packed[0]))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestReportText(t *testing.T) {
	rep := &Report{
		Target: "in-process", Issuers: 2, KeysPerIssuer: 1, Alg: "ES256", EventsPerSET: 1, Concurrency: 32,
		PlainCeiling:   &CeilingReport{Goroutines: 2, SETsPerSec: 25000},
		VerifyCeiling:  &CeilingReport{Goroutines: 2, SETsPerSec: 20000, OtherCPUCores: 0.5},
		PublishCeiling: &CeilingReport{Goroutines: 32, SETsPerSec: 12000},
		Push: &PushReport{SETsPerSec: 10000, Errors: map[string]int{"http 503": 2, "transport timeout": 5},
			JWKSFetches: 0},
		Check: &Verdict{Passed: true, Acked: 10, Messages: 10},
	}
	rep.Ratios = Ratios{PushToPlain: Ratio(10000, 25000), VerifyToPlain: Ratio(20000, 25000),
		PushToVerify: Ratio(10000, 20000), PushToPublish: Ratio(10000, 12000), PollToPush: Ratio(0, 10000)}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"push / ceiling (0) 0.40, push / ceiling (a) 0.50, push / ceiling (b) 0.83, ceiling (a) / ceiling (0) 0.80\n",
		"ceiling (0)       25000 SETs/s  golang-jwt v5 jwt.Parse, ES256, fixed public key, 2 goroutines",
		"transport timeout: 5, http 503: 2", "0 fetches",
		"PASS: the stream holds the 10 acknowledged SETs once each", "(other processes: 0.50 cores)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMachineCPU(t *testing.T) {
	a := MachineCPU{Busy: 100, Total: 400, CPUs: 2}
	b := MachineCPU{Busy: 250, Total: 600, CPUs: 2}
	if got := a.BusyCores(b); got != 1.5 {
		t.Errorf("want 1.5 cores busy, got %v", got)
	}
	if got := b.BusyCores(a); got != 0 {
		t.Errorf("want 0 for readings out of order, got %v", got)
	}
	if m, ok := ReadMachineCPU(); ok && (m.CPUs < 1 || m.Busy > m.Total) {
		t.Errorf("implausible /proc/stat reading %+v", m)
	}
	if v, ok := statusKB([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t1024 kB\n"), "VmHWM:"); !ok || v != 2<<20 {
		t.Errorf("want VmHWM 2 MiB, got %d %v", v, ok)
	}
}
