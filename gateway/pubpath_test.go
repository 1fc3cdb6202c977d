package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// TestPushReusedBodies: push bodies are read into reused buffers, so
// every SET the stream holds must be exactly one that was pushed and
// answered 202. Concurrent pushes of SETs of different lengths (with and
// without Content-Length) each arrive once, byte for byte; every answer
// carries its own request id.
func TestPushReusedBodies(t *testing.T) {
	r := newPushRig(t, bridge.SyncInterval)
	const n = 60
	sets := r.sets(t, n)
	// Different lengths: a padded jti would change the signature, so
	// vary what surrounds the token instead (verify trims white space).
	for i := range sets {
		sets[i] = append(bytes.Repeat([]byte(" "), i*37), sets[i]...)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, body := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rd io.Reader = bytes.NewReader(body)
			if i%2 == 1 {
				rd = io.MultiReader(rd) // no Content-Length: chunked
			}
			req, _ := http.NewRequest(http.MethodPost, r.url, rd)
			req.Header.Set("Content-Type", "application/secevent+jwt")
			req.Header.Set("Authorization", "Bearer "+r.bearer)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("push %d: want 202, got %d", i, resp.StatusCode)
				return
			}
			ids[i] = resp.Header.Get("X-Request-Id")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := r.br.JetStream().Stream(ctx, "SECEVENTS")
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool, n)
	for _, body := range sets {
		want[strings.TrimSpace(string(body))] = true
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var env bridge.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if !want[env.SET] {
			t.Fatalf("message %d holds a SET that was not pushed (or twice): %.60q", seq, env.SET)
		}
		delete(want, env.SET)
	}
	if len(want) != 0 {
		t.Fatalf("%d pushed SETs not in the stream", len(want))
	}
	seen := make(map[string]bool, n)
	for i, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("push %d: want its own X-Request-Id, got %q", i, id)
		}
		seen[id] = true
	}
}

// TestVerifiedSETKeepsNoBody: the push handler reuses a body's buffer
// once Accept returned, which is safe only while what verify returns
// holds copies and no part of the body itself. Overwriting the bytes
// after Verify leaves the SET (and a rejection) unchanged.
func TestVerifiedSETKeepsNoBody(t *testing.T) {
	r := newPushRig(t, bridge.SyncInterval)
	ctx := context.Background()
	token := r.sets(t, 1)[0]
	for _, tt := range []struct {
		name string
		raw  []byte
	}{
		{"valid", token},
		{"rejected", append(append([]byte(nil), token[:len(token)-4]...), "AAAA"...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			buf := append([]byte(nil), tt.raw...)
			set, err := r.src.Verifier.Verify(ctx, buf)
			wantSet, wantErr := r.src.Verifier.Verify(ctx, append([]byte(nil), tt.raw...))
			for i := range buf {
				buf[i] = 'x'
			}
			if !reflect.DeepEqual(set, wantSet) {
				t.Fatalf("the SET changed with the bytes it was verified from:\nwant %+v\ngot  %+v", wantSet, set)
			}
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("the error changed with the bytes: want %v, got %v", wantErr, err)
			}
		})
	}
}

// intakeFunc is an intake.Intake whose Accept is a function.
type intakeFunc func(ctx context.Context) (intake.Result, error)

func (f intakeFunc) Accept(ctx context.Context, _ *intake.Source, _ []byte, _ intake.Delivery) (intake.Result, error) {
	return f(ctx)
}

func (f intakeFunc) Reject(context.Context, *intake.Source, *verify.Error, intake.Delivery) {}

// recordHandler keeps the request_id attribute of every record.
type recordHandler struct {
	mu  sync.Mutex
	ids []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "request_id" {
			id = a.Value.String()
		}
		return true
	})
	h.ids = append(h.ids, id)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// TestPushRequestID: every push answer carries X-Request-Id, the client's
// own when it sent one, otherwise a new one per request; the records
// logged with the request's context (here the 503's warning) carry the
// same id, and the intake sees the request's cancellation.
func TestPushRequestID(t *testing.T) {
	rec := &recordHandler{}
	var sawDone atomic.Bool
	in := intakeFunc(func(ctx context.Context) (intake.Result, error) {
		sawDone.Store(ctx.Done() != nil)
		return intake.Result{}, errors.Join(bridge.ErrUnavailable, errors.New("no ack"))
	})
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, Logger: slog.New(gateway.LogHandler(rec))})
	gw.SetIssuers([]gateway.Issuer{{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok")}})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	send := func(id string) string {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/events/acme", strings.NewReader("x.y.z"))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		req.Header.Set("Authorization", "Bearer tok")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("want 503, got %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Request-Id")
	}
	first, second := send(""), send("")
	own := send("transmitter-42")
	format := regexp.MustCompile(`^[^ ]+/[A-Za-z0-9_-]{10}-[0-9]{6,}$`)
	if !format.MatchString(first) || !format.MatchString(second) || first == second {
		t.Fatalf("want two distinct ids host/random-counter, got %q and %q", first, second)
	}
	if own != "transmitter-42" {
		t.Fatalf("want the client's id back, got %q", own)
	}
	// A client id that is too long or not plain printable ASCII is
	// replaced, not repeated into the logs and the answer.
	for _, bad := range []string{strings.Repeat("a", 129), "has space", "caf\u00e9"} {
		if got := send(bad); !format.MatchString(got) {
			t.Errorf("client id %.20q: want a new id in its place, got %.40q", bad, got)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{first, second, own}; !reflect.DeepEqual(rec.ids[:3], want) {
		t.Fatalf("want the logged request ids %q, got %q", want, rec.ids)
	}
	if !sawDone.Load() {
		t.Fatal("the intake's context is not the request's (no Done channel)")
	}
}
