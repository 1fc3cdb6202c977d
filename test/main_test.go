// Package test holds the black-box tests of the setgate binary: it is
// built once, run as a child process against a real nats-server with
// JetStream (in this process) and real transmitters (internal/transmitter),
// and observed only through HTTP, its log and what lands in NATS.
package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/internal/transmitter"
)

// binary is the setgate binary built by TestMain.
var binary string

// Generous bounds on waiting for something that must happen; they only
// stop a hung test and assert nothing about speed.
const (
	waitLong  = 60 * time.Second
	waitShort = 20 * time.Second
	poll      = 20 * time.Millisecond
)

const (
	streamName = "SECEVENTS"
	audience   = "https://setgate.test/"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "setgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "setgate")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/setgate")...)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "test: go build ./cmd/setgate: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// checkFor calls f until it returns nil, failing t with f's last error
// when total has passed.
func checkFor(t testing.TB, total, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", total, err)
		}
		time.Sleep(sleep)
	}
}

// ---------------------------------------------------------------------
// NATS

// natsServer is an in-process nats-server with JetStream that can be shut
// down and started again on the same port and store directory.
type natsServer struct {
	t        testing.TB
	storeDir string

	mu   sync.Mutex
	port int
	srv  *server.Server
}

// startNATS starts a JetStream server on a random loopback port; it is
// shut down at the end of the test.
func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, storeDir: t.TempDir(), port: -1}
	n.Start()
	t.Cleanup(n.Shutdown)
	return n
}

// Start starts the server (again), on the port of the first start.
func (n *natsServer) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.t.Fatal("nats: already running")
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.storeDir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		n.t.Fatalf("nats: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(waitShort) {
		srv.Shutdown()
		n.t.Fatalf("nats: not ready on port %d", n.port)
	}
	n.port = srv.Addr().(*net.TCPAddr).Port
	n.srv = srv
}

// Shutdown stops the server and waits until it is down. It is a no-op when
// the server is not running.
func (n *natsServer) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// URL is the client URL; it stays the same across restarts.
func (n *natsServer) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// connect returns a NATS connection to url, closed at the end of the test.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("setgate-test"))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// consumerURL returns url with the user consumer and the password serve
// keeps in SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE (default
// <SETGATE_DATA_DIR>/consumer.password), as `nats --user consumer
// --password "$(cat …)"` logs in.
func consumerURL(t testing.TB, url string, env map[string]string) string {
	t.Helper()
	path := env["SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE"]
	if path == "" {
		path = filepath.Join(env["SETGATE_DATA_DIR"], "consumer.password")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("consumer password: %v", err)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("nats URL %q: %v", url, err)
	}
	u.User = neturl.UserPassword("consumer", strings.TrimSpace(string(b)))
	return u.String()
}

// stored is one message read back from the stream.
type stored struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// jti is the message's Setgate-Jti header.
func (m stored) jti() string { return m.Header.Get("Setgate-Jti") }

// secevents opens the SECEVENTS stream over nc.
func secevents(ctx context.Context, t testing.TB, nc *nats.Conn) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		t.Fatalf("stream %s: %v", streamName, err)
	}
	return js, s
}

// readStream returns every message of the SECEVENTS stream on the server at
// url, in stream order.
func readStream(t testing.TB, url string) []stored {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("setgate-test-reader"))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_, s := secevents(ctx, t, nc)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", streamName, err)
	}
	want := int(info.State.Msgs)
	out := make([]stored, 0, want)
	if want == 0 {
		return out
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	deadline := time.Now().Add(waitLong)
	for len(out) < want {
		batch, err := cons.Fetch(min(want-len(out), 500), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for m := range batch.Messages() {
			out = append(out, stored{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("fetch: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: read %d of %d messages, then nothing more", streamName, len(out), want)
		}
	}
	return out
}

// byJTI indexes msgs by their Setgate-Jti header.
func byJTI(msgs []stored) map[string][]stored {
	m := make(map[string][]stored, len(msgs))
	for _, msg := range msgs {
		m[msg.jti()] = append(m[msg.jti()], msg)
	}
	return m
}

// ---------------------------------------------------------------------
// Issuers

// issuers is the configuration the gateway runs with: acme (ES256) and
// globex (ES256, default allow-list), each with its own transmitter and bearer token.
type issuers struct {
	acme, globex           *transmitter.Transmitter
	acmeToken, globexToken string
	file                   string // the issuers YAML
}

// acmeOnly writes an issuers file with acme alone, verifying with the
// keys at jwksURI; extra is more issuer keys, each line indented for the
// issuer block.
func acmeOnly(t testing.TB, acme *transmitter.Transmitter, jwksURI, extra string) *issuers {
	t.Helper()
	dir := t.TempDir()
	is := &issuers{acme: acme, acmeToken: randomHex(t), file: filepath.Join(dir, "issuers.yaml")}
	tokFile := filepath.Join(dir, "acme.token")
	writeFile(t, tokFile, is.acmeToken+"\n")
	writeFile(t, is.file, fmt.Sprintf(`issuers:
  - name: acme
    issuer: %s
    audience: %s
    jwks_uri: %s
    algorithms: [ES256]
%s    push:
      bearer_token_file: %s
`, acme.Issuer(), audience, jwksURI, extra, tokFile))
	return is
}

// newIssuers starts the two transmitters and writes the issuers file and
// token files under a temp dir.
func newIssuers(t testing.TB) *issuers {
	t.Helper()
	dir := t.TempDir()
	is := &issuers{
		acme:        newTransmitter(t, "ES256"),
		globex:      newTransmitter(t, "ES256"),
		acmeToken:   randomHex(t),
		globexToken: randomHex(t),
		file:        filepath.Join(dir, "issuers.yaml"),
	}
	acmeTok, globexTok := filepath.Join(dir, "acme.token"), filepath.Join(dir, "globex.token")
	writeFile(t, acmeTok, is.acmeToken+"\n")
	writeFile(t, globexTok, is.globexToken+"\n")
	writeFile(t, is.file, fmt.Sprintf(`issuers:
  - name: acme
    issuer: %s
    audience: [%s]
    jwks_uri: %s
    algorithms: [ES256]
    push:
      bearer_token_file: %s
  - name: globex
    issuer: %s
    audience: %s
    jwks_uri: %s
    push:
      bearer_token_file: %s
`, is.acme.Issuer(), audience, is.acme.JWKSURL(), acmeTok,
		is.globex.Issuer(), audience, is.globex.JWKSURL(), globexTok))
	return is
}

// newTransmitter starts a transmitter signing with alg for audience; it is
// closed at the end of the test.
func newTransmitter(t testing.TB, alg string) *transmitter.Transmitter {
	t.Helper()
	tr, err := transmitter.New(transmitter.Options{Alg: alg, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------
// The gateway process

// gwOptions say how to run one gateway.
type gwOptions struct {
	// NATS is the external server; nil runs the embedded one.
	NATS *natsServer
	// Issuers defaults to a fresh newIssuers.
	Issuers *issuers
	// DataDir is SETGATE_DATA_DIR; default a temp dir.
	DataDir string
	// Env is added to (and overrides) the environment.
	Env map[string]string
}

// gatewayProc is a running setgate process.
type gatewayProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	log    *logSink
	*issuers

	push, admin string // host:port
	natsURL     string // the "nats" field of the start-up line; embedded: with user consumer's password

	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	killed  atomic.Bool   // the test sent SIGKILL on purpose (kill)
}

// startGateway runs setgate serve, waits for its start-up line and for
// /readyz to answer 200. The process gets SIGTERM at the end of the test
// (if still running) and is waited for; its log is printed if the test
// failed.
func startGateway(t testing.TB, o gwOptions) *gatewayProc {
	t.Helper()
	if o.Issuers == nil {
		o.Issuers = newIssuers(t)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	env := map[string]string{
		"SETGATE_ISSUERS_FILE":       o.Issuers.file,
		"SETGATE_HTTP_ADDR":          "127.0.0.1:0",
		"SETGATE_ADMIN_ADDR":         "127.0.0.1:0",
		"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR":           o.DataDir,
		"SETGATE_LOG_FORMAT":         "json",
		"SETGATE_LOG_LEVEL":          "info",
		"SETGATE_SHUTDOWN_TIMEOUT":   "10s",
	}
	if o.NATS != nil {
		env["SETGATE_NATS_URL"] = o.NATS.URL()
	}
	for k, v := range o.Env {
		env[k] = v
	}
	g := &gatewayProc{t: t, issuers: o.Issuers, log: newLogSink(), done: make(chan struct{})}
	// Cancelling ctx (at cleanup) sends SIGTERM; a process still running
	// WaitDelay later is killed.
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.cmd = exec.CommandContext(ctx, binary, "serve")
	g.cmd.Cancel = func() error { return g.cmd.Process.Signal(syscall.SIGTERM) }
	g.cmd.WaitDelay = waitLong
	g.cmd.Env = childEnv(env)
	g.cmd.Stderr = g.log
	g.cmd.Stdout = g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start setgate: %v", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.stop()
		if strings.Contains(g.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in setgate (pid %d)", g.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("setgate log (pid %d):\n%s", g.cmd.Process.Pid, g.log)
		}
	})

	select {
	case line := <-g.log.started:
		g.push, _ = line["push"].(string)
		g.admin, _ = line["admin"].(string)
		g.natsURL, _ = line["nats"].(string)
	case <-g.done:
		t.Fatalf("setgate exited before starting: %v", g.waitErr)
	case <-time.After(waitLong):
		t.Fatal("setgate did not log its start-up line")
	}
	if g.push == "" || g.admin == "" || g.natsURL == "" {
		t.Fatalf("start-up line lacks push, admin or nats: push=%q admin=%q nats=%q", g.push, g.admin, g.natsURL)
	}
	if env["SETGATE_NATS_URL"] == "" {
		g.natsURL = consumerURL(t, g.natsURL, env)
	}
	checkFor(t, waitLong, poll, func() error {
		if code, err := g.getStatus("/readyz"); err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz: want 200, got %d (%v)", code, err)
		}
		return nil
	})
	return g
}

// childEnv is this process's environment without SETGATE_* plus vars.
func childEnv(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SETGATE_") {
			out = append(out, kv)
		}
	}
	// A race-built binary otherwise sleeps 1 s at exit.
	out = append(out, "GORACE=atexit_sleep_ms=0")
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// stop sends SIGTERM unless the process has exited, and waits for it
// (it is killed if it does not exit within WaitDelay).
func (g *gatewayProc) stop() {
	g.cancel()
	<-g.done
	if ws, ok := g.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && !g.killed.Load() {
		g.t.Errorf("setgate did not exit after SIGTERM; killed")
	}
}

// kill sends SIGKILL (kill -9: no drain, no final acknowledgement, no
// lease release) and waits for the process to exit.
func (g *gatewayProc) kill() {
	g.t.Helper()
	g.killed.Store(true)
	if err := g.cmd.Process.Kill(); err != nil {
		g.t.Fatalf("SIGKILL: %v", err)
	}
	_ = g.wait(waitLong)
}

// terminate sends SIGTERM.
func (g *gatewayProc) terminate() {
	g.t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		g.t.Fatalf("SIGTERM: %v", err)
	}
}

// wait waits for the process to exit and returns what cmd.Wait returned.
func (g *gatewayProc) wait(bound time.Duration) error {
	g.t.Helper()
	select {
	case <-g.done:
		return g.waitErr
	case <-time.After(bound):
		g.t.Fatalf("setgate still running %v after being asked to stop", bound)
		return nil
	}
}

// url is the push receiver's URL for path.
func (g *gatewayProc) url(path string) string { return "http://" + g.push + path }

// getStatus GETs path on the admin listener and returns the status.
func (g *gatewayProc) getStatus(path string) (int, error) {
	resp, err := httpClient.Get("http://" + g.admin + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// pushAcme signs one session-revoked SET as acme and pushes it.
func (g *gatewayProc) pushAcme(t testing.TB) (jti string, resp transmitter.Response) {
	t.Helper()
	jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "policy"}, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	return jti, g.pushAs(t, "acme", g.acmeToken, set)
}

// pushAs pushes set to /events/<name> with bearer token.
func (g *gatewayProc) pushAs(t testing.TB, name, token, set string) transmitter.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	resp, err := g.acme.Push(ctx, g.url("/events/"+name), token, set)
	if err != nil {
		t.Fatalf("push to /events/%s: %v", name, err)
	}
	return resp
}

var httpClient = &http.Client{Timeout: waitShort}

// ---------------------------------------------------------------------
// Log

// logSink collects the process's output and picks out the JSON start-up
// line.
type logSink struct {
	started chan map[string]any

	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	seen    bool
}

func newLogSink() *logSink { return &logSink{started: make(chan map[string]any, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i]
		l.partial = l.partial[i+1:]
		var rec map[string]any
		if !l.seen && json.Unmarshal(line, &rec) == nil && rec["msg"] == "setgate started" {
			l.seen = true
			l.started <- rec
		}
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// records returns every JSON log record so far.
func (l *logSink) records() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// startMustFail runs setgate serve with the issuers file and expects it to
// refuse to start; it returns what the process wrote to stderr.
func startMustFail(t *testing.T, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = childEnv(map[string]string{
		"SETGATE_ISSUERS_FILE":       file,
		"SETGATE_HTTP_ADDR":          "127.0.0.1:0",
		"SETGATE_ADMIN_ADDR":         "127.0.0.1:0",
		"SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR":           t.TempDir(),
	})
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v; stderr:\n%s", err, stderr.String())
	}
	return stderr.String()
}
