package poller

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/internal/pemkey"
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

// AuthStyle is how the client authenticates to the token endpoint. Each
// sends the credential exactly one way.
type AuthStyle string

// Auth styles of [OAuth2Config] (the issuers file's oauth2.auth_style, and
// private_key_jwt).
const (
	// AuthBasic sends client_id and client_secret as HTTP Basic
	// credentials (RFC 6749 §2.3.1), never in the body. The default.
	AuthBasic AuthStyle = "basic"
	// AuthPost sends client_id and client_secret in the form body
	// (RFC 6749 §2.3.1), never in a header.
	AuthPost AuthStyle = "post"
	// AuthPrivateKeyJWT sends client_id and a JWT signed with the
	// client's private key as client_assertion (RFC 7523 §2.2); there is
	// no shared secret.
	AuthPrivateKeyJWT AuthStyle = "private_key_jwt"
)

// ClientAssertionType is the client_assertion_type of [AuthPrivateKeyJWT]
// (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Defaults of [OAuth2Config] and [OAuth2Options].
const (
	// DefaultAssertionLifetime is how long a client assertion is valid.
	DefaultAssertionLifetime = time.Minute
	// DefaultTokenTimeout bounds one token request when no HTTP client is
	// given.
	DefaultTokenTimeout = 10 * time.Second
)

// OAuth2Config is the OAuth 2.0 client credentials grant (RFC 6749 §4.4)
// of one issuer. It holds only data, so two configurations compare with
// reflect.DeepEqual.
type OAuth2Config struct {
	// TokenURL is the token endpoint; the credential goes nowhere else.
	TokenURL string
	// ClientID is the client identifier.
	ClientID string
	// Scopes are requested with every token, if any.
	Scopes []string
	// AuthStyle is AuthBasic ("" means AuthBasic), AuthPost or
	// AuthPrivateKeyJWT.
	AuthStyle AuthStyle
	// ClientSecret is the secret of AuthBasic and AuthPost. Never logged.
	ClientSecret string
	// PrivateKeyPEM is the signing key of AuthPrivateKeyJWT: an RSA
	// (2048 bits or more) or EC (P-256, P-384, P-521) private key in
	// PKCS #8, PKCS #1 or SEC 1 PEM. The algorithm follows from the key
	// (RS256, ES256, ES384, ES512).
	PrivateKeyPEM []byte
	// KeyID, if set, is the assertion's kid header.
	KeyID string
	// AssertionLifetime is the assertion's exp - iat (default 1m).
	AssertionLifetime time.Duration
}

// OAuth2Options are the running parts of an OAuth2 Auth.
type OAuth2Options struct {
	// HTTPClient sends the token requests. Nil: a client with the
	// outbound policy (10s timeout, no redirects, 1 MiB answers).
	HTTPClient *http.Client
	// Logger receives token failures (at warn, once until a token is
	// fetched again); nil discards.
	Logger *slog.Logger
	// Now is the clock for assertions (default time.Now).
	Now func() time.Time
}

// ParseAssertionKey parses the private key of [AuthPrivateKeyJWT] and
// returns it with the JWS algorithm it signs with.
func ParseAssertionKey(data []byte) (crypto.Signer, string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block found")
	}
	key, err := pemkey.ParseBlock(block)
	if errors.Is(err, pemkey.ErrNotPrivateKey) {
		return nil, "", fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key has %d bits; at least 2048 are required", k.N.BitLen())
		}
		return k, "RS256", nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return k, "ES256", nil
		case elliptic.P384():
			return k, "ES384", nil
		case elliptic.P521():
			return k, "ES512", nil
		}
		return nil, "", errors.New("EC key is not on P-256, P-384 or P-521")
	default:
		return nil, "", fmt.Errorf("key type %T is not RSA or EC", key)
	}
}

// Validate checks c and returns the first problem, naming the field.
func (c *OAuth2Config) Validate() error {
	switch {
	case c.TokenURL == "":
		return errors.New("token_url is required")
	case c.ClientID == "":
		return errors.New("client_id is required")
	}
	switch c.AuthStyle {
	case "", AuthBasic, AuthPost:
		if c.ClientSecret == "" {
			return errors.New("client secret is required")
		}
		if len(c.PrivateKeyPEM) > 0 {
			return errors.New("a client secret and a private key: use one")
		}
	case AuthPrivateKeyJWT:
		if c.ClientSecret != "" {
			return errors.New("a client secret and a private key: use one")
		}
		if _, _, err := ParseAssertionKey(c.PrivateKeyPEM); err != nil {
			return fmt.Errorf("private key: %w", err)
		}
	default:
		return fmt.Errorf("auth_style %q is not basic or post", c.AuthStyle)
	}
	if c.AssertionLifetime < 0 {
		return errors.New("assertion lifetime must not be negative")
	}
	return nil
}

// NewOAuth2 returns an Auth that authorizes with an access token obtained
// by the client credentials grant from cfg.TokenURL, sending the client's
// credential exactly the way cfg.AuthStyle says (never auto-detected, so
// a refused style is not retried another way). With AuthPrivateKeyJWT
// every token request carries a fresh assertion: iss and sub the client
// ID, aud the token URL, a random jti, iat now and exp a minute later.
//
// The token is cached and used until shortly before it expires (the
// oauth2 package's expiry margin); then, or after the transmitter answered
// 401 (Invalidate), the next request fetches a new one. A token request is
// bounded by the HTTP client's timeout and the caller's context, and
// follows no redirect. A failure is logged once at warn with the token
// URL (never the credential) until a token is fetched again.
func NewOAuth2(cfg OAuth2Config, opts OAuth2Options) (Auth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("poller: oauth2: %w", err)
	}
	c := &clientCredentials{cfg: cfg, hc: opts.HTTPClient, log: opts.Logger, now: opts.Now}
	if cfg.AuthStyle == "" {
		c.cfg.AuthStyle = AuthBasic
	}
	if cfg.AuthStyle == AuthPrivateKeyJWT {
		c.key, c.alg, _ = ParseAssertionKey(cfg.PrivateKeyPEM)
	}
	if c.cfg.AssertionLifetime == 0 {
		c.cfg.AssertionLifetime = DefaultAssertionLifetime
	}
	if c.hc == nil {
		c.hc = outbound.Policy{Timeout: DefaultTokenTimeout}.Client()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

type clientCredentials struct {
	cfg OAuth2Config
	key crypto.Signer
	alg string
	hc  *http.Client
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	failing bool // the last token request failed and was logged
}

func (c *clientCredentials) Authorize(ctx context.Context, req *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tok.Valid() {
		tok, err := c.fetch(ctx)
		if err != nil {
			if !c.failing && ctx.Err() == nil { // not when the caller gave up
				c.failing = true
				c.log.WarnContext(ctx, "oauth2 token request failed", "token_url", c.cfg.TokenURL, "auth_style", string(c.cfg.AuthStyle), "err", err)
			}
			return fmt.Errorf("poller: oauth2 token from %s: %w", c.cfg.TokenURL, err)
		}
		if c.failing {
			c.log.InfoContext(ctx, "oauth2 token request works again", "token_url", c.cfg.TokenURL)
			c.failing = false
		}
		c.tok = tok
	}
	c.tok.SetAuthHeader(req)
	return nil
}

// fetch runs one token request.
func (c *clientCredentials) fetch(ctx context.Context) (*oauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: c.cfg.ClientID, TokenURL: c.cfg.TokenURL, Scopes: c.cfg.Scopes}
	switch c.cfg.AuthStyle {
	case AuthPost:
		cc.ClientSecret, cc.AuthStyle = c.cfg.ClientSecret, oauth2.AuthStyleInParams
	case AuthPrivateKeyJWT:
		a, err := c.assertion()
		if err != nil {
			return nil, err
		}
		cc.AuthStyle = oauth2.AuthStyleInParams // client_id in the body; no secret
		cc.EndpointParams = url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}
	default:
		cc.ClientSecret, cc.AuthStyle = c.cfg.ClientSecret, oauth2.AuthStyleInHeader
	}
	return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
}

// assertion signs a fresh client assertion (RFC 7523 §3).
func (c *clientCredentials) assertion() (string, error) {
	now := c.now()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(c.alg), jwt.MapClaims{
		"iss": c.cfg.ClientID,
		"sub": c.cfg.ClientID,
		"aud": c.cfg.TokenURL,
		"jti": rand.Text(),
		"iat": now.Unix(),
		"exp": now.Add(c.cfg.AssertionLifetime).Unix(),
	})
	if c.cfg.KeyID != "" {
		t.Header["kid"] = c.cfg.KeyID
	}
	s, err := t.SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return s, nil
}

func (c *clientCredentials) Invalidate() {
	c.mu.Lock()
	c.tok = nil
	c.mu.Unlock()
}
