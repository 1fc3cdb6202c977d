package ssf_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestManagerTokenFetchHangs: a token endpoint that never answers does not
// hold the manager: the fetch ends at the outbound policy's timeout, the
// failure is logged at warn with the token URL, and the manager retries
// with its backoff. The management API receives nothing without a token.
func TestManagerTokenFetchHangs(t *testing.T) {
	t.Parallel()
	sx := newSSF(t, "")
	release := make(chan struct{})
	var tokenRequests atomic.Int64
	te := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(te.Close)
	t.Cleanup(func() { close(release) })

	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	hc := outbound.Policy{Timeout: 100 * time.Millisecond}.Client()
	auth, err := poller.NewOAuth2(poller.OAuth2Config{TokenURL: te.URL + "/token", ClientID: "setgate", ClientSecret: "token-secret"},
		poller.OAuth2Options{HTTPClient: hc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := ssf.Discover(context.Background(), nil, sx.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	m, err := ssf.NewManager(ssf.ManagerConfig{
		Issuer: sx.Issuer(), Delivery: ssf.DeliveryPoll, EventsRequested: []string{supported1},
		States: verify.NewStates(nil), Client: ssf.New(meta, auth, hc, log), Logger: log,
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			if len(waits) == 2 {
				cancel()
			}
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := tokenRequests.Load(); n < 2 {
		t.Errorf("want the token fetch retried, got %d token requests", n)
	}
	if len(waits) < 2 || waits[0] <= 0 {
		t.Errorf("want backoff waits between attempts, got %v", waits)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, te.URL+"/token") || !strings.Contains(out, "retry_in") {
		t.Errorf("want a warning with the token URL and the retry, got:\n%s", out)
	}
	if strings.Contains(out, "token-secret") {
		t.Errorf("the log shows the client secret:\n%s", out)
	}
	if calls := sx.Calls(); len(calls) != 0 {
		t.Errorf("want no management call without a token, got %v", calls)
	}
}
