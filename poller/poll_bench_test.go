package poller_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// BenchmarkPollStream is the poll path: b.N SETs queued at a transmitter,
// one loop polling them with maxEvents 1000 → verify → JetStream PubAck →
// ack, until the transmitter has every ack. Compare its sets/s with
// gateway's BenchmarkPushHTTP on the same machine.
func BenchmarkPollStream(b *testing.B) {
	for _, conc := range []int{32, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			r := newRig(b, rigOptions{})
			// Sign up front so signing is not measured.
			toks := make([]string, b.N)
			jtis := make([]string, b.N)
			for i := range toks {
				jti, tok, err := r.tx.SET(transmitter.SessionRevoked, nil, fmt.Sprintf("user%d%s", i, emailDomain))
				if err != nil {
					b.Fatal(err)
				}
				jtis[i], toks[i] = jti, tok
			}
			cfg := r.config(b)
			cfg.MaxEvents = 1000
			cfg.Concurrency = conc
			cfg.LongPollTimeout = 10 * time.Second
			b.ReportAllocs()
			b.ResetTimer()
			for i := range toks {
				r.ps.Enqueue(jtis[i], toks[i])
			}
			_, stop := start(b, cfg, r.in)
			for r.ps.AckedCount() < b.N {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
			_ = stop()
		})
	}
}
