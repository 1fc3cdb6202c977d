package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fillUntilRefused publishes single-event SETs until JetStream refuses
// one (or n have been published) and returns how many were stored and the
// refusal.
func fillUntilRefused(t *testing.T, b *Bridge, n int) (int, error) {
	t.Helper()
	for i := range n {
		if _, err := b.PublishSET(context.Background(), "acme", nil, testSET(fmt.Sprintf("fill-%d", i), sessionRevoked), DeliveryPush, time.Now()); err != nil {
			return i, err
		}
	}
	return n, nil
}

func TestStreamByteLimit(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		discard  Discard
		wantMax  int64
		wantDisc jetstream.DiscardPolicy
	}{
		{"unlimited default", 0, "", -1, jetstream.DiscardNew},
		{"negative is unlimited", -1, DiscardOld, -1, jetstream.DiscardOld},
		{"limit discard new", 64 << 10, DiscardNew, 64 << 10, jetstream.DiscardNew},
		{"limit discard old", 64 << 10, DiscardOld, 64 << 10, jetstream.DiscardOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := runServer(t, -1, t.TempDir())
			cfg := testConfig(srv.ClientURL())
			cfg.StreamMaxBytes, cfg.StreamDiscard = tt.maxBytes, tt.discard
			b := openBridge(t, cfg)
			s, err := b.JetStream().Stream(context.Background(), cfg.Stream)
			if err != nil {
				t.Fatal(err)
			}
			got := s.CachedInfo().Config
			if got.MaxBytes != tt.wantMax || got.Discard != tt.wantDisc {
				t.Fatalf("want max bytes %d discard %v, got %d %v", tt.wantMax, tt.wantDisc, got.MaxBytes, got.Discard)
			}
		})
	}
}

func TestOpenBadDiscard(t *testing.T) {
	cfg := testConfig("nats://127.0.0.1:1")
	cfg.StreamDiscard = "oldest"
	if _, err := Open(context.Background(), cfg, nil); err == nil {
		t.Fatal("want an error for discard policy oldest")
	}
}

// TestPublishSETStreamFull: under discard new a full stream refuses the
// publish, and the error is "unavailable" (503, no ack) and "full", and
// nothing already stored is touched.
func TestPublishSETStreamFull(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	cfg := testConfig(srv.ClientURL())
	cfg.StreamMaxBytes = 16 << 10
	b := openBridge(t, cfg)

	stored, err := fillUntilRefused(t, b, 1000)
	if err == nil {
		t.Fatalf("stored %d SETs in a 16 KiB stream without a refusal", stored)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrStreamFull) {
		t.Fatalf("want ErrUnavailable and ErrStreamFull, got %v", err)
	}
	if stored == 0 {
		t.Fatal("want some SETs stored before the stream was full")
	}
	st, err := b.Monitor().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != uint64(stored) || st.MaxBytes != 16<<10 || st.Discard != DiscardNew || st.Discarded != 0 {
		t.Fatalf("want %d messages, max 16384, discard new, 0 discarded; got %+v", stored, st)
	}

	// A multi-event SET takes the async path; it must classify the same.
	_, err = b.PublishSET(context.Background(), "acme", nil, testSET("multi", sessionRevoked, credentialChange), DeliveryPush, time.Now())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrStreamFull) {
		t.Fatalf("multi-event: want ErrUnavailable and ErrStreamFull, got %v", err)
	}
}

// TestStreamMonitorCountsDiscarded: under discard old the stream stays at
// its limit and the monitor counts the events it removed; stats are reused
// within the TTL.
func TestStreamMonitorCountsDiscarded(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	cfg := testConfig(srv.ClientURL())
	cfg.StreamMaxBytes, cfg.StreamDiscard = 16<<10, DiscardOld
	b := openBridge(t, cfg)

	now := time.Now()
	m := b.Monitor()
	m.now = func() time.Time { return now }
	st, err := m.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 0 || st.FirstAge() != 0 || st.Discarded != 0 {
		t.Fatalf("empty stream: got %+v", st)
	}

	const n = 200
	if stored, err := fillUntilRefused(t, b, n); err != nil {
		t.Fatalf("discard old refused SET %d: %v", stored, err)
	}
	// Within the TTL the first reading is reused.
	if again, _ := m.Stats(context.Background()); again.Messages != 0 {
		t.Fatalf("want the cached reading within the TTL, got %+v", again)
	}
	now = now.Add(DefaultStatsTTL)
	st, err = m.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes > 16<<10 || st.Messages == 0 || st.Messages >= n {
		t.Fatalf("want the stream at its 16 KiB limit with fewer than %d events, got %+v", n, st)
	}
	if want := n - st.Messages; st.Discarded != want {
		t.Fatalf("want %d discarded, got %d", want, st.Discarded)
	}
	if st.FirstAge() <= 0 {
		t.Fatalf("want a positive first-event age, got %v", st.FirstAge())
	}

	// Once the previous oldest event could have expired, removals are
	// not counted as discarded.
	before := st.Discarded
	if _, err := b.PublishSET(context.Background(), "acme", nil, testSET("late", sessionRevoked), DeliveryPush, time.Now()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(cfg.StreamMaxAge)
	st, err = m.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Discarded != before {
		t.Fatalf("want %d discarded (removal explained by max age), got %d", before, st.Discarded)
	}
}

// TestStreamLimitUpdate: a stream created before the byte limit existed
// (no limit, JetStream's default discard old) is updated in place to the
// configured limit and policy, and back, keeping its events.
func TestStreamLimitUpdate(t *testing.T) {
	srv := runServer(t, -1, t.TempDir())
	url := srv.ClientURL()
	steps := []struct {
		maxBytes int64
		discard  Discard
	}{
		{0, DiscardOld},
		{1 << 20, DiscardNew},
		{512 << 10, DiscardOld},
		{0, DiscardNew},
	}
	for i, st := range steps {
		cfg := testConfig(url)
		cfg.StreamMaxBytes, cfg.StreamDiscard = st.maxBytes, st.discard
		b, err := Open(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("step %d: Open: %v", i, err)
		}
		if _, err := b.PublishSET(context.Background(), "acme", nil, testSET(fmt.Sprintf("step-%d", i), sessionRevoked), DeliveryPush, time.Now()); err != nil {
			t.Fatalf("step %d: publish: %v", i, err)
		}
		s, err := b.Monitor().Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wantMax := st.maxBytes
		if wantMax == 0 {
			wantMax = -1
		}
		if s.MaxBytes != wantMax || s.Discard != st.discard || s.Messages != uint64(i+1) {
			t.Fatalf("step %d: want max %d, discard %s, %d events; got %+v", i, wantMax, st.discard, i+1, s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}
