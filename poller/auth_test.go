package poller_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/poller"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
	if err := poller.BearerToken("s3cret").Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("want %q, got %q", "Bearer s3cret", got)
	}
}

// tokenRequest is how one token request arrived.
type tokenRequest struct {
	Method        string
	Authorization string
	BasicID       string
	BasicSecret   string
	Form          url.Values
}

// tokenEndpoint is a real OAuth 2.0 token endpoint for the client
// credentials grant. It records every request, issues tok-1, tok-2, …
// valid for expiresIn seconds, and answers check's error (if any) with
// 401 invalid_client.
type tokenEndpoint struct {
	*httptest.Server
	mu        sync.Mutex
	requests  []tokenRequest
	issued    atomic.Int64
	expiresIn atomic.Int64
}

func newTokenEndpoint(tb testing.TB, check func(tokenRequest) error) *tokenEndpoint {
	tb.Helper()
	te := &tokenEndpoint{}
	te.expiresIn.Store(3600)
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tr := tokenRequest{Method: r.Method, Authorization: r.Header.Get("Authorization"), Form: r.PostForm}
		tr.BasicID, tr.BasicSecret, _ = r.BasicAuth()
		te.mu.Lock()
		te.requests = append(te.requests, tr)
		te.mu.Unlock()
		if err := check(tr); err != nil || r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, fmt.Sprint(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": fmt.Sprintf("tok-%d", te.issued.Add(1)), "token_type": "Bearer", "expires_in": te.expiresIn.Load(),
		})
	}))
	tb.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) Requests() []tokenRequest {
	te.mu.Lock()
	defer te.mu.Unlock()
	return append([]tokenRequest(nil), te.requests...)
}

// basicOnly accepts client "setgate" with secret "pw" in the Basic header
// and nothing of the credential in the body.
func basicOnly(tr tokenRequest) error {
	switch {
	case tr.BasicID != "setgate" || tr.BasicSecret != "pw":
		return errors.New("no basic credential")
	case tr.Form.Has("client_secret") || tr.Form.Has("client_id") || tr.Form.Has("client_assertion"):
		return errors.New("credential also in the body")
	}
	return nil
}

func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	te := newTokenEndpoint(t, basicOnly)
	r.ps.SetBearer("tok-1")
	cfg := r.config(t)
	auth, err := poller.NewOAuth2(poller.OAuth2Config{
		ClientID: "setgate", ClientSecret: "pw", TokenURL: te.URL, Scopes: []string{"ssf.read"},
	}, poller.OAuth2Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = auth
	l, stop := start(t, cfg, r.in)

	first := r.enqueue(t, 3)
	allAcked(t, r.ps, first)
	checkFor(t, func() error {
		if n := len(r.ps.Requests()); n < 4 {
			return fmt.Errorf("want 4 requests, got %d", n)
		}
		return nil
	})
	if n := te.issued.Load(); n != 1 {
		t.Errorf("want one token for every request, got %d fetched", n)
	}

	// The transmitter revokes tok-1: a 401, then a fresh token.
	r.ps.SetBearer("tok-2")
	second := r.enqueue(t, 3)
	allAcked(t, r.ps, second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := te.issued.Load(); n != 2 {
		t.Errorf("want a second token after the 401, got %d fetched", n)
	}
	saw401 := false
	for _, req := range r.ps.Requests() {
		saw401 = saw401 || req.Status == http.StatusUnauthorized
	}
	if !saw401 {
		t.Error("want the transmitter to have answered 401 to the revoked token")
	}
	// The 401 was answered by a new token and the same request sent again:
	// an expired or revoked token is not a failed poll.
	if st := l.Status(); st.LastError != "" || st.ConsecutiveFailures != 0 {
		t.Errorf("want no failed poll for a token refreshed after a 401, got %q (%d failures)", st.LastError, st.ConsecutiveFailures)
	}
	for _, tr := range te.Requests() {
		if got := tr.Form.Get("scope"); got != "ssf.read" {
			t.Errorf("want scope %q, got %q", "ssf.read", got)
		}
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func bufferLogger() (*slog.Logger, *lockedBuffer) {
	var buf lockedBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestOAuth2TokenFailureLoggedOnce(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, basicOnly)
	log, buf := bufferLogger()
	auth, err := poller.NewOAuth2(poller.OAuth2Config{ClientID: "setgate", ClientSecret: "wrong-secret", TokenURL: te.URL}, poller.OAuth2Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
		err := auth.Authorize(context.Background(), req)
		if err == nil {
			t.Fatal("want an error from a refused client")
		}
		if strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("the error shows the secret: %v", err)
		}
		if got := req.Header.Get("Authorization"); got != "" {
			t.Errorf("want no Authorization header, got %q", got)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("want the failure logged once at warn, got %d lines:\n%s", n, out)
	}
	if !strings.Contains(out, "token_url="+te.URL) {
		t.Errorf("want the token_url in the log, got:\n%s", out)
	}
	if strings.Contains(out, "wrong-secret") {
		t.Errorf("the log shows the secret:\n%s", out)
	}
	if n := len(te.Requests()); n != 3 {
		t.Errorf("want every Authorize to try again, got %d token requests", n)
	}
}

// TestOAuth2ExpiredTokenRefetched: a token that is expired (within the
// oauth2 package's expiry margin) is not used; the next request fetches
// a new one.
func TestOAuth2ExpiredTokenRefetched(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, basicOnly)
	te.expiresIn.Store(1) // inside the 10s expiry margin: expired at once
	auth, err := poller.NewOAuth2(poller.OAuth2Config{ClientID: "setgate", ClientSecret: "pw", TokenURL: te.URL}, poller.OAuth2Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
		if err := auth.Authorize(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if want, got := fmt.Sprintf("Bearer tok-%d", i), req.Header.Get("Authorization"); got != want {
			t.Errorf("want %q, got %q", want, got)
		}
	}
}

func pemKey(tb testing.TB, typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestOAuth2AuthStyles: the credential arrives at the token endpoint in
// exactly the configured way, and nowhere else.
func TestOAuth2AuthStyles(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)

	// assertionFrom checks a private_key_jwt request: client_id in the
	// body, the assertion signed by pub with alg, the RFC 7523 claims, no
	// secret and no header credential.
	var seenJTI sync.Map
	assertionFrom := func(tokenURL *string, pub crypto.PublicKey, alg, kid string) func(tokenRequest) error {
		return func(tr tokenRequest) error {
			switch {
			case tr.Authorization != "":
				return errors.New("an Authorization header was sent")
			case tr.Form.Has("client_secret"):
				return errors.New("a client_secret was sent")
			case tr.Form.Get("client_id") != "setgate":
				return errors.New("client_id is not in the body")
			case tr.Form.Get("client_assertion_type") != poller.ClientAssertionType:
				return fmt.Errorf("client_assertion_type is %q", tr.Form.Get("client_assertion_type"))
			}
			tok, err := jwt.Parse(tr.Form.Get("client_assertion"), func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != kid {
					return nil, fmt.Errorf("kid is %v", tok.Header["kid"])
				}
				return pub, nil
			}, jwt.WithValidMethods([]string{alg}), jwt.WithAudience(*tokenURL), jwt.WithIssuer("setgate"),
				jwt.WithSubject("setgate"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
			if err != nil {
				return fmt.Errorf("assertion: %w", err)
			}
			claims := tok.Claims.(jwt.MapClaims)
			jti, _ := claims["jti"].(string)
			if jti == "" {
				return errors.New("assertion has no jti")
			}
			if _, dup := seenJTI.LoadOrStore(jti, true); dup {
				return errors.New("assertion reused")
			}
			exp, _ := claims.GetExpirationTime()
			iat, _ := claims.GetIssuedAt()
			if exp == nil || iat == nil || exp.Sub(iat.Time) > 5*time.Minute {
				return errors.New("assertion lives too long")
			}
			return nil
		}
	}

	tests := []struct {
		name  string
		cfg   poller.OAuth2Config
		check func(url *string) func(tokenRequest) error
	}{
		{name: "default is basic", cfg: poller.OAuth2Config{ClientSecret: "pw"}, check: func(*string) func(tokenRequest) error { return basicOnly }},
		{name: "basic", cfg: poller.OAuth2Config{AuthStyle: poller.AuthBasic, ClientSecret: "pw"}, check: func(*string) func(tokenRequest) error { return basicOnly }},
		{name: "basic escapes the secret", cfg: poller.OAuth2Config{AuthStyle: poller.AuthBasic, ClientSecret: "p:w&="}, check: func(*string) func(tokenRequest) error {
			return func(tr tokenRequest) error {
				if s, _ := url.QueryUnescape(tr.BasicSecret); s != "p:w&=" || tr.Form.Has("client_secret") {
					return errors.New("secret not in the header, form-encoded (RFC 6749 §2.3.1)")
				}
				return nil
			}
		}},
		{name: "post", cfg: poller.OAuth2Config{AuthStyle: poller.AuthPost, ClientSecret: "pw"}, check: func(*string) func(tokenRequest) error {
			return func(tr tokenRequest) error {
				switch {
				case tr.Authorization != "":
					return errors.New("an Authorization header was sent")
				case tr.Form.Get("client_id") != "setgate" || tr.Form.Get("client_secret") != "pw":
					return errors.New("credential not in the body")
				}
				return nil
			}
		}},
		{name: "private_key_jwt EC (SEC 1)", cfg: poller.OAuth2Config{AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "EC PRIVATE KEY", ecDER), KeyID: "k-ec"},
			check: func(u *string) func(tokenRequest) error { return assertionFrom(u, ecKey.Public(), "ES256", "k-ec") }},
		{name: "private_key_jwt RSA (PKCS #8)", cfg: poller.OAuth2Config{AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "PRIVATE KEY", p8), KeyID: "k-rsa"},
			check: func(u *string) func(tokenRequest) error { return assertionFrom(u, rsaKey.Public(), "RS256", "k-rsa") }},
		{name: "private_key_jwt RSA (PKCS #1)", cfg: poller.OAuth2Config{AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), KeyID: "k-rsa"},
			check: func(u *string) func(tokenRequest) error { return assertionFrom(u, rsaKey.Public(), "RS256", "k-rsa") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tokenURL string
			check := tt.check(&tokenURL)
			var bad atomic.Value
			te := newTokenEndpoint(t, func(tr tokenRequest) error {
				err := check(tr)
				if err != nil {
					bad.Store(err.Error())
				}
				return err
			})
			tokenURL = te.URL + "/token"
			cfg := tt.cfg
			cfg.ClientID, cfg.TokenURL = "setgate", tokenURL
			te.expiresIn.Store(1) // every Authorize fetches: each assertion must be fresh
			auth, err := poller.NewOAuth2(cfg, poller.OAuth2Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				req := httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil)
				if err := auth.Authorize(context.Background(), req); err != nil {
					t.Fatalf("Authorize: %v (endpoint: %v)", err, bad.Load())
				}
			}
			if n := len(te.Requests()); n != 2 {
				t.Errorf("want 2 token requests, got %d", n)
			}
		})
	}
}

// TestOAuth2TokenRedirectRefused: a token endpoint answering 307 or 308
// to another host does not get the credential re-sent there.
func TestOAuth2TokenRedirectRefused(t *testing.T) {
	t.Parallel()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	for _, style := range []poller.AuthStyle{poller.AuthBasic, poller.AuthPost, poller.AuthPrivateKeyJWT} {
		for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
			t.Run(fmt.Sprintf("%s %d", style, code), func(t *testing.T) {
				t.Parallel()
				var stolen atomic.Int64
				evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					stolen.Add(1)
					_, _ = w.Write([]byte(`{"access_token":"evil","token_type":"Bearer"}`))
				}))
				t.Cleanup(evil.Close)
				te := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, evil.URL+"/token", code)
				}))
				t.Cleanup(te.Close)
				cfg := poller.OAuth2Config{ClientID: "setgate", TokenURL: te.URL, AuthStyle: style}
				if style == poller.AuthPrivateKeyJWT {
					cfg.PrivateKeyPEM = pemKey(t, "EC PRIVATE KEY", ecDER)
				} else {
					cfg.ClientSecret = "pw"
				}
				auth, err := poller.NewOAuth2(cfg, poller.OAuth2Options{})
				if err != nil {
					t.Fatal(err)
				}
				for range 2 {
					err = auth.Authorize(context.Background(), httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil))
					if !errors.Is(err, outbound.ErrRedirectRefused) {
						t.Fatalf("want the redirect refused, got %v", err)
					}
				}
				if n := stolen.Load(); n != 0 {
					t.Errorf("the other host received %d requests", n)
				}
			})
		}
	}
}

// TestOAuth2TokenTimeout: a token endpoint that never answers is given up
// by the outbound policy's timeout, with no deadline on the caller's
// context, and the failure is logged.
func TestOAuth2TokenTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	te := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(te.Close)
	t.Cleanup(func() { close(release) })
	log, buf := bufferLogger()
	auth, err := poller.NewOAuth2(poller.OAuth2Config{ClientID: "setgate", ClientSecret: "pw", TokenURL: te.URL},
		poller.OAuth2Options{HTTPClient: outbound.Policy{Timeout: 50 * time.Millisecond}.Client(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = auth.Authorize(context.Background(), httptest.NewRequest(http.MethodPost, "https://tx.example/poll", nil))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a timeout, got %v", err)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, te.URL) {
		t.Errorf("want a warning naming the token_url, got:\n%s", out)
	}
}

func TestOAuth2ConfigValidate(t *testing.T) {
	t.Parallel()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name    string
		cfg     poller.OAuth2Config
		wantErr string
	}{
		{name: "ok basic", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", ClientSecret: "s"}},
		{name: "no secret", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c"}, wantErr: "client secret is required"},
		{name: "unknown style", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", ClientSecret: "s", AuthStyle: "auto"}, wantErr: "not basic or post"},
		{name: "secret and key", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", ClientSecret: "s", AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "EC PRIVATE KEY", ecDER)}, wantErr: "use one"},
		{name: "not PEM", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: []byte("nope")}, wantErr: "no PEM block"},
		{name: "public key", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "PUBLIC KEY", ecDER)}, wantErr: "not a private key"},
		{name: "small RSA", cfg: poller.OAuth2Config{TokenURL: "https://as.example/token", ClientID: "c", AuthStyle: poller.AuthPrivateKeyJWT, PrivateKeyPEM: pemKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))}, wantErr: "at least 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := poller.NewOAuth2(tt.cfg, poller.OAuth2Options{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			}
		})
	}
}
