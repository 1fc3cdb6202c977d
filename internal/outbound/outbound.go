// Package outbound is the one policy for every HTTP call setgate makes to
// another party: JWKS fetches, poll requests (RFC 8936), SSF discovery and
// management calls, and OAuth 2.0 token requests.
//
// A credential setgate sends must reach only the URL it was configured
// (or discovered) for, and no party may make setgate wait or read without
// bound. A [Policy] therefore gives an *http.Client with three rules:
//
//   - Timeout: every call, including reading the answer's body, ends
//     after Policy.Timeout (http.Client.Timeout). Callers may set shorter
//     deadlines on the request context.
//   - Size: an answer body larger than Policy.MaxBytes fails the read
//     with an error wrapping [ErrTooLarge], whoever reads it (setgate's
//     code, the oauth2 package, the JWKS library).
//   - Redirects: refused by default ([RefuseRedirects]): the 3xx is not
//     followed, and the call fails with an error wrapping
//     [ErrRedirectRefused] that names the target. Go's client would
//     otherwise re-send a POST body after a 307/308 (an OAuth 2.0 client
//     secret in the form) and follow to any host. [SameOrigin], for JWKS
//     only, follows at most [MaxRedirects] redirects when the target is
//     https and has the same scheme, host and port as the request's URL
//     (a JWKS fetch carries no credential, but a JWKS must still come
//     from the issuer's own origin, never from a loopback or plain-http
//     address named in a Location header).
//
// The policy does not check where a URL points before the first request:
// which URLs are acceptable (https, or http to loopback; an SSF issuer's
// own origin) is decided by the caller that configured or learnt them.
package outbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied to a zero-valued [Policy] field.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBytes = 1 << 20
	// MaxRedirects is how many same-origin redirects [SameOrigin] follows.
	MaxRedirects = 3
)

// Redirects says which redirects a [Policy] follows.
type Redirects int

const (
	// RefuseRedirects follows no redirect (the default).
	RefuseRedirects Redirects = iota
	// SameOrigin follows a redirect only to an https URL with the
	// request's own scheme, host and port, at most MaxRedirects times.
	// For JWKS fetches only.
	SameOrigin
)

// Errors callers branch on with errors.Is.
var (
	// ErrRedirectRefused: the answer was a redirect the policy does not
	// follow.
	ErrRedirectRefused = errors.New("redirect refused")
	// ErrTooLarge: the answer body is larger than the policy's MaxBytes.
	ErrTooLarge = errors.New("answer too large")
)

// Policy is the outbound HTTP policy of one kind of call. The zero value
// is usable: 30s timeout, 1 MiB bodies, no redirects.
type Policy struct {
	// Timeout bounds each call, body included (default 30s).
	Timeout time.Duration
	// MaxBytes caps each answer body (default 1 MiB).
	MaxBytes int64
	// Redirects is the redirect rule (default RefuseRedirects).
	Redirects Redirects
	// Transport is the base round tripper; nil uses a clone of
	// http.DefaultTransport. Tests set it to an httptest TLS server's.
	Transport http.RoundTripper
}

func (p Policy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

func (p Policy) maxBytes() int64 {
	if p.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return p.MaxBytes
}

// Client returns a new *http.Client that applies p to every call.
func (p Policy) Client() *http.Client {
	base := p.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{
		Transport:     capTransport{base: base, max: p.maxBytes()},
		Timeout:       p.timeout(),
		CheckRedirect: p.checkRedirect,
	}
}

// checkRedirect applies the redirect rule; via[0] is the original request.
func (p Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	to := where(req.URL)
	if p.Redirects != SameOrigin {
		return fmt.Errorf("outbound: %w: %s answered with a redirect to %s (redirects are not followed)", ErrRedirectRefused, where(via[len(via)-1].URL), to)
	}
	first := via[0].URL
	switch {
	case len(via) > MaxRedirects:
		return fmt.Errorf("outbound: %w: more than %d redirects", ErrRedirectRefused, MaxRedirects)
	case req.URL.Scheme != "https" || first.Scheme != "https":
		return fmt.Errorf("outbound: %w: redirect to %s: only https redirects within the same origin are followed", ErrRedirectRefused, to)
	case !OriginsMatch(req.URL, first):
		return fmt.Errorf("outbound: %w: redirect from %s to %s leaves the origin", ErrRedirectRefused, where(first), to)
	}
	return nil
}

// Origin returns u's origin as "scheme://host:port" in lower case, with
// the scheme's default port made explicit, so two spellings of one origin
// compare equal. It returns "" for a URL without scheme or host.
func Origin(u *url.URL) string {
	if u == nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// OriginsMatch reports whether a and b have the same origin (scheme,
// host and port).
func OriginsMatch(a, b *url.URL) bool {
	oa := Origin(a)
	return oa != "" && oa == Origin(b)
}

// where shows a URL for an error: scheme, host and path, never the query
// or user info.
func where(u *url.URL) string {
	if u == nil {
		return "?"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// ReadAll reads r to its end, failing with an error wrapping
// [ErrTooLarge] once more than p's MaxBytes were read.
func (p Policy) ReadAll(r io.Reader) ([]byte, error) {
	return io.ReadAll(&capped{r: r, left: p.maxBytes(), limit: p.maxBytes()})
}

// capTransport caps every answer body.
type capTransport struct {
	base http.RoundTripper
	max  int64
}

func (t capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{capped: capped{r: resp.Body, left: t.max, limit: t.max}, c: resp.Body}
	return resp, nil
}

// capped fails the read once more than limit bytes came from r.
type capped struct {
	r     io.Reader
	left  int64
	limit int64
	err   error
}

func (c *capped) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		c.err = fmt.Errorf("outbound: %w: more than %d bytes", ErrTooLarge, c.limit)
		n = int(c.left)
		c.left = 0
		return n, c.err
	}
	c.left -= int64(n)
	return n, err
}

type cappedBody struct {
	capped
	c io.Closer
}

func (b *cappedBody) Close() error { return b.c.Close() }
