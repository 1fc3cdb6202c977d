package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/internal/transmitter"
)

// ---------------------------------------------------------------------
// A 3-node JetStream cluster in this process

// clusterNode is one node of a natsCluster; it can be shut down and started
// again on the same client port, cluster port and store directory.
type clusterNode struct {
	name     string
	storeDir string
	cport    int // cluster (route) port, fixed up front

	mu   sync.Mutex
	port int // client port, fixed after the first start
	srv  *server.Server
}

// natsCluster is a 3-node JetStream cluster on loopback.
type natsCluster struct {
	t     testing.TB
	name  string
	nodes []*clusterNode
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCluster starts 3 JetStream nodes routed to each other and waits
// until an R3 stream can be placed; the nodes are shut down at the end of
// the test.
func startCluster(t testing.TB) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, name: "setgate-" + randomHex(t)[:8]}
	for i := range 3 {
		c.nodes = append(c.nodes, &clusterNode{
			name: fmt.Sprintf("%s-n%d", c.name, i+1), storeDir: t.TempDir(), cport: freePort(t), port: -1,
		})
	}
	t.Cleanup(c.ShutdownAll)
	for i := range c.nodes {
		c.Start(i)
	}
	c.waitReady()
	return c
}

// Start starts node i (again).
func (c *natsCluster) Start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		c.t.Fatalf("nats %s: already running", n.name)
	}
	var routes []*url.URL
	for _, o := range c.nodes {
		if o != n {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", o.cport)})
		}
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: n.name, Host: "127.0.0.1", Port: n.port,
		JetStream: true, StoreDir: n.storeDir, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: n.cport},
		Routes:  routes,
	})
	if err != nil {
		c.t.Fatalf("nats %s: %v", n.name, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(waitShort) {
		srv.Shutdown()
		c.t.Fatalf("nats %s: not ready", n.name)
	}
	n.port = srv.Addr().(*net.TCPAddr).Port
	n.srv = srv
}

// Shutdown stops node i and waits until it is down; a no-op when it is not
// running.
func (c *natsCluster) Shutdown(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// ShutdownAll stops every node.
func (c *natsCluster) ShutdownAll() {
	for i := range c.nodes {
		c.Shutdown(i)
	}
}

// URL is the client URL of node i; it stays the same across restarts.
func (c *natsCluster) URL(i int) string {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// Seeds is a comma-separated URL list of every node, node first.
func (c *natsCluster) Seeds(first int) string {
	var urls []string
	for k := range c.nodes {
		urls = append(urls, c.URL((first+k)%len(c.nodes)))
	}
	return strings.Join(urls, ",")
}

// SeedsExcept lists every node but skip.
func (c *natsCluster) SeedsExcept(skip int) string {
	var urls []string
	for k := range c.nodes {
		if k != skip {
			urls = append(urls, c.URL(k))
		}
	}
	return strings.Join(urls, ",")
}

// index is the node named name, or -1.
func (c *natsCluster) index(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// waitReady waits until a meta leader is elected and an R3 stream can be
// created (every node is a JetStream peer).
func (c *natsCluster) waitReady() {
	c.t.Helper()
	nc, err := nats.Connect(c.Seeds(0), nats.Name("setgate-test-probe"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	checkFor(c.t, waitLong, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("jetstream account info: %w", err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"}, Replicas: 3}); err != nil {
			return fmt.Errorf("R3 probe stream: %w", err)
		}
		return js.DeleteStream(ctx, "PROBE")
	})
}

// streamLeader is the index of the node leading the SECEVENTS stream,
// asked through the nodes in urls.
func (c *natsCluster) streamLeader(t testing.TB, urls string) int {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name("setgate-test-leader"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	checkFor(t, waitLong, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, streamName)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("stream has no leader")
		}
		if info.Config.Replicas != 3 {
			t.Fatalf("stream %s has %d replicas; want 3 (SETGATE_STREAM_REPLICAS=3)", streamName, info.Config.Replicas)
		}
		if leader = c.index(info.Cluster.Leader); leader < 0 {
			return fmt.Errorf("unknown stream leader %q", info.Cluster.Leader)
		}
		return nil
	})
	return leader
}

// readSettled waits until the SECEVENTS stream has a leader and every
// replica is current, then reads it through urls like readStream, starting
// over when a read fails while the cluster is still moving.
func (c *natsCluster) readSettled(t testing.TB, urls string) []stored {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name("setgate-test-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	checkFor(t, waitLong, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, streamName)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("stream has no leader")
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		want := int(info.State.Msgs)
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return fmt.Errorf("ordered consumer: %w", err)
		}
		out = make([]stored, 0, want)
		for len(out) < want {
			batch, err := cons.Fetch(min(want-len(out), 500), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return fmt.Errorf("fetch: %w", err)
			}
			n := len(out)
			for m := range batch.Messages() {
				out = append(out, stored{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("fetch: %w", err)
			}
			if len(out) == n {
				return fmt.Errorf("read %d of %d messages, then nothing more", n, want)
			}
		}
		return nil
	})
	return out
}

// clusterGateways starts two setgate processes (the built binary) on the
// cluster, the first seeded with node 1 first, the second with node 2
// first, sharing one set of issuers and an R3 stream.
func clusterGateways(t *testing.T, c *natsCluster) []*gatewayProc {
	t.Helper()
	is := newIssuers(t)
	var gws []*gatewayProc
	for i := range 2 {
		gws = append(gws, startGateway(t, gwOptions{Issuers: is, Env: map[string]string{
			"SETGATE_NATS_URL":        c.Seeds(i),
			"SETGATE_STREAM_REPLICAS": "3",
			"SETGATE_PUBLISH_TIMEOUT": "2s",
		}}))
	}
	return gws
}

// ---------------------------------------------------------------------
// Push load with retries, and its exact check against the stream

// pushLoad pushes fresh acme SETs from a few goroutines per gateway; each
// SET is retried (same bytes) until it gets 202, up to a cap of attempts.
type pushLoad struct {
	t   *testing.T
	gws []*gatewayProc

	mu       sync.Mutex
	sets     map[string]string // jti -> SET
	gwOf     map[string]int    // jti -> gateway index it was pushed to
	statuses map[string][]int  // jti -> answers, 0 for no answer
	counts   map[int]int
	errs     int
	noRetry  int // 503s without Retry-After
	last202  time.Time
	maxGap   time.Duration // longest time between two consecutive 202s
	gapStart time.Time     // when maxGap began

	// down is set by the test while no NATS node runs; a 202 to a push
	// sent and answered entirely while down is a 202 without persistence.
	down     atomic.Bool
	violated []string

	// allowErrs accepts pushes without an HTTP answer (a killed gateway).
	allowErrs bool

	stopped atomic.Bool
	wg      sync.WaitGroup
}

func startPushLoad(t *testing.T, gws []*gatewayProc, perGateway int) *pushLoad {
	l := &pushLoad{t: t, gws: gws, sets: map[string]string{}, gwOf: map[string]int{},
		statuses: map[string][]int{}, counts: map[int]int{}}
	for gi, g := range gws {
		for p := range perGateway {
			l.wg.Add(1)
			go l.pusher(gi, g, p)
		}
	}
	return l
}

func (l *pushLoad) pusher(gi int, g *gatewayProc, p int) {
	defer l.wg.Done()
	const maxAttempts = 50
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ; !l.stopped.Load(); <-tick.C {
		jti, set, err := g.acme.SET(transmitter.SessionRevoked, map[string]any{"initiating_entity": "system"},
			fmt.Sprintf("user%d-%d@acme.example", gi, p))
		if err != nil {
			l.t.Error(err)
			return
		}
		for attempt := 0; attempt < maxAttempts && !l.stopped.Load(); attempt++ {
			if l.push(gi, jti, set) == http.StatusAccepted {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// push pushes set to gateway gi once and records the answer.
func (l *pushLoad) push(gi int, jti, set string) int {
	g := l.gws[gi]
	downBefore := l.down.Load()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	resp, err := g.acme.Push(ctx, g.url("/events/acme"), g.acmeToken, set)
	cancel()
	downAfter := l.down.Load()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sets[jti] = set
	if _, ok := l.gwOf[jti]; !ok {
		l.gwOf[jti] = gi
	}
	if err != nil {
		l.statuses[jti] = append(l.statuses[jti], 0)
		l.errs++
		return 0
	}
	l.statuses[jti] = append(l.statuses[jti], resp.Status)
	l.counts[resp.Status]++
	switch resp.Status {
	case http.StatusAccepted:
		if downBefore && downAfter {
			l.violated = append(l.violated, jti)
		}
		if !l.last202.IsZero() && now.Sub(l.last202) > l.maxGap {
			l.maxGap, l.gapStart = now.Sub(l.last202), l.last202
		}
		l.last202 = now
	case http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" {
			l.noRetry++
		}
	}
	return resp.Status
}

// accepted is the number of 202 answers so far.
func (l *pushLoad) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[http.StatusAccepted]
}

// waitAccepted waits for n more 202 answers.
func (l *pushLoad) waitAccepted(n int) {
	l.t.Helper()
	base := l.accepted()
	checkFor(l.t, waitLong, poll, func() error {
		if got := l.accepted() - base; got < n {
			return fmt.Errorf("want %d more answers of 202, got %d", n, got)
		}
		return nil
	})
}

// stop stops the pushers and waits for them.
func (l *pushLoad) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// finish stops the pushers and retries, as a transmitter would, every SET
// that never got a 202, until it does.
func (l *pushLoad) finish() (retried int) {
	l.t.Helper()
	l.stop()
	l.mu.Lock()
	var retry []string
	for jti, sts := range l.statuses {
		if !containsStatus(sts, http.StatusAccepted) {
			retry = append(retry, jti)
		}
	}
	l.mu.Unlock()
	for _, jti := range retry {
		gi := l.gwOf[jti]
		checkFor(l.t, waitLong, poll, func() error {
			if st := l.push(gi, jti, l.sets[jti]); st != http.StatusAccepted {
				return fmt.Errorf("retry of %s: want 202, got %d", jti, st)
			}
			return nil
		})
	}
	return len(retry)
}

// check asserts exactly: only 202 and 503 (with Retry-After) were
// answered, every SET got a 202 and is in msgs exactly once, and msgs hold
// nothing else.
func (l *pushLoad) check(msgs []stored) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.t
	for status, n := range l.counts {
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			t.Errorf("status %d answered %d times; want only 202 and 503", status, n)
		}
	}
	if l.errs > 0 && !l.allowErrs {
		t.Errorf("%d pushes got no HTTP answer; want 202 or 503 for every push", l.errs)
	}
	if len(l.violated) > 0 {
		t.Errorf("%d pushes sent and answered while no NATS node ran got 202, e.g. %s", len(l.violated), l.violated[0])
	}
	if l.noRetry > 0 {
		t.Errorf("%d answers of 503 without Retry-After", l.noRetry)
	}
	checkAnsweredStoredOnce(t, msgs, l.statuses)
}

// summary is the counts and the longest gap without a 202, for the log.
func (l *pushLoad) summary(since time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	gapAt := "n/a"
	other := 0
	for status, n := range l.counts {
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			other += n
		}
	}
	if !l.gapStart.IsZero() {
		gapAt = l.gapStart.Sub(since).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%d SETs; answers: 202=%d 503=%d other=%d transport errors=%d; longest gap without a 202: %v (began %s after the fault)",
		len(l.statuses), l.counts[http.StatusAccepted], l.counts[http.StatusServiceUnavailable],
		other,
		l.errs, l.maxGap.Round(time.Millisecond), gapAt)
}

// ---------------------------------------------------------------------
// Tests

// TestClusterStreamLeaderLost pushes to two gateways on a 3-node cluster
// with an R3 stream, shuts down the node leading the stream and starts it
// again: every 202'd SET is stored exactly once, pushes during the
// election get 503 with Retry-After or 202, nothing else.
func TestClusterStreamLeaderLost(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	gws := clusterGateways(t, c)
	load := startPushLoad(t, gws, 3)
	defer load.finish()
	load.waitAccepted(30)

	leader := c.streamLeader(t, c.Seeds(0))
	downAt := time.Now()
	c.Shutdown(leader)
	shutdownTook := time.Since(downAt)
	newLeader := c.streamLeader(t, c.SeedsExcept(leader))
	electedAfter := time.Since(downAt)
	load.waitAccepted(30)

	upAt := time.Now()
	c.Start(leader)
	load.waitAccepted(30)
	retried := load.finish()

	load.check(c.readSettled(t, c.SeedsExcept(leader)))
	t.Logf("stream leader lost: %s; old leader %s shut down in %v, new leader %s seen after %v, node down for %v; retried after the load: %d",
		load.summary(downAt), c.nodes[leader].name, shutdownTook.Round(time.Millisecond), c.nodes[newLeader].name,
		electedAfter.Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond), retried)
}

// TestClusterAllDown pushes to two gateways on a 3-node cluster, shuts
// every node down and starts them again: 503 with Retry-After while down,
// and every 202'd SET stored exactly once.
func TestClusterAllDown(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	gws := clusterGateways(t, c)
	load := startPushLoad(t, gws, 3)
	defer load.finish()
	load.waitAccepted(30)

	downAt := time.Now()
	c.ShutdownAll()
	load.down.Store(true)
	shutdownTook := time.Since(downAt)
	base503 := func() int { load.mu.Lock(); defer load.mu.Unlock(); return load.counts[http.StatusServiceUnavailable] }
	before := base503()
	for _, g := range gws {
		checkFor(t, waitLong, poll, func() error {
			if code, _ := g.getStatus("/readyz"); code != http.StatusServiceUnavailable {
				return fmt.Errorf("/readyz while NATS is down: want 503, got %d", code)
			}
			return nil
		})
	}
	checkFor(t, waitLong, poll, func() error {
		if n := base503() - before; n < 20 {
			return fmt.Errorf("want 20 answers of 503 while the cluster is down, got %d", n)
		}
		return nil
	})
	acceptedWhileDown := load.accepted()

	load.down.Store(false)
	upAt := time.Now()
	for i := range c.nodes {
		c.Start(i)
	}
	load.waitAccepted(30)
	firstBack := time.Since(upAt)
	for _, g := range gws {
		checkFor(t, waitLong, poll, func() error {
			if code, _ := g.getStatus("/readyz"); code != http.StatusOK {
				return fmt.Errorf("/readyz after the restart: want 200, got %d", code)
			}
			return nil
		})
	}
	retried := load.finish()

	load.check(c.readSettled(t, c.Seeds(0)))
	t.Logf("all of NATS down and back: %s; shutdown took %v, down for %v, 30 more 202s %v after the restart began; 202s before restart (incl. in flight at shutdown): %d; retried after the load: %d",
		load.summary(downAt), shutdownTook.Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond),
		firstBack.Round(time.Millisecond), acceptedWhileDown, retried)
}
