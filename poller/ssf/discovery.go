package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/verify"
)

// Delivery method URNs (SSF 1.0 §6.1.1 push, §6.1.2 poll).
const (
	MethodPush = "urn:ietf:rfc:8935"
	MethodPoll = "urn:ietf:rfc:8936"
)

// MaxBodyBytes caps every answer read from a transmitter (1 MiB).
const MaxBodyBytes = 1 << 20

// Errors callers (and tests) branch on; each is wrapped with the details.
var (
	// ErrIssuerMismatch: the metadata's issuer, or a stream's iss, is not
	// the configured issuer.
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrNoJWKSURI: the metadata has no jwks_uri.
	ErrNoJWKSURI = errors.New("jwks_uri is missing")
	// ErrBadMetadata: the discovery answer is not a JSON object of the
	// metadata's shape, or is too large.
	ErrBadMetadata = errors.New("metadata is not valid")
	// ErrInsecureEndpoint: an issuer or endpoint URL is not https (or http
	// on a loopback host).
	ErrInsecureEndpoint = errors.New("endpoint URL is not acceptable")
	// ErrBadAnswer: a management API answer is not what SSF prescribes
	// (bad JSON, no aud, a stream_id or status that does not fit).
	ErrBadAnswer = errors.New("transmitter answer is not valid")
	// ErrNotSupported: the metadata does not name the endpoint a call
	// needs, or does not offer the delivery method.
	ErrNotSupported = errors.New("not offered by the transmitter")
)

// AuthorizationScheme is one entry of authorization_schemes.
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// Metadata is a transmitter's configuration metadata (SSF 1.0 §7.1).
type Metadata struct {
	SpecVersion              string                `json:"spec_version,omitempty"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri,omitempty"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported,omitempty"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint,omitempty"`
	StatusEndpoint           string                `json:"status_endpoint,omitempty"`
	VerificationEndpoint     string                `json:"verification_endpoint,omitempty"`
	AddSubjectEndpoint       string                `json:"add_subject_endpoint,omitempty"`
	RemoveSubjectEndpoint    string                `json:"remove_subject_endpoint,omitempty"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes,omitempty"`
	DefaultSubjects          string                `json:"default_subjects,omitempty"`
	CriticalSubjectMembers   []string              `json:"critical_subject_members,omitempty"`
}

// SupportsDelivery reports whether the transmitter offers method; a
// transmitter that does not list its methods is assumed to offer it.
func (m *Metadata) SupportsDelivery(method string) bool {
	if len(m.DeliveryMethodsSupported) == 0 {
		return true
	}
	for _, d := range m.DeliveryMethodsSupported {
		if d == method {
			return true
		}
	}
	return false
}

// WellKnownURL returns where issuer publishes its metadata:
// /.well-known/ssf-configuration inserted between host and path, after
// removing a trailing "/" (https://tr.example.com/issuer1 →
// https://tr.example.com/.well-known/ssf-configuration/issuer1).
func WellKnownURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("ssf: issuer %q is not an absolute URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("ssf: issuer %q must not have a query or fragment", issuer)
	}
	if err := verify.CheckEndpointURL(issuer); err != nil {
		return "", fmt.Errorf("ssf: issuer %q %w: %w", issuer, err, ErrInsecureEndpoint)
	}
	return u.Scheme + "://" + u.Host + "/.well-known/ssf-configuration" + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// Discover fetches and validates issuer's metadata. client nil uses the
// outbound policy (no redirects: the metadata must come from the issuer's
// own URL; 30s timeout; answers up to MaxBodyBytes); ctx may set a
// shorter deadline.
//
// Every endpoint the metadata names (jwks_uri, configuration, status,
// verification, add and remove subject) must be on the issuer's origin
// (scheme, host and port) or on one of opts' AllowedOrigins: setgate sends
// its credentials there. Errors wrap [ErrIssuerMismatch], [ErrNoJWKSURI],
// [ErrBadMetadata], [ErrInsecureEndpoint], [ErrForeignOrigin] or an
// [*HTTPError].
func Discover(ctx context.Context, client *http.Client, issuer string, opts ...DiscoverOptions) (*Metadata, error) {
	var o DiscoverOptions
	for _, x := range opts {
		o.AllowedOrigins = append(o.AllowedOrigins, x.AllowedOrigins...)
		o.JWKSConfigured = o.JWKSConfigured || x.JWKSConfigured
	}
	where, err := WellKnownURL(issuer)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = defaultHTTPClient()
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("ssf: discovery at %s: "+format, append([]any{where}, args...)...)
	}
	var body []byte
	// A RISC-only transmitter publishes the same metadata at
	// /.well-known/risc-configuration (RISC 1.0 §3.1): tried after a 404.
	for _, u := range []string{where, strings.Replace(where, "/.well-known/ssf-configuration", "/.well-known/risc-configuration", 1)} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fail("%w", err)
		}
		req.Header.Set("Accept", "application/json")
		status, header, b, err := roundTrip(client, req)
		if err != nil {
			if errors.Is(err, errTooLarge) {
				return nil, fail("%w: answer larger than %d bytes", ErrBadMetadata, MaxBodyBytes)
			}
			return nil, fail("%w", err)
		}
		if status == http.StatusOK {
			where, body = u, b
			break
		}
		if status != http.StatusNotFound || u != where {
			if status == http.StatusNotFound { // neither: name the SSF one
				u = where
			}
			return nil, newHTTPError("discovery", http.MethodGet, u, status, header, b)
		}
	}
	var m Metadata
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fail("%w: answer is not a JSON object", ErrBadMetadata)
	}
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, fail("%w: %v", ErrBadMetadata, err)
	}
	if m.Issuer != issuer {
		return nil, fail("%w: metadata says %q, configured %q", ErrIssuerMismatch, m.Issuer, issuer)
	}
	if m.JWKSURI == "" {
		return nil, fail("%w (setgate verifies every SET's signature)", ErrNoJWKSURI)
	}
	origins := newOrigins(issuer, o.AllowedOrigins)
	for _, e := range []struct{ name, url string }{
		{"jwks_uri", m.JWKSURI},
		{"configuration_endpoint", m.ConfigurationEndpoint},
		{"status_endpoint", m.StatusEndpoint},
		{"verification_endpoint", m.VerificationEndpoint},
		{"add_subject_endpoint", m.AddSubjectEndpoint},
		{"remove_subject_endpoint", m.RemoveSubjectEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if err := verify.CheckEndpointURL(e.url); err != nil {
			return nil, fail("%w: %s %q %v", ErrInsecureEndpoint, e.name, e.url, err)
		}
		if e.name == "jwks_uri" && o.JWKSConfigured {
			continue // not used: the issuer's own jwks_uri is
		}
		if err := origins.check(e.name, e.url); err != nil {
			return nil, fail("%w", err)
		}
	}
	return &m, nil
}

// DiscoverOptions are the issuer's settings [Discover] checks the
// metadata's endpoints against.
type DiscoverOptions struct {
	// AllowedOrigins are origins besides the issuer's own the endpoints
	// may be on, as [ParseAllowedOrigins] returns them (the issuers
	// file's stream.allowed_origins).
	AllowedOrigins []string
	// JWKSConfigured: the issuer sets jwks_uri itself, so the metadata's
	// is not used and its origin not checked.
	JWKSConfigured bool
}

// defaultHTTPClient follows the outbound policy: no redirects, a timeout
// on every call, answers capped at MaxBodyBytes.
func defaultHTTPClient() *http.Client {
	return outbound.Policy{Timeout: DefaultCallTimeout, MaxBytes: MaxBodyBytes}.Client()
}

// DefaultCallTimeout bounds one call of the default HTTP client.
const DefaultCallTimeout = 30 * time.Second
