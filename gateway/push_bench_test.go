package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/internal/rusage"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/verify"
)

// pushRig is the whole push path in one process: embedded NATS with
// JetStream on a temp dir, a transmitter with a real JWKS, a verifier, the
// intake pipeline with the metrics observer and the gateway behind a real
// HTTP server.
type pushRig struct {
	tx     *transmitter.Transmitter
	br     *bridge.Bridge
	in     *intake.Pipeline
	src    *intake.Source
	srv    *httptest.Server
	url    string
	bearer string
}

func newPushRig(tb testing.TB, sync string) *pushRig {
	tb.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	tx, err := transmitter.New(transmitter.Options{Alg: "ES256"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tx.Close() })
	br, err := bridge.Open(ctx, bridge.Config{
		EmbeddedAddr: "127.0.0.1:0", DataDir: tb.TempDir(), Stream: "SECEVENTS", SubjectPrefix: "secevent",
		StreamManage: true, StreamReplicas: 1, EmbeddedSync: sync,
	}, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = br.Close(context.Background()) })
	v, err := verify.New(ctx, verify.Config{
		Name: "acme", Issuer: tx.Issuer(), Audience: []string{tx.Audience()}, JWKSURI: tx.JWKSURL(), Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	src := &intake.Source{Name: "acme", Verifier: v}
	// Metrics as setgate serve wires them: request timing on the gateway,
	// counting as the pipeline's observer.
	metrics := gateway.NewMetrics()
	in := intake.New(intake.Config{Publisher: br, Logger: log, Observers: []intake.Observer{metrics}})
	gw := gateway.New(gateway.Config{Intake: in, Ready: br.Ready, Logger: log, MaxConcurrent: 4096, Metrics: metrics})
	gw.SetIssuers([]gateway.Issuer{{Source: src, Push: gateway.NewCredential("bench-token")}})
	srv := httptest.NewServer(gw.Handler())
	tb.Cleanup(srv.Close)
	return &pushRig{tx: tx, br: br, in: in, src: src, srv: srv, url: srv.URL + "/events/acme", bearer: "bench-token"}
}

// sets signs n distinct SETs up front so signing is not measured.
func (r *pushRig) sets(tb testing.TB, n int) [][]byte {
	tb.Helper()
	out := make([][]byte, n)
	for i := range out {
		_, tok, err := r.tx.SET(transmitter.SessionRevoked, nil, fmt.Sprintf("user%d@acme.example", i))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = []byte(tok)
	}
	return out
}

// reportCPU adds the process's CPU time per operation since start (user +
// system: server, client and NATS together) as the cpu-µs/op metric. On
// a machine shared with other work it moves much less than ns/op, which
// counts waiting for a CPU too.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((rusage.CPU()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// bySync runs bench once per SETGATE_EMBEDDED_SYNC mode: always (each
// write synced before its PubAck, the default) and interval.
func bySync(b *testing.B, bench func(*testing.B, string)) {
	for _, sync := range []string{bridge.SyncAlways, bridge.SyncInterval} {
		b.Run("sync="+sync, func(b *testing.B) { bench(b, sync) })
	}
}

// BenchmarkPushHTTP is the push path: HTTP request → verify → JetStream
// PubAck → 202, from parallel keep-alive clients.
func BenchmarkPushHTTP(b *testing.B) { bySync(b, benchmarkPushHTTP) }

func benchmarkPushHTTP(b *testing.B, sync string) {
	r := newPushRig(b, sync)
	sets := r.sets(b, b.N)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 32 concurrent transmitter connections on 2 cores
	b.ResetTimer()
	defer reportCPU(b, rusage.CPU())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := sets[next.Add(1)-1]
			req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/secevent+jwt")
			req.Header.Set("Authorization", "Bearer "+r.bearer)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("want 202, got %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkAcceptCeiling is the same work without HTTP: verify + publish
// with PubAck on the same embedded server. BenchmarkPushHTTP's throughput
// divided by this one's is the push path's efficiency.
func BenchmarkAcceptCeiling(b *testing.B) { bySync(b, benchmarkAcceptCeiling) }

func benchmarkAcceptCeiling(b *testing.B, sync string) {
	r := newPushRig(b, sync)
	sets := r.sets(b, b.N)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 32 concurrent transmitter connections on 2 cores
	b.ResetTimer()
	defer reportCPU(b, rusage.CPU())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.in.Accept(ctx, r.src, sets[next.Add(1)-1], intake.DeliveryPush); err != nil {
				b.Fatal(err)
			}
		}
	})
}
