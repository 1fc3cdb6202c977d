package bridge

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/rusage"
)

// BenchmarkPublishSETParallel publishes single-event SETs from 32
// goroutines to the embedded server (its in-process connection, writes
// synced at intervals), as the push path does under load; cpu-µs/op is
// the process's CPU time (client and server) per SET.
func BenchmarkPublishSETParallel(b *testing.B) {
	cfg := testConfig("")
	cfg.DataDir = b.TempDir()
	cfg.EmbeddedSync = SyncInterval
	br := openBridge(b, cfg)
	ctx := context.Background()
	// A SET of the usual size (an ES256 token of about 700 bytes).
	raw := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 35)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	start := rusage.CPU()
	b.RunParallel(func(pb *testing.PB) {
		set := testSET("", sessionRevoked)
		set.Raw = raw
		now := time.Now()
		for pb.Next() {
			set.JTI = "bench-" + strconv.FormatInt(next.Add(1), 10)
			if _, err := br.PublishSET(ctx, "acme", nil, set, DeliveryPush, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64((rusage.CPU()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
