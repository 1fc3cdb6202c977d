package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// TestGracefulShutdown sends SIGTERM while a push is half-way through its
// body: the push still gets 202 and is stored, readiness turns false, new
// connections are refused and the process exits with 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	g := startGateway(t, gwOptions{NATS: ns, Env: map[string]string{
		"SETGATE_SHUTDOWN_TIMEOUT": "15s",
		"SETGATE_READ_TIMEOUT":     "60s", // the test holds the body back; do not let a slow machine cut it
	}})
	jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "user"}, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}

	// The client asks for 100-continue, so the server's "100 Continue"
	// tells us the handler is running and reading the body.
	body, bodyW := io.Pipe()
	defer bodyW.Close()
	got100 := make(chan struct{})
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(got100) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url("/events/acme"), body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(set))
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Authorization", "Bearer "+g.acmeToken)
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: waitLong}}
	defer client.CloseIdleConnections()

	type answer struct {
		resp transmitter.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{transmitter.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err}
	}()
	select {
	case <-got100:
	case a := <-answered:
		t.Fatalf("answered before the body was sent: %d %q %v", a.resp.Status, a.resp.Body, a.err)
	case <-time.After(waitLong):
		t.Fatal("no 100 Continue from the push receiver")
	}
	half := len(set) / 2
	if _, err := io.WriteString(bodyW, set[:half]); err != nil {
		t.Fatal(err)
	}

	g.terminate()

	checkFor(t, waitLong, poll, func() error {
		code, err := g.getStatus("/readyz")
		if err == nil && code == http.StatusOK {
			return fmt.Errorf("/readyz after SIGTERM: want %d or no connection, got %d", http.StatusServiceUnavailable, code)
		}
		return nil
	})
	checkFor(t, waitLong, poll, func() error {
		c, err := net.Dial("tcp", g.push)
		if err != nil {
			return nil
		}
		c.Close()
		return errors.New("the push listener still accepts connections after SIGTERM")
	})
	select {
	case a := <-answered:
		t.Fatalf("in-flight push answered before its body was complete: %d %q %v", a.resp.Status, a.resp.Body, a.err)
	default:
	}

	if _, err := io.WriteString(bodyW, set[half:]); err != nil {
		t.Fatal(err)
	}
	bodyW.Close()
	var a answer
	select {
	case a = <-answered:
	case <-time.After(waitLong):
		t.Fatal("the in-flight push got no answer")
	}
	if a.err != nil {
		t.Fatalf("in-flight push: %v", a.err)
	}
	if a.resp.Status != http.StatusAccepted || len(a.resp.Body) != 0 {
		t.Errorf("in-flight push: want %d with an empty body, got %d %q", http.StatusAccepted, a.resp.Status, a.resp.Body)
	}

	// setgate exits non-zero when its drain overruns SETGATE_SHUTDOWN_TIMEOUT
	// (by its own clock), so status 0 also says it finished within it.
	if err := g.wait(waitLong); err != nil {
		t.Errorf("exit: want status 0, got %v", err)
	}
	if !hasRecord(g.log, "stopped") {
		t.Errorf("log: want a %q record", "stopped")
	}
	if c, err := net.Dial("tcp", g.push); err == nil {
		c.Close()
		t.Errorf("the push listener accepts connections after exit")
	}

	msgs := byJTI(readStream(t, ns.URL()))
	if n := len(msgs[jti]); n != 1 {
		t.Errorf("in-flight SET %s: want 1 message in the stream, got %d", jti, n)
	}
}

// hasRecord reports whether the log has a JSON record with msg.
func hasRecord(l *logSink, msg string) bool {
	for _, rec := range l.records() {
		if rec["msg"] == msg {
			return true
		}
	}
	return false
}

// TestEmbeddedNATSKeepsEvents runs with the embedded NATS server, stops
// with SIGTERM and starts again on the same data directory: every
// accepted event is still there.
func TestEmbeddedNATSKeepsEvents(t *testing.T) {
	t.Parallel()
	const n = 5
	dataDir := t.TempDir()
	is := newIssuers(t)

	first := startGateway(t, gwOptions{Issuers: is, DataDir: dataDir})
	jtis := make([]string, 0, n)
	for range n {
		jti, resp := first.pushAcme(t)
		if resp.Status != http.StatusAccepted {
			t.Fatalf("push: want %d, got %d (body %q)", http.StatusAccepted, resp.Status, resp.Body)
		}
		jtis = append(jtis, jti)
	}
	first.terminate()
	if err := first.wait(waitLong); err != nil {
		t.Fatalf("first run exit: want status 0, got %v", err)
	}

	second := startGateway(t, gwOptions{Issuers: is, DataDir: dataDir})
	msgs := readStream(t, second.natsURL)
	if len(msgs) != n {
		t.Errorf("stream after restart: want %d messages, got %d", n, len(msgs))
	}
	stored := byJTI(msgs)
	for _, jti := range jtis {
		if len(stored[jti]) != 1 {
			t.Errorf("jti %s: want 1 message after restart, got %d", jti, len(stored[jti]))
		}
	}
}
