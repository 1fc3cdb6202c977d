package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBufferedConnOrder: concurrent writes all reach the other end, each
// whole and each writer's in its order.
func TestBufferedConnOrder(t *testing.T) {
	client, srv := net.Pipe()
	c := newBufferedConn(client, time.Minute)
	defer c.Close()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Lines of different lengths, some longer than a pipe read.
				line := fmt.Sprintf("%d %d %s\n", w, i, strings.Repeat("x", (w*each+i)%3000))
				if _, err := c.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	r := bufio.NewReader(srv)
	for range writers * each {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		w, _ := strconv.Atoi(f[0])
		i, _ := strconv.Atoi(f[1])
		pad := ""
		if len(f) > 2 {
			pad = f[2]
		}
		if i != next[w] || len(pad) != (w*each+i)%3000 {
			t.Fatalf("writer %d: want line %d, got line %d with %d bytes of padding", w, next[w], i, len(pad))
		}
		next[w]++
	}
	wg.Wait()
}

// TestBufferedConnBackpressure: a writer whose bytes are not read is held
// once maxBuffered bytes are queued, and finishes, every byte delivered,
// when the other end reads.
func TestBufferedConnBackpressure(t *testing.T) {
	client, srv := net.Pipe()
	c := newBufferedConn(client, time.Minute)
	defer c.Close()
	// More than the pipe holds in flight (one queued buffer, at most
	// maxBuffered plus a chunk) and the queue together.
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	const chunks = 3 * maxBuffered / (16 * 1024)
	wrote := writeUntilQueueFull(t, c, chunk, chunks)
	select {
	case err := <-wrote:
		t.Fatalf("the writer finished (%v) while nothing was read", err)
	default:
	}
	got, err := io.ReadAll(io.LimitReader(srv, int64(chunks*len(chunk))))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat(chunk, chunks); !bytes.Equal(got, want) {
		t.Fatalf("want %d bytes in order, got %d", len(want), len(got))
	}
}

// TestBufferedConnClose: Close fails a Write held by backpressure and every
// later Write, and ends the writer goroutine; a closed other end makes
// writes fail too.
func TestBufferedConnClose(t *testing.T) {
	t.Run("closed here", func(t *testing.T) {
		client, _ := net.Pipe()
		c := newBufferedConn(client, time.Minute)
		// The first write is taken by the writer, which blocks in the
		// pipe; the second fills the queue; the third is held (or, closed
		// sooner, one of them fails).
		held := writeUntilQueueFull(t, c, make([]byte, 2*maxBuffered), 3)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-held; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("want the held write to fail with net.ErrClosed, got %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("want writes after Close to fail, got %v", err)
		}
		<-c.done
	})
	t.Run("closed there", func(t *testing.T) {
		client, srv := net.Pipe()
		c := newBufferedConn(client, time.Minute)
		defer c.Close()
		srv.Close()
		checkFor(t, 5*time.Second, time.Millisecond, func() error {
			if _, err := c.Write([]byte("PING\r\n")); err == nil {
				return errNotYet
			}
			return nil
		})
		<-c.done
	})
}

// TestBufferedConnWriteTimeout: when the other end stops reading, the
// writer's bounded hand-over fails the connection, and a Write held by
// backpressure returns the timeout instead of waiting forever; deadlines
// set on the connection do not apply to its Write.
func TestBufferedConnWriteTimeout(t *testing.T) {
	client, _ := net.Pipe()
	c := newBufferedConn(client, 50*time.Millisecond)
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatalf("want a past write deadline ignored, got %v", err)
	}
	big := make([]byte, 2*maxBuffered)
	var err error
	for err == nil {
		_, err = c.Write(big)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want the writer's timeout, got %v", err)
	}
	<-c.done
}

// writeUntilQueueFull writes p to c n times from a goroutine, which
// reports the first error (or nil) on the returned channel, and returns
// once c's queue holds maxBuffered bytes or more.
func writeUntilQueueFull(t *testing.T, c *bufferedConn, p []byte, n int) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for range n {
			if _, err := c.Write(p); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.pending) < maxBuffered {
			return errNotYet
		}
		return nil
	})
	return done
}
