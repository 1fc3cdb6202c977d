package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// maxAnswer bounds the body of an answer the load generator reads.
const maxAnswer = 64 << 10

// endpoint is a [Target] prepared for [conn]: where to dial and the
// request head up to the Content-Length value.
type endpoint struct {
	origin     string      // scheme://host:port: endpoints of one origin share connections
	addr       string      // host:port to dial
	tls        *tls.Config // nil for http
	headPrefix []byte      // "POST … Content-Length: "
}

// newEndpoint parses t.URL (http or https) and writes the fixed part of
// its requests once; tlsConf (nil: the system's roots) is used for https.
func newEndpoint(t Target, tlsConf *tls.Config) (*endpoint, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e := &endpoint{addr: u.Host}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			e.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		if u.Port() == "" {
			e.addr = net.JoinHostPort(u.Hostname(), "443")
		}
		if tlsConf == nil {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		e.tls = tlsConf.Clone()
		e.tls.ServerName = u.Hostname()
		e.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("bench: %s: want an http or https URL", t.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bench: %s: no host", t.URL)
	}
	e.origin = u.Scheme + "://" + e.addr
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	if t.Bearer != "" {
		head += "Authorization: Bearer " + t.Bearer + "\r\n"
	}
	head += "Content-Type: application/secevent+jwt\r\nAccept: application/json\r\nContent-Length: "
	e.headPrefix = []byte(head)
	return e, nil
}

// conn is one keep-alive HTTP/1.1 connection of the load generator, used
// by one goroutine: each request is written whole with one write and its
// answer read before the next (no pipelining). It does what a transmitter
// needs and no more, so that the generator's own CPU per SET stays small
// next to the gateway's: net/http's client hands every request to two
// goroutines of its transport and back, which cost about as much CPU as
// the gateway's whole HTTP side. Answers are parsed by
// [http.ReadResponse]. No proxies, no redirects, no HTTP/2.
type conn struct {
	origin string // of the endpoint c was dialled for
	c      net.Conn
	br     *bufio.Reader
	wbuf   []byte
	stop   func() bool // ends the context watch of c
}

// post sends body and returns the status and, for an error answer, its
// RFC 8935 err code. A connection the server closes (or that fails) is
// dropped and dialled again at the next post; a failed request is not
// retried (a POST the gateway may have stored is not safe to resend
// blindly, and the bench counts it as Unknown).
func (c *conn) post(ctx context.Context, ep *endpoint, body []byte) (status int, code string, err error) {
	if c.c != nil && c.origin != ep.origin {
		c.close()
	}
	if c.c == nil {
		if err := c.dial(ctx, ep); err != nil {
			return 0, "", err
		}
	}
	c.wbuf = append(c.wbuf[:0], ep.headPrefix...)
	c.wbuf = strconv.AppendInt(c.wbuf, int64(len(body)), 10)
	c.wbuf = append(c.wbuf, "\r\n\r\n"...)
	c.wbuf = append(c.wbuf, body...)
	if _, err := c.c.Write(c.wbuf); err != nil {
		c.close()
		return 0, "", c.cause(ctx, err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, "", c.cause(ctx, err)
	}
	// Read the answer to its end so the connection can carry the next
	// request; one longer than maxAnswer drops the connection instead.
	var answer []byte
	if resp.StatusCode == http.StatusAccepted {
		var n int64
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer+1))
		if err == nil && n > maxAnswer {
			err = fmt.Errorf("bench: answer longer than %d bytes", maxAnswer)
		}
	} else {
		answer, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		if err == nil && len(answer) > maxAnswer {
			err = fmt.Errorf("bench: answer longer than %d bytes", maxAnswer)
		}
	}
	resp.Body.Close()
	if err != nil {
		c.close()
		return 0, "", c.cause(ctx, err)
	}
	if resp.Close {
		c.close()
	}
	if resp.StatusCode == http.StatusAccepted {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, errCode(answer), nil
}

// dial opens the connection to ep; ctx ending closes it.
func (c *conn) dial(ctx context.Context, ep *endpoint) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return err
	}
	if ep.tls != nil {
		tc := tls.Client(nc, ep.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	c.origin, c.c = ep.origin, nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 4096)
	} else {
		c.br.Reset(nc)
	}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return nil
}

// close drops the connection.
func (c *conn) close() {
	if c.c == nil {
		return
	}
	c.stop()
	c.c.Close()
	c.c, c.origin = nil, ""
}

// cause is ctx's error when ctx ending closed the connection under a
// request, else err.
func (c *conn) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
