package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// pushConnections is the push listener's open connections, scraped from
// the admin listener.
func pushConnections(t testing.TB, g *gatewayProc) float64 {
	t.Helper()
	return value(scrape(t, g), "setgate_push_connections_open", nil)
}

// TestConnectionCap: with SETGATE_MAX_CONNECTIONS=50, 200 idle connections
// never hold more than 50 of the push listener's connections: the others
// wait in the kernel's accept queue, every one is closed by the server
// (read header timeout), the admin listener answers /readyz and /metrics
// while the push listener is full, and a valid push made behind them gets
// 202.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	const limit, idle = 50, 200
	g := startGateway(t, gwOptions{Env: map[string]string{
		"SETGATE_MAX_CONNECTIONS":     fmt.Sprint(limit),
		"SETGATE_READ_HEADER_TIMEOUT": "1s",
	}})
	if got := pushConnections(t, g); got != 0 {
		t.Fatalf("want 0 push connections before, got %v", got)
	}

	conns := make([]net.Conn, idle)
	for i := range conns {
		conns[i] = dial(t, g)
		defer conns[i].Close()
	}
	// The push listener is full, and the admin listener answers.
	checkFor(t, waitLong, poll, func() error {
		if got := pushConnections(t, g); got != limit {
			return fmt.Errorf("want %d push connections open, got %v", limit, got)
		}
		return nil
	})
	if code, err := g.getStatus("/readyz"); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz while the push listener is full: want 200, got %d (%v)", code, err)
	}

	// Sampled all along: never more than the cap.
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(poll):
			}
			if n := int64(pushConnections(t, g)); n > peak.Load() {
				peak.Store(n)
			}
		}
	})

	// A valid push queued behind the idle connections gets through once
	// the server has closed them.
	jti, r := g.pushAcme(t)
	if r.Status != http.StatusAccepted {
		t.Fatalf("push behind %d idle connections: want 202, got %d %s", idle, r.Status, r.Body)
	}
	// Every idle connection was closed by the server.
	for i, c := range conns {
		if got, err := closedByServer(c, waitLong); err != nil || got != "" {
			t.Fatalf("idle connection %d: want closed by the server without an answer, got %q, %v", i, got, err)
		}
	}
	close(stop)
	sampler.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("want at most %d push connections open at any time, saw %d", limit, p)
	}
	if msgs := byJTI(readStream(t, g.natsURL)); len(msgs[jti]) != 1 {
		t.Errorf("jti %s: want stored once, got %d", jti, len(msgs[jti]))
	}
	t.Logf("%d idle connections against a cap of %d: peak %d open; the push behind them got 202", idle, limit, peak.Load())
}

// TestUnauthenticatedClose: 401, 403 and 404 answers carry Connection:
// close and the server closes the connection, so such a client cannot keep
// connections (and file descriptors) open; the push listener's open
// connections go back to zero.
func TestUnauthenticatedClose(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{})
	_, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "x@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, token string
		wantStatus        int
	}{
		{"no credential", "/events/acme", "", http.StatusUnauthorized},
		{"wrong credential", "/events/acme", "wrong", http.StatusUnauthorized},
		{"another issuer's credential", "/events/acme", g.globexToken, http.StatusForbidden},
		{"unknown issuer", "/events/initech", g.acmeToken, http.StatusNotFound},
		{"unknown path", "/wp-login.php", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, g)
			defer c.Close()
			auth := ""
			if tt.token != "" {
				auth = "Authorization: Bearer " + tt.token + "\r\n"
			}
			// HTTP/1.1 asks for keep-alive by default.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/secevent+jwt\r\nContent-Length: %d\r\n\r\n%s",
				tt.path, g.push, auth, len(set), set)
			got, err := closedByServer(c, waitShort)
			if err != nil {
				t.Fatalf("want the connection closed by the server after the answer: %v (got %q)", err, firstLine(got))
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
			if err != nil {
				t.Fatalf("answer %q: %v", got, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.wantStatus || !resp.Close {
				t.Fatalf("want %d with Connection: close, got %q", tt.wantStatus, got)
			}
		})
	}
	checkFor(t, waitShort, poll, func() error {
		if n := pushConnections(t, g); n != 0 {
			return fmt.Errorf("want 0 push connections open, got %v", n)
		}
		return nil
	})
}

// TestSlowUploadsTakeNoSlot: with SETGATE_MAX_CONCURRENT=2, three
// authenticated pushes whose bodies are still arriving do not hold acme's
// slots: a fast push of acme gets 202 (not 429) while they are in
// progress, and each of them gets 202 when its body is finished.
func TestSlowUploadsTakeNoSlot(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{Env: map[string]string{
		"SETGATE_MAX_CONCURRENT": "2",
		"SETGATE_READ_TIMEOUT":   waitLong.String(),
	}})
	type slow struct {
		c   net.Conn
		jti string
		set string
	}
	var slows []slow
	for i := range 3 {
		jti, set, err := g.acme.SET(transmitter.SessionRevoked, nil, fmt.Sprintf("slow%d@acme.example", i))
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, g)
		defer c.Close()
		// The head and the first byte of the body; the rest later.
		if _, err := io.WriteString(c, pushHead(g, len(set))+set[:1]); err != nil {
			t.Fatal(err)
		}
		slows = append(slows, slow{c, jti, set})
	}
	checkFor(t, waitLong, poll, func() error {
		if n := pushConnections(t, g); n < 3 {
			return fmt.Errorf("want the 3 slow uploads accepted, %v open", n)
		}
		return nil
	})

	// A fast push of the same issuer while the three are in progress.
	for range 3 {
		if jti, r := g.pushAcme(t); r.Status != http.StatusAccepted {
			t.Fatalf("fast push %s beside 3 slow uploads at SETGATE_MAX_CONCURRENT=2: want 202, got %d %s", jti, r.Status, r.Body)
		}
	}

	// They were still in progress: finishing their bodies gets 202.
	for i, s := range slows {
		if _, err := io.WriteString(s.c, s.set[1:]); err != nil {
			t.Fatalf("slow upload %d: %v", i, err)
		}
		_ = s.c.SetReadDeadline(time.Now().Add(waitLong))
		resp, err := http.ReadResponse(bufio.NewReader(s.c), nil)
		if err != nil {
			t.Fatalf("slow upload %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("slow upload %d finished: want 202, got %d", i, resp.StatusCode)
		}
	}
	msgs := byJTI(readStream(t, g.natsURL))
	for _, s := range slows {
		if len(msgs[s.jti]) != 1 {
			t.Errorf("slow upload %s: want stored once, got %d", s.jti, len(msgs[s.jti]))
		}
	}
}
