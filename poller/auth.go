package poller

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Auth authorizes each poll request to the transmitter, typically by
// setting its Authorization header.
type Auth interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// invalidator is implemented by an Auth whose credential can go stale: the
// loop calls Invalidate after a 401 so the next request fetches a new one.
type invalidator interface {
	Invalidate()
}

// BearerToken sends "Authorization: Bearer <token>" with every request.
func BearerToken(token string) Auth { return bearer(token) }

type bearer string

func (b bearer) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}

// OAuth2ClientCredentials authorizes with an access token obtained by the
// OAuth 2.0 client credentials grant (RFC 6749 §4.4) from cfg.TokenURL.
// The token is cached and used until shortly before it expires (the
// oauth2 package's expiry margin); then, or after the transmitter answered
// 401, the next request fetches a new one. Each fetch runs under the
// request's context, so a slow token endpoint is bounded like the poll
// itself and stops with the loop. Token requests use the HTTP client in
// the context under oauth2.HTTPClient, if any, or http.DefaultClient.
func OAuth2ClientCredentials(cfg clientcredentials.Config) Auth {
	return &clientCredentials{cfg: cfg}
}

type clientCredentials struct {
	cfg clientcredentials.Config

	mu  sync.Mutex
	tok *oauth2.Token
}

func (c *clientCredentials) Authorize(ctx context.Context, req *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tok.Valid() {
		tok, err := c.cfg.Token(ctx)
		if err != nil {
			return fmt.Errorf("poller: oauth2 token from %s: %w", c.cfg.TokenURL, err)
		}
		c.tok = tok
	}
	c.tok.SetAuthHeader(req)
	return nil
}

func (c *clientCredentials) Invalidate() {
	c.mu.Lock()
	c.tok = nil
	c.mu.Unlock()
}
