package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishSETInsufficientResources: a nats-server whose JetStream file
// store is used up answers a publish with error 10023 (insufficient
// resources) before the stream's own limits are consulted; the bridge
// reports that as "unavailable" and "full", like a full stream, so the
// push gets 503 and the poll does not acknowledge. The stream has no byte
// limit of its own, so 10077 (maximum bytes) cannot be what refused it.
func TestPublishSETInsufficientResources(t *testing.T) {
	const maxStore = 32 << 10
	srv := runServerOpts(t, &server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir(), JetStreamMaxStore: maxStore})
	cfg := testConfig(srv.ClientURL())
	b := openBridge(t, cfg)

	stored, err := fillUntilRefused(t, b, 1000)
	if err == nil {
		t.Fatalf("stored %d SETs on a server with %d bytes of JetStream storage without a refusal", stored, maxStore)
	}
	if stored == 0 {
		t.Fatal("want some SETs stored before the server's storage was used up")
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrInsufficientResources {
		t.Fatalf("want JetStream error %d, got %v", jsErrInsufficientResources, err)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrStreamFull) {
		t.Fatalf("want ErrUnavailable and ErrStreamFull, got %v", err)
	}
	s, err := b.JetStream().Stream(context.Background(), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if mb := s.CachedInfo().Config.MaxBytes; mb > 0 {
		t.Fatalf("want a stream without a byte limit, got max bytes %d", mb)
	}
	if n := s.CachedInfo().State.Msgs; n != uint64(stored) {
		t.Fatalf("want the %d acknowledged events stored, got %d", stored, n)
	}

	t.Logf("%d SETs stored on a server with %d bytes of JetStream storage, then refused with %d", stored, maxStore, apiErr.ErrorCode)

	// A multi-event SET takes the async path; it must classify the same.
	_, err = b.PublishSET(context.Background(), "acme", nil, testSET("multi", sessionRevoked, credentialChange), DeliveryPush, time.Now())
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrInsufficientResources {
		t.Fatalf("multi-event: want JetStream error %d, got %v", jsErrInsufficientResources, err)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrStreamFull) {
		t.Fatalf("multi-event: want ErrUnavailable and ErrStreamFull, got %v", err)
	}
}
