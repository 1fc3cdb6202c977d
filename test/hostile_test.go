package test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/setgate/setgate/internal/transmitter"
)

// The hostile-client gateway's bounds.
const (
	hostileHeaderTimeout = 500 * time.Millisecond
	hostileReadTimeout   = time.Second
	hostileMaxBody       = 4096
	hostileMaxConcurrent = 4
	// maxIdleConns caps the keep-alive flood to keep CI fast.
	maxIdleConns = 2000
)

func startHostileGateway(t *testing.T) *gatewayProc {
	t.Helper()
	return startGateway(t, gwOptions{Env: map[string]string{
		"SETGATE_READ_HEADER_TIMEOUT": hostileHeaderTimeout.String(),
		"SETGATE_READ_TIMEOUT":        hostileReadTimeout.String(),
		"SETGATE_MAX_BODY_BYTES":      fmt.Sprint(hostileMaxBody),
		"SETGATE_MAX_CONCURRENT":      fmt.Sprint(hostileMaxConcurrent),
	}})
}

// dial opens a raw TCP connection to the push listener.
func dial(t testing.TB, g *gatewayProc) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.push, waitShort)
	if err != nil {
		t.Fatalf("dial %s: %v", g.push, err)
	}
	return c
}

// closedByServer reads c until the server closes it (EOF or reset) and
// returns what it sent before, or an error if it is still open after bound.
func closedByServer(c net.Conn, bound time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), fmt.Errorf("connection still open after %v", bound)
	}
	return string(b), nil
}

// pushHead is the head of a push as acme with the given body length.
func pushHead(g *gatewayProc, contentLength int) string {
	return fmt.Sprintf("POST /events/acme HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/secevent+jwt\r\nContent-Length: %d\r\n\r\n",
		g.push, g.acmeToken, contentLength)
}

// TestHostileClients: slow clients are cut by the read timeouts, and a
// flood of idle keep-alive connections with oversized bodies and malformed
// HTTP at the same time does not stop valid pushes; goroutines return to
// their baseline afterwards. (Slow uploads and the per-issuer limit:
// TestSlowUploadsTakeNoSlot; the 429 itself, which needs SETs held in
// verification or publication: gateway's TestSlowUploadsTakeNoSlot and
// TestConcurrencyLimit429.)
func TestHostileClients(t *testing.T) {
	g := startHostileGateway(t)
	if _, r := g.pushAcme(t); r.Status != http.StatusAccepted {
		t.Fatalf("warm-up push: want 202, got %d %s", r.Status, r.Body)
	}

	t.Run("slowloris", func(t *testing.T) {
		c := dial(t, g)
		defer c.Close()
		head := pushHead(g, 10) + "X-Padding: " + strings.Repeat("a", 1000)
		start := time.Now()
		closed := make(chan string, 1)
		go func() {
			got, err := closedByServer(c, waitShort)
			if err != nil {
				got = "STILL OPEN: " + err.Error()
			}
			closed <- got
		}()
		sent := 0
	dribble:
		for i := 0; i < len(head); i++ {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				break // the server closed it
			}
			sent++
			select {
			case got := <-closed:
				closed <- got
				break dribble
			case <-time.After(100 * time.Millisecond):
			}
		}
		got := <-closed
		if strings.HasPrefix(got, "STILL OPEN") {
			t.Fatalf("slowloris: %s", got)
		}
		if strings.HasPrefix(got, "HTTP/1.1 202") {
			t.Fatalf("slowloris request was accepted: %q", got)
		}
		t.Logf("slowloris: cut after %v and %d header bytes (read header timeout %v); answer %q",
			time.Since(start).Round(time.Millisecond), sent, hostileHeaderTimeout, firstLine(got))
	})

	t.Run("slow body", func(t *testing.T) {
		_, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "slow@acme.example")
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, g)
		defer c.Close()
		start := time.Now()
		if _, err := io.WriteString(c, pushHead(g, len(set))); err != nil {
			t.Fatal(err)
		}
		closed := make(chan string, 1)
		go func() {
			got, err := closedByServer(c, waitShort)
			if err != nil {
				got = "STILL OPEN: " + err.Error()
			}
			closed <- got
		}()
		sent := 0
		var got string
	dribble:
		for i := 0; i < len(set); i++ {
			if _, err := c.Write([]byte{set[i]}); err != nil {
				break
			}
			sent++
			select {
			case got = <-closed:
				break dribble
			case <-time.After(100 * time.Millisecond):
			}
		}
		if got == "" {
			got = <-closed
		}
		if strings.HasPrefix(got, "STILL OPEN") {
			t.Fatalf("slow body: %s", got)
		}
		if sent == len(set) || strings.HasPrefix(got, "HTTP/1.1 202") {
			t.Fatalf("slow body was not cut: sent %d of %d bytes, answer %q", sent, len(set), firstLine(got))
		}
		t.Logf("slow body: cut after %v and %d of %d body bytes (read timeout %v); answer %q",
			time.Since(start).Round(time.Millisecond), sent, len(set), hostileReadTimeout, firstLine(got))
	})

	t.Run("flood", func(t *testing.T) { hostileFlood(t, g) })
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// procStats are the gateway's goroutines and resident memory, from its
// /metrics.
type procStats struct {
	goroutines, rss float64
}

var metricsClient = &http.Client{Timeout: waitShort}

func readStats(g *gatewayProc) (procStats, error) {
	resp, err := metricsClient.Get("http://" + g.admin + "/metrics")
	if err != nil {
		return procStats{}, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return procStats{}, err
	}
	return procStats{
		goroutines: value(fams, "go_goroutines", nil),
		rss:        value(fams, "process_resident_memory_bytes", nil),
	}, nil
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to the hard limit
// and returns the soft limit in force.
func raiseNoFile(t *testing.T) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Logf("cannot raise RLIMIT_NOFILE from %d to %d: %v", lim.Cur, lim.Max, err)
		} else {
			lim = raised
		}
	}
	return lim.Cur
}

// hostileFlood: idle keep-alive connections, oversized bodies and
// malformed HTTP at once; valid pushes keep getting 202; afterwards the
// gateway's goroutines return to their baseline.
func hostileFlood(t *testing.T, g *gatewayProc) {
	fdLimit := raiseNoFile(t)
	n := maxIdleConns
	if lim := int(fdLimit) - 256; lim < n {
		n = lim
	}
	base, err := readStats(g)
	if err != nil {
		t.Fatal(err)
	}

	// Peak goroutines and RSS while the flood runs.
	var peak procStats
	var peakMu sync.Mutex
	sample := func() {
		if s, err := readStats(g); err == nil {
			peakMu.Lock()
			peak.goroutines = max(peak.goroutines, s.goroutines)
			peak.rss = max(peak.rss, s.rss)
			peakMu.Unlock()
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() {
		for ctx.Err() == nil {
			sample()
			time.Sleep(50 * time.Millisecond)
		}
	})

	// Valid pushes, one after another, all through the flood.
	var accepted, refused atomic.Int64
	bg.Go(func() {
		for ctx.Err() == nil {
			_, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "flood@acme.example")
			if err != nil {
				t.Error(err)
				return
			}
			pctx, cancel := context.WithTimeout(ctx, waitLong)
			r, err := g.acme.Push(pctx, g.url("/events/acme"), g.acmeToken, set)
			cancel()
			switch {
			case err != nil && ctx.Err() != nil:
				return // the flood is over
			case err != nil:
				refused.Add(1)
				t.Errorf("valid push during the flood: %v", err)
			case r.Status == http.StatusAccepted:
				accepted.Add(1)
			default:
				refused.Add(1)
				t.Errorf("valid push during the flood: want 202, got %d %s", r.Status, r.Body)
			}
		}
	})

	// Oversized bodies: with a Content-Length, and chunked.
	var oversized, malformed atomic.Int64
	big := strings.Repeat("A", hostileMaxBody+1)
	bg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			c, err := net.DialTimeout("tcp", g.push, waitShort)
			if err != nil {
				t.Errorf("oversized: dial: %v", err)
				return
			}
			var req string
			if i%2 == 0 {
				req = strings.Replace(pushHead(g, len(big)), "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1) + big
			} else {
				req = strings.Replace(pushHead(g, 0), "Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\nConnection: close\r\n", 1) +
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
			}
			_ = c.SetDeadline(time.Now().Add(waitShort))
			_, _ = io.WriteString(c, req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("oversized: %v", err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Errorf("oversized body (%d): want 413, got %d", i%2, resp.StatusCode)
				}
			}
			c.Close()
			oversized.Add(1)
		}
	})

	// Malformed HTTP: 400 or the connection closed, never a hang.
	garbage := []string{
		"GARBAGE\r\n\r\n",
		"POST /events/acme HTTP/9.9\r\n\r\n",
		"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
		"POST /events/acme HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
		"POST /events/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"POST /events/acme HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
		"GET " + strings.Repeat("/x", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	bg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			c, err := net.DialTimeout("tcp", g.push, waitShort)
			if err != nil {
				t.Errorf("malformed: dial: %v", err)
				return
			}
			_ = c.SetDeadline(time.Now().Add(waitShort))
			_, _ = io.WriteString(c, garbage[i%len(garbage)])
			got, err := closedByServer(c, waitShort)
			if err != nil {
				t.Errorf("malformed request %q: %v", garbage[i%len(garbage)][:min(40, len(garbage[i%len(garbage)]))], err)
			} else if got != "" && !strings.HasPrefix(got, "HTTP/1.1 4") && !strings.HasPrefix(got, "HTTP/1.1 505") {
				t.Errorf("malformed request %d: want a 4xx (or 505) or a close, got %q", i%len(garbage), firstLine(got))
			}
			c.Close()
			malformed.Add(1)
		}
	})

	// Idle keep-alive connections: one 405 each, then silence.
	start := time.Now()
	conns := make([]net.Conn, n)
	var opened atomic.Int64
	var openers sync.WaitGroup
	const workers = 8
	for w := range workers {
		openers.Go(func() {
			for i := w; i < n; i += workers {
				c, err := net.DialTimeout("tcp", g.push, waitShort)
				if err != nil {
					t.Errorf("idle connection %d: dial: %v", i, err)
					return
				}
				conns[i] = c
				_ = c.SetDeadline(time.Now().Add(waitLong))
				if _, err := io.WriteString(c, "GET /events/acme HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Errorf("idle connection %d: %v", i, err)
					return
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Errorf("idle connection %d: %v", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				opened.Add(1)
			}
		})
	}
	openers.Wait()
	openTook := time.Since(start)
	// Every idle connection is still open, and valid pushes still pass.
	sample()
	before := accepted.Load()
	checkFor(t, waitLong, poll, func() error {
		if accepted.Load() < before+5 {
			return fmt.Errorf("%d valid pushes accepted with %d idle connections open", accepted.Load()-before, opened.Load())
		}
		return nil
	})
	stop()
	bg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	t.Logf("flood: %d idle keep-alive connections opened in %v (RLIMIT_NOFILE soft %d, cap %d); during it %d valid pushes 202, %d refused, %d oversized 413, %d malformed requests",
		opened.Load(), openTook.Round(time.Millisecond), fdLimit, maxIdleConns, accepted.Load(), refused.Load(), oversized.Load(), malformed.Load())
	if accepted.Load() == 0 {
		t.Error("no valid push was accepted during the flood")
	}

	// Goroutines return to the baseline once the clients are gone.
	const margin = 5
	var last procStats
	checkFor(t, waitLong, poll, func() error {
		s, err := readStats(g)
		if err != nil {
			return err
		}
		last = s
		if s.goroutines > base.goroutines+margin {
			return fmt.Errorf("gateway goroutines %v, baseline %v (+%d allowed)", s.goroutines, base.goroutines, margin)
		}
		return nil
	})
	peak.rss = max(peak.rss, last.rss)
	t.Logf("gateway goroutines: baseline %v, peak %v, after %v; RSS: baseline %.1f MiB, peak %.1f MiB, after %.1f MiB (race build: %v)",
		base.goroutines, peak.goroutines, last.goroutines, base.rss/(1<<20), peak.rss/(1<<20), last.rss/(1<<20), raceEnabled)
	if opened.Load() == int64(n) && peak.goroutines < base.goroutines+float64(n)/2 {
		t.Logf("note: peak goroutines %v lower than expected for %d idle connections", peak.goroutines, n)
	}
}
