package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5/middleware"
)

// requestIDHeader carries a push's request id: in the answer always, in
// the request when the client brings its own.
const requestIDHeader = "X-Request-Id"

// pushRequest is what the push handler allocates for every request, in
// one piece: the context that carries the request id to the logs and the
// value of the answer's X-Request-Id.
type pushRequest struct {
	ctx      requestIDContext
	idHeader [1]string
}

// requestIDContext is a request's context with its request id, read by
// middleware.GetReqID (and so by [LogHandler]) as chi's RequestID
// middleware stores it, without a copy of the request.
type requestIDContext struct {
	context.Context
	id string
}

// Value returns the request id for chi's request id key, and otherwise
// what the request's context holds.
func (c *requestIDContext) Value(key any) any {
	if key == middleware.RequestIDKey {
		return c.id
	}
	return c.Context.Value(key)
}

// maxClientRequestID bounds a client's X-Request-Id that is kept: longer
// ones, or ones with other than printable ASCII, are replaced by a new id
// so that what the logs and the answer repeat stays small and plain.
const maxClientRequestID = 128

// newPushRequest returns r's request id (the client's X-Request-Id when it
// is short printable ASCII, or a new one) with the context that carries it.
func (s *Server) newPushRequest(r *http.Request) *pushRequest {
	id := r.Header.Get(requestIDHeader)
	if !plainRequestID(id) {
		id = s.nextRequestID()
	}
	pr := &pushRequest{ctx: requestIDContext{Context: r.Context(), id: id}}
	pr.idHeader[0] = id
	return pr
}

// nextRequestID returns a new request id, "<host>/<random>-<counter>"
// with at least six digits, in the form of chi's middleware.RequestID.
func (s *Server) nextRequestID() string {
	var buf [96]byte
	b := append(append(buf[:0], s.reqIDPrefix...), '-')
	var d [20]byte
	i := len(d)
	for n := s.reqIDs.Add(1); n > 0 || len(d)-i < 6; n /= 10 {
		i--
		d[i] = byte('0' + n%10)
	}
	return string(append(b, d[i:]...))
}

// requestIDPrefix returns this process's request id prefix: the host name
// and ten random characters.
func requestIDPrefix() string {
	host, err := os.Hostname()
	if host == "" || err != nil {
		host = "localhost"
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	return host + "/" + base64.RawURLEncoding.EncodeToString(r[:])[:10]
}

// plainRequestID reports whether a client's request id is kept: 1 to
// maxClientRequestID printable ASCII characters.
func plainRequestID(id string) bool {
	if id == "" || len(id) > maxClientRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
