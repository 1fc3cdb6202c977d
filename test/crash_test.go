package test

import (
	"net/http"
	"testing"
	"time"
)

// checkAcceptedStored asserts that every SET answered 202 so far is in msgs
// exactly once, and returns how many SETs not (yet) answered 202 are
// stored (persisted, but the answer was lost with the process).
func (l *pushLoad) checkAcceptedStored(msgs []stored) (unackedStored int) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	stored := byJTI(msgs)
	var lost, dup []string
	for jti, sts := range l.statuses {
		n := len(stored[jti])
		switch {
		case containsStatus(sts, http.StatusAccepted) && n == 0:
			lost = append(lost, jti)
		case n > 1:
			dup = append(dup, jti)
		case n == 1 && !containsStatus(sts, http.StatusAccepted):
			unackedStored++
		}
	}
	for jti := range stored {
		if _, ok := l.statuses[jti]; !ok {
			l.t.Errorf("the stream holds jti %s that was never pushed", jti)
		}
	}
	if len(lost) > 0 {
		l.t.Errorf("%d SETs answered 202 before the crash are not in the stream, e.g. %s", len(lost), lost[0])
	}
	if len(dup) > 0 {
		l.t.Errorf("%d SETs are stored more than once, e.g. %s", len(dup), dup[0])
	}
	return unackedStored
}

// crashGateway runs push load on g, kills it with SIGKILL, checks that
// everything answered 202 is stored (read from readURL()), restarts a
// gateway with restart, retries what got no 202 there, and checks the
// stream exactly.
func crashGateway(t *testing.T, mode string, g *gatewayProc, restart func() *gatewayProc, readURL func(*gatewayProc) string) {
	load := startPushLoad(t, []*gatewayProc{g}, 4)
	load.allowErrs = true
	defer load.stop()
	load.waitAccepted(100)

	killAt := time.Now()
	g.kill()
	load.stop()
	accepted := load.accepted()
	load.mu.Lock()
	noAnswer := load.errs
	load.mu.Unlock()

	g2 := restart()
	restartTook := time.Since(killAt)
	unackedStored := load.checkAcceptedStored(readStream(t, readURL(g2)))

	load.gws[0] = g2
	retried := load.finish()
	load.check(readStream(t, readURL(g2)))
	t.Logf("gateway kill -9 (%s NATS): %d SETs; 202 before SIGKILL=%d; pushes without an answer at the kill=%d (of which stored but not acknowledged: %d); "+
		"new gateway ready %v after the kill; retried there: %d",
		mode, len(load.statuses), accepted, noAnswer, unackedStored, restartTook.Round(time.Millisecond), retried)
}

// TestGatewayKill9 kills a gateway (SIGKILL) under push load on an
// external NATS server and starts a new one on the same server: every SET
// answered 202 is stored exactly once, and the retried rest gets 202.
func TestGatewayKill9(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	is := newIssuers(t)
	opts := gwOptions{NATS: ns, Issuers: is, Env: map[string]string{"SETGATE_PUBLISH_TIMEOUT": "2s"}}
	g := startGateway(t, opts)
	crashGateway(t, "external", g, func() *gatewayProc { return startGateway(t, opts) },
		func(*gatewayProc) string { return ns.URL() })
}

// TestGatewayKill9Embedded kills a gateway running its embedded NATS server
// under push load and restarts it on the same SETGATE_DATA_DIR: nothing
// acknowledged before the crash is lost, read back through the new
// embedded server.
func TestGatewayKill9Embedded(t *testing.T) {
	t.Parallel()
	opts := gwOptions{Issuers: newIssuers(t), DataDir: t.TempDir(), Env: map[string]string{"SETGATE_PUBLISH_TIMEOUT": "2s"}}
	g := startGateway(t, opts)
	crashGateway(t, "embedded", g, func() *gatewayProc { return startGateway(t, opts) },
		func(g2 *gatewayProc) string { return g2.natsURL })
}
