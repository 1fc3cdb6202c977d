package bridge

import (
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// maxBuffered bounds what a [bufferedConn] holds before its writer: a
// Write waits while this much is still to be handed to the server.
const maxBuffered = 256 << 10

// bufferedServer is the embedded server as nats.go's in-process
// connection provider: its connections are [bufferedConn]s.
type bufferedServer struct{ srv *server.Server }

// InProcessConn returns a new in-process connection to the server.
func (p bufferedServer) InProcessConn() (net.Conn, error) {
	c, err := p.srv.InProcessConn()
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c, nats.DefaultFlusherTimeout), nil
}

// bufferedConn is an in-process connection (a net.Pipe) whose writes are
// buffered: Write copies the bytes and returns, and a goroutine of its own
// hands them to the server in order, as a socket's send buffer would.
//
// On a bare pipe, a Write returns only once the server's read loop has
// read and parsed every byte of it. nats.go's flusher writes while
// holding its connection's lock, which publishers and the handler of
// replies (the PubAcks) also need; with 32 concurrent publishers that lock
// was where the publish path waited. Buffering keeps the lock short, and
// fewer, larger writes reach the server. Nothing about acknowledgements
// changes: a publish still waits for its PubAck, which the server sends
// only after it read and stored the message.
//
// Write deadlines set by nats.go are not passed to the pipe, since Write
// itself returns at once; instead every hand-over to the pipe is bounded
// by timeout (nats.go's flusher timeout, which bounded its writes before),
// so a server that stops reading fails the connection, and with it every
// waiting Write, rather than holding it forever.
type bufferedConn struct {
	net.Conn
	timeout  time.Duration
	deadline time.Time // the pipe's write deadline; the writer's alone

	mu      sync.Mutex
	more    sync.Cond // pending got bytes, or the connection failed
	room    sync.Cond // pending was taken by the writer, or a write failed
	pending []byte    // written, not yet handed to the pipe
	spare   []byte    // the buffer the writer last handed over, for reuse
	err     error     // the first write error, or net.ErrClosed
	done    chan struct{}
}

func newBufferedConn(c net.Conn, timeout time.Duration) *bufferedConn {
	b := &bufferedConn{Conn: c, timeout: timeout, done: make(chan struct{})}
	b.more.L, b.room.L = &b.mu, &b.mu
	go b.writeLoop()
	return b
}

// Write queues p for the server, waiting while maxBuffered bytes are
// already queued. It fails once a write to the pipe failed or the
// connection was closed.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && len(c.pending) >= maxBuffered {
		c.room.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	c.pending = append(c.pending, p...)
	c.more.Signal()
	return len(p), nil
}

// writeLoop hands the queued bytes to the pipe, all that accumulated at
// once, until a write fails or the connection is closed.
func (c *bufferedConn) writeLoop() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for c.err == nil && len(c.pending) == 0 {
			c.more.Wait()
		}
		if c.err != nil {
			return
		}
		buf := c.pending
		c.pending = c.spare[:0]
		c.spare = nil
		c.room.Broadcast()
		c.mu.Unlock()
		// The deadline moves only when half of it is used up, not for
		// every write: a pipe write that blocks fails after between half
		// the timeout and all of it.
		var err error
		if now := time.Now(); c.deadline.Sub(now) < c.timeout/2 {
			c.deadline = now.Add(c.timeout)
			err = c.Conn.SetWriteDeadline(c.deadline)
		}
		if err == nil {
			_, err = c.Conn.Write(buf)
		}
		c.mu.Lock()
		c.spare = buf[:0]
		if err != nil && c.err == nil {
			c.err = err
			c.room.Broadcast()
		}
	}
}

// SetWriteDeadline does nothing: writes are bounded by the writer (see
// bufferedConn).
func (c *bufferedConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (c *bufferedConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Close closes the pipe, which ends a write in progress, and fails every
// waiting and later Write. What was still queued is dropped, as a closed
// socket drops its send buffer (nats.go flushes with a PING before it
// closes a connection on purpose).
func (c *bufferedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.more.Broadcast()
	c.room.Broadcast()
	c.mu.Unlock()
	return err
}
