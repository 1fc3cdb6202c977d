package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
)

// hangGuard is a bound on waiting for something that must happen; it only
// stops a hung test and asserts nothing about speed.
const hangGuard = 20 * time.Second

// twoIssuers is a gateway with acme (token "tok") and globex (token
// "gtok") in front of in, served on loopback.
func twoIssuers(t *testing.T, in intake.Intake, maxConcurrent int, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	gw := gateway.New(gateway.Config{Intake: in, Ready: func(context.Context) error { return nil }, MaxConcurrent: maxConcurrent, Logger: slog.New(slog.DiscardHandler)})
	gw.SetIssuers([]gateway.Issuer{
		{Source: &intake.Source{Name: "acme"}, Push: gateway.NewCredential("tok")},
		{Source: &intake.Source{Name: "globex"}, Push: gateway.NewCredential("gtok")},
	})
	h := gw.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestUnauthenticatedAnswersClose: 401, 403, 404 and 405 carry Connection:
// close and the server closes the connection after the answer, even when
// the client asked for keep-alive; other answers keep the connection.
func TestUnauthenticatedAnswersClose(t *testing.T) {
	in := &blockingIntake{entered: make(chan struct{}, 8), release: make(chan struct{})}
	close(in.release)
	srv := twoIssuers(t, in, 0, nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		wantStatus int
		wantClose  bool
	}{
		{"no credential", "POST", "/events/acme", "", http.StatusUnauthorized, true},
		{"wrong credential", "POST", "/events/acme", "nope", http.StatusUnauthorized, true},
		{"another issuer's credential", "POST", "/events/acme", "gtok", http.StatusForbidden, true},
		{"unknown issuer", "POST", "/events/initech", "tok", http.StatusNotFound, true},
		{"unknown path", "POST", "/other", "tok", http.StatusNotFound, true},
		{"wrong method", "GET", "/events/acme", "tok", http.StatusMethodNotAllowed, true},
		{"accepted", "POST", "/events/acme", "tok", http.StatusAccepted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(hangGuard))
			auth := ""
			if tt.token != "" {
				auth = "Authorization: Bearer " + tt.token + "\r\n"
			}
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/secevent+jwt\r\nContent-Length: 5\r\n\r\nx.y.z", tt.method, tt.path, auth)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("want %d, got %d", tt.wantStatus, resp.StatusCode)
			}
			// ReadResponse turns the "Connection: close" header into
			// resp.Close.
			if resp.Close != tt.wantClose {
				t.Errorf("want Connection: close %v, got %v", tt.wantClose, resp.Close)
			}
			// Closed by the server: the next read ends with EOF. A
			// keep-alive connection instead answers a second request.
			if tt.wantClose {
				n, err := br.Read(make([]byte, 1))
				if n != 0 || !isClosed(err) {
					t.Fatalf("want the connection closed by the server, got %d bytes, %v", n, err)
				}
				return
			}
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("keep-alive connection: second request: %v", err)
			}
			resp.Body.Close()
		})
	}
}

// isClosed reports whether err is how a read ends on a connection the
// peer closed.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// bodyReadSignal wraps the push handler so that the first Read of each
// request body is reported on ch: the handler has then passed every check
// that comes before reading the body.
func bodyReadSignal(ch chan<- struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = &signalReader{ReadCloser: r.Body, ch: ch}
			next.ServeHTTP(w, r)
		})
	}
}

type signalReader struct {
	io.ReadCloser
	ch   chan<- struct{}
	sent atomic.Bool
}

func (s *signalReader) Read(p []byte) (int, error) {
	if s.sent.CompareAndSwap(false, true) {
		s.ch <- struct{}{}
	}
	return s.ReadCloser.Read(p)
}

// TestSlowUploadsTakeNoSlot: with MaxConcurrent 2, three authenticated
// pushes whose bodies are still arriving do not take the issuer's slots:
// a fast push of the same issuer gets 202, not 429. Once two SETs are in
// the intake, the next complete push gets 429.
func TestSlowUploadsTakeNoSlot(t *testing.T) {
	in := &blockingIntake{entered: make(chan struct{}, 8), release: make(chan struct{})}
	reading := make(chan struct{}, 8)
	srv := twoIssuers(t, in, 2, bodyReadSignal(reading))
	addr := strings.TrimPrefix(srv.URL, "http://")

	// Three slow uploads: head and part of the body, the rest never. None
	// may be answered (a 429 would be).
	answered := make(chan string, 3)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /events/acme HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Type: application/secevent+jwt\r\nContent-Length: 1000\r\n\r\ne")
		go func() {
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil {
				answered <- strings.TrimSpace(line)
			}
		}()
	}
	for range 3 {
		select {
		case <-reading: // this upload's handler is reading its body
		case line := <-answered:
			t.Fatalf("a slow upload was answered before its body arrived: %q", line)
		case <-time.After(hangGuard):
			// The third one never reads its body when the slot is taken
			// before the body: its 429 waits for the body it discards.
			t.Fatal("the three slow uploads did not all reach the body read")
		}
	}

	// A fast push of the same issuer is taken into the intake (not 429).
	fast := pushAsync(t, srv.URL)
	select {
	case <-in.entered:
	case code := <-fast:
		t.Fatalf("fast push beside 3 slow uploads at MaxConcurrent 2: want it in the intake, got %d", code)
	case <-time.After(hangGuard):
		t.Fatal("the fast push did not reach the intake")
	}

	// A second complete push fills the slots; a third gets 429.
	second := pushAsync(t, srv.URL)
	<-in.entered
	resp := push(t, srv.URL+"/events/acme", "tok", "application/secevent+jwt", "x.y.z")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third complete push with 2 in the intake: want 429 with Retry-After 1, got %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(in.release)
	for _, ch := range []<-chan int{fast, second} {
		if code := <-ch; code != http.StatusAccepted {
			t.Errorf("push in the limit: want 202, got %d", code)
		}
	}
}

// TestListenerCap: with a cap of 2, a third connection is accepted only
// after one of the first two is closed, and Open counts them.
func TestListenerCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := gateway.NewListener(raw, gateway.ListenerConfig{MaxConnections: 2, Logger: slog.New(slog.DiscardHandler)})
	defer ln.Close()
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); err != nil {
		t.Fatal(err)
	}
	if got := ln.Open(); got != 2 {
		t.Fatalf("want 2 open, got %d", got)
	}
	var closedFirst atomic.Bool
	third := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			third <- false
			return
		}
		afterClose := closedFirst.Load()
		c.Close()
		third <- afterClose
	}()
	closedFirst.Store(true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_ = a.Close() // a second Close gives nothing back twice
	if afterClose := <-third; !afterClose {
		t.Fatal("the third connection was accepted while two were open")
	}
	if got := ln.Open(); got != 1 {
		t.Fatalf("want 1 open, got %d", got)
	}
	// The listener closing ends an Accept waiting for a slot.
	b, _ := net.Dial("tcp", raw.Addr().String())
	defer b.Close()
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept waiting for a slot after Close: want net.ErrClosed, got %v", err)
	}
}

// fakeErrListener fails every Accept with err.
type fakeErrListener struct {
	net.Listener
	err error
}

func (f fakeErrListener) Accept() (net.Conn, error) { return nil, f.err }

// TestListenerLogsAcceptErrorsRateLimited: accept errors are logged at
// warn, at most one line per LogEvery; the next line counts the ones left
// out.
func TestListenerLogsAcceptErrorsRateLimited(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	ln := gateway.NewListener(fakeErrListener{Listener: raw, err: emfile}, gateway.ListenerConfig{
		MaxConnections: 4, Logger: log, LogEvery: time.Second, Now: func() time.Time { return now },
	})
	for range 100 {
		if _, err := ln.Accept(); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("want the EMFILE error passed on, got %v", err)
		}
	}
	now = now.Add(time.Second)
	_, _ = ln.Accept()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines for 101 errors over 1s, got %d:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"suppressed=0", "suppressed=99"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "too many open files") {
			t.Errorf("line %d: want a warning with %s naming the error, got %q", i+1, want, lines[i])
		}
	}
	// The slots of failed Accepts were given back (else the fifth of the
	// 100 Accepts above would have waited for ever).
	if ln.Open() != 0 {
		t.Errorf("want 0 open after failed accepts, got %d", ln.Open())
	}
}
