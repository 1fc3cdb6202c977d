package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ListenerConfig configures a [Listener].
type ListenerConfig struct {
	// MaxConnections caps the connections open at once; Accept waits for
	// one to close before taking the next from the kernel's accept queue.
	// Zero or less: no cap.
	MaxConnections int
	// Logger receives accept errors at warn. Required.
	Logger *slog.Logger
	// LogEvery is the least time between two accept-error log lines; the
	// errors in between are counted and the count is logged with the next
	// line. Zero: one second.
	LogEvery time.Duration
	// Now is the clock for LogEvery. Nil: time.Now.
	Now func() time.Time
}

// Listener wraps the push listener: it caps open connections, counts them
// and logs accept errors (EMFILE, ENFILE, …) at warn without letting a
// flood of them flood the log. Create it with [NewListener].
type Listener struct {
	net.Listener
	cfg  ListenerConfig
	sem  chan struct{} // nil: no cap
	open atomic.Int64

	closeOnce sync.Once
	closed    chan struct{}

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Listener{Listener: ln, cfg: cfg, closed: make(chan struct{})}
	if cfg.MaxConnections > 0 {
		l.sem = make(chan struct{}, cfg.MaxConnections)
	}
	return l
}

// Open is the number of accepted connections not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept waits for a free connection slot, then for a connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		if !errors.Is(err, net.ErrClosed) {
			l.logAcceptError(err)
		}
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

// Close closes the listener; an Accept waiting for a slot returns.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *Listener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

// logAcceptError logs err at warn unless a line was logged less than
// LogEvery ago; then it only counts err for the next line.
func (l *Listener) logAcceptError(err error) {
	l.logMu.Lock()
	now := l.cfg.Now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < l.cfg.LogEvery {
		l.suppressed++
		l.logMu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.lastLog, l.suppressed = now, 0
	l.logMu.Unlock()
	l.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "push listener: accept failed; retrying",
		slog.String("err", err.Error()), slog.Int("suppressed", suppressed), slog.Int("open_connections", l.Open()))
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.release()
	})
	return err
}
