package ssf

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/setgate/setgate/internal/outbound"
	"github.com/setgate/setgate/verify"
)

// ErrForeignOrigin: an endpoint learnt from the transmitter (its metadata
// or a stream answer) is on another origin than the issuer and is not
// in the issuer's stream.allowed_origins. setgate sends credentials to
// those endpoints (the stream's bearer token, the push
// authorization_header), so they must be where the operator expects.
var ErrForeignOrigin = errors.New("endpoint is on another origin than the issuer")

// ParseAllowedOrigins checks the issuers file's stream.allowed_origins:
// each entry is an origin, https://host[:port] (http only for a loopback
// host), without path, query, fragment or user info. It returns them in
// the form [outbound.Origin] gives (scheme://host:port). An error starts
// with the entry's index, "[i]: …".
func ParseAllowedOrigins(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for i, raw := range list {
		u, err := url.Parse(raw)
		if err == nil {
			err = verify.CheckEndpointURL(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("[%d]: %q %v", i, raw, err)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.ForceQuery {
			return nil, fmt.Errorf("[%d]: %q is not an origin: write it as scheme://host[:port] only", i, raw)
		}
		out = append(out, outbound.Origin(u))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// origins decides where an issuer's SSF endpoints may be: the issuer's own
// origin and the allowed ones.
type origins struct {
	issuer  string
	allowed []string
}

func newOrigins(issuer string, allowed []string) origins {
	o := origins{allowed: allowed}
	if u, err := url.Parse(issuer); err == nil {
		o.issuer = outbound.Origin(u)
	}
	return o
}

// check returns an error wrapping ErrForeignOrigin when raw, the
// endpoint called name, is on none of the acceptable origins.
func (o origins) check(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q is not a URL", name, raw)
	}
	got := outbound.Origin(u)
	if got != "" && got == o.issuer {
		return nil
	}
	for _, a := range o.allowed {
		if got == a {
			return nil
		}
	}
	shown := strings.TrimSuffix(strings.TrimSuffix(got, ":443"), ":80")
	return fmt.Errorf("%w: %s %q is not on the issuer's origin %s; if the transmitter really serves it there, add %q to the issuer's stream.allowed_origins",
		ErrForeignOrigin, name, u.Redacted(), o.issuer, shown)
}
