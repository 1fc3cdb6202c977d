package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/verify"
)

// refPubAck decodes a publish response as jetstream's PublishMsg does.
func refPubAck(data []byte) (pubAck, error) {
	var r struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, fmt.Errorf("nats: %w", r.Error)
	}
	if r.PubAck == nil || r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{Sequence: r.Sequence, Duplicate: r.Duplicate}, nil
}

func TestParsePubAck(t *testing.T) {
	prefix := pubAckPrefix("SECEVENTS")
	tests := []struct {
		name     string
		data     string
		want     pubAck
		wantErr  error // matched with errors.Is; nil: no error
		wantCode jetstream.ErrorCode
	}{
		{"stored", `{"stream":"SECEVENTS","seq":42}`, pubAck{Sequence: 42}, nil, 0},
		{"duplicate as the server writes it", `{"stream":"SECEVENTS","seq":7,"duplicate": true}`, pubAck{Sequence: 7, Duplicate: true}, nil, 0},
		{"duplicate compact", `{"stream":"SECEVENTS","seq":7,"duplicate":true}`, pubAck{Sequence: 7, Duplicate: true}, nil, 0},
		{"duplicate false", `{"stream":"SECEVENTS","seq":7,"duplicate":false}`, pubAck{Sequence: 7}, nil, 0},
		{"largest sequence", `{"stream":"SECEVENTS","seq":18446744073709551615}`, pubAck{Sequence: 1<<64 - 1}, nil, 0},
		{"sequence overflow", `{"stream":"SECEVENTS","seq":18446744073709551616}`, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"leading zero", `{"stream":"SECEVENTS","seq":01}`, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"zero", `{"stream":"SECEVENTS","seq":0}`, pubAck{}, nil, 0},
		{"with domain", `{"stream":"SECEVENTS","domain":"hub","seq":9}`, pubAck{Sequence: 9}, nil, 0},
		{"another stream, as jetstream takes it", `{"stream":"OTHER","seq":3}`, pubAck{Sequence: 3}, nil, 0},
		{"spaces", `{ "stream": "SECEVENTS", "seq": 5 }`, pubAck{Sequence: 5}, nil, 0},
		{"trailing garbage", `{"stream":"SECEVENTS","seq":5}x`, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"cut short", `{"stream":"SECEVENTS","seq":5`, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"no stream", `{"seq":5}`, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"empty", ``, pubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"stream full", `{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"}}`, pubAck{}, nil, jsErrStoreFailed},
		{"wrong stream expected", `{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`, pubAck{}, nil, 10060},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePubAck(prefix, []byte(tt.data))
			ref, refErr := refPubAck([]byte(tt.data))
			if (err == nil) != (refErr == nil) || got != ref {
				t.Errorf("differs from jetstream's decoding: want %+v, %v; got %+v, %v", ref, refErr, got, err)
			}
			if tt.wantCode != 0 {
				var apiErr *jetstream.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode != tt.wantCode {
					t.Fatalf("want an API error with code %d, got %v", tt.wantCode, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("want error %v, got %v", tt.wantErr, err)
			}
			if got != tt.want {
				t.Errorf("want %+v, got %+v", tt.want, got)
			}
		})
	}
}

// FuzzParsePubAck: parsePubAck reads every response as jetstream's
// PublishMsg would (same sequence, same duplicate flag, an error exactly
// when it has one).
func FuzzParsePubAck(f *testing.F) {
	f.Add([]byte(`{"stream":"SECEVENTS","seq":42}`))
	f.Add([]byte(`{"stream":"SECEVENTS","seq":7,"duplicate": true}`))
	f.Add([]byte(`{"stream":"SECEVENTS","seq":18446744073709551616}`))
	f.Add([]byte(`{"stream":"SECEVENTS","seq":00}`))
	f.Add([]byte(`{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"}}`))
	prefix := pubAckPrefix("SECEVENTS")
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parsePubAck(prefix, data)
		want, wantErr := refPubAck(data)
		if (err == nil) != (wantErr == nil) || got != want {
			t.Fatalf("%q: want %+v, %v; got %+v, %v", data, want, wantErr, got, err)
		}
		if wantErr != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%q: want error %q, got %q", data, wantErr, err)
		}
	})
}

// TestPublishSETReusesMessages: messages built in reused buffers carry
// only their own SET. Concurrent publishers send SETs of very different
// sizes (a large one's buffer is not kept, a small one's is), each twice;
// every stored message is byte for byte the message built afresh for its
// SET, and the second publish of each is a duplicate.
func TestPublishSETReusesMessages(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const workers, each = 6, 20
	sets := make(map[string]*testPublished)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				set := testSET(fmt.Sprintf("jti-%d-%d", w, i), sessionRevoked)
				// Sizes from a few bytes to beyond the kept buffers.
				set.Raw = strings.Repeat(string(rune('a'+(w+i)%26)), 1+(w*each+i)*(maxPooledBody/(workers*each/2)))
				for n := range 2 {
					res, err := b.PublishSET(context.Background(), "acme", nil, set, DeliveryPush, at)
					if err == nil && res.Duplicate != (n == 1) {
						err = fmt.Errorf("%s publish %d: duplicate %v", set.JTI, n, res.Duplicate)
					}
					if err != nil {
						errs <- err
						return
					}
					if n == 0 {
						mu.Lock()
						sets[set.JTI] = &testPublished{set: set, seq: res.Sequences[0]}
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for jti, p := range sets {
		want, err := b.message("acme", nil, p.set, p.set.Events[0], DeliveryPush, at)
		if err != nil {
			t.Fatal(err)
		}
		got := getMsg(t, b, p.seq)
		if got.Subject != want.Subject || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("%s: stored message differs from its own: subject %q, %d bytes of body", jti, got.Subject, len(got.Data))
		}
		for _, name := range msgHeaderNames {
			if g, w := got.Header.Values(name), want.Header.Values(name); len(g) != 1 || g[0] != w[0] {
				t.Fatalf("%s: header %s: want %q, got %q", jti, name, w, g)
			}
		}
	}
}

type testPublished struct {
	set *verify.SET
	seq uint64
}

// TestPublishSETNoStream: with no stream taking the subject, the publish
// is retried as jetstream does, then fails with ErrUnavailable wrapping
// jetstream.ErrNoStreamResponse.
func TestPublishSETNoStream(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	b := openBridge(t, testConfig(srv.ClientURL()))
	if err := b.JetStream().DeleteStream(context.Background(), "SECEVENTS"); err != nil {
		t.Fatal(err)
	}
	_, err := b.PublishSET(context.Background(), "acme", nil, testSET("jti-1", sessionRevoked), DeliveryPush, time.Now())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("want ErrUnavailable wrapping ErrNoStreamResponse, got %v", err)
	}
}

// TestPublishSETNoAck: a responder that never acknowledges makes the
// publish fail with ErrUnavailable once the publish timeout passed.
func TestPublishSETNoAck(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	cfg := testConfig(srv.ClientURL())
	cfg.PublishTimeout = 200 * time.Millisecond
	b := openBridge(t, cfg)
	if err := b.JetStream().DeleteStream(context.Background(), "SECEVENTS"); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan struct{}, 1)
	if _, err := nc.Subscribe("secevent.>", func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = b.PublishSET(context.Background(), "acme", nil, testSET("jti-1", sessionRevoked), DeliveryPush, time.Now())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrUnavailable wrapping the deadline, got %v", err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Error("the message never reached the silent responder")
	}
}
