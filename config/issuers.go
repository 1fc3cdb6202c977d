package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// issuersFile is the YAML issuers file (README "The issuers file").
type issuersFile struct {
	Issuers []issuerEntry `yaml:"issuers"`
}

type issuerEntry struct {
	Name              string       `yaml:"name"`
	Issuer            string       `yaml:"issuer"`
	Audience          stringList   `yaml:"audience"`
	JWKSURI           string       `yaml:"jwks_uri"`
	Discovery         bool         `yaml:"discovery"`
	Algorithms        []string     `yaml:"algorithms"`
	Profile           string       `yaml:"profile"`
	MaxClockSkew      string       `yaml:"max_clock_skew"`
	MaxAge            string       `yaml:"max_age"`
	PayloadValidation string       `yaml:"payload_validation"`
	Push              *pushBlock   `yaml:"push"`
	Poll              *pollBlock   `yaml:"poll"`
	Stream            *streamBlock `yaml:"stream"`
	Events            *eventsBlock `yaml:"events"`
}

type pushBlock struct {
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	// RateLimit is "<n>/<unit>", unit s, m or h (e.g. 100/s); Burst is
	// how many may come at once (default: one second's worth, at least 1).
	RateLimit rateText `yaml:"rate_limit"`
	Burst     int      `yaml:"burst"`
}

type pollBlock struct {
	Endpoint        string       `yaml:"endpoint"`
	MaxEvents       int          `yaml:"max_events"`
	LongPollTimeout string       `yaml:"long_poll_timeout"`
	BearerTokenFile string       `yaml:"bearer_token_file"`
	BearerTokenEnv  string       `yaml:"bearer_token_env"`
	OAuth2          *oauth2Block `yaml:"oauth2"`
}

type oauth2Block struct {
	TokenURL         string    `yaml:"token_url"`
	ClientID         string    `yaml:"client_id"`
	AuthStyle        string    `yaml:"auth_style"`
	ClientSecretFile string    `yaml:"client_secret_file"`
	ClientSecretEnv  string    `yaml:"client_secret_env"`
	PrivateKeyJWT    *jwtBlock `yaml:"private_key_jwt"`
	Scopes           []string  `yaml:"scopes"`
}

// jwtBlock is oauth2.private_key_jwt: the client authenticates with a JWT
// signed by its private key (RFC 7523 §2.2) instead of a secret.
type jwtBlock struct {
	KeyFile string `yaml:"key_file"`
	KID     string `yaml:"kid"`
}

type streamBlock struct {
	Manage                  bool         `yaml:"manage"`
	Delivery                string       `yaml:"delivery"`
	StreamID                string       `yaml:"stream_id"`
	EventsRequested         []string     `yaml:"events_requested"`
	Description             string       `yaml:"description"`
	AuthorizationHeaderFile string       `yaml:"authorization_header_file"`
	AuthorizationHeaderEnv  string       `yaml:"authorization_header_env"`
	BearerTokenFile         string       `yaml:"bearer_token_file"`
	BearerTokenEnv          string       `yaml:"bearer_token_env"`
	OAuth2                  *oauth2Block `yaml:"oauth2"`
	VerificationInterval    string       `yaml:"verification_interval"`
	VerificationTimeout     string       `yaml:"verification_timeout"`
	AllowedOrigins          []string     `yaml:"allowed_origins"`
}

type eventsBlock struct {
	Subjects map[string]string `yaml:"subjects"`
}

// stringList accepts a YAML string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// Issuer is one validated entry of the issuers file, secrets resolved.
// Two Issuers that are reflect.DeepEqual configure the same issuer, so a
// reload can keep one that did not change.
type Issuer struct {
	Name      string
	Verify    verify.Config
	PushToken string // bare bearer token; empty: no push
	// PushRate caps authenticated pushes per second (0: no cap), with
	// PushBurst at once.
	PushRate  rate.Limit
	PushBurst int
	Poll      *Poll
	Overrides map[string]string
	// Discovery: jwks_uri (unless set) and the SSF endpoints come from
	// the issuer's /.well-known/ssf-configuration.
	Discovery bool
	// Stream, when set, makes setgate manage its SSF stream.
	Stream *Stream
}

// Stream is a validated stream block: setgate manages the issuer's SSF
// stream at the transmitter.
type Stream struct {
	Delivery             string // "push" or "poll"
	StreamID             string // pinned stream; "" finds or creates one
	EventsRequested      []string
	Description          string
	PushAuthorization    string               // bare token the transmitter sends us (push)
	Bearer               string               // what we present to the SSF endpoints, or
	OAuth2               *poller.OAuth2Config // client credentials
	VerificationInterval time.Duration
	VerificationTimeout  time.Duration
	// AllowedOrigins are origins besides the issuer's own that SSF
	// endpoints learnt from the transmitter may use (scheme://host:port).
	AllowedOrigins []string
}

// AllowedOrigins is the issuer's stream.allowed_origins (nil without a
// stream block): where SSF endpoints learnt from the transmitter may be
// besides the issuer's own origin.
func (s Issuer) AllowedOrigins() []string {
	if s.Stream == nil {
		return nil
	}
	return s.Stream.AllowedOrigins
}

// DiscoverOptions is what SSF discovery checks the metadata against: the
// allowed origins, and whether jwks_uri is configured (then the
// metadata's is not used).
func (s Issuer) DiscoverOptions() ssf.DiscoverOptions {
	return ssf.DiscoverOptions{AllowedOrigins: s.AllowedOrigins(), JWKSConfigured: s.Verify.JWKSURI != ""}
}

// Poll is a validated poll block: setgate polls the issuer (RFC 8936).
// For a managed poll stream the transmitter names Endpoint.
type Poll struct {
	Endpoint        string
	MaxEvents       int
	LongPollTimeout time.Duration
	Bearer          string               // static bearer token, or
	OAuth2          *poller.OAuth2Config // client credentials
}

// defaultAlgorithms is used when an issuer lists none.
var defaultAlgorithms = []string{"RS256", "ES256"}

// issuerName is what an issuer's name may be: it appears in the push path
// and as a subject token.
var issuerName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// LoadedIssuers is one successful read of the issuers file.
type LoadedIssuers struct {
	// Issuers are the file's entries in order.
	Issuers []Issuer
	// Hash identifies the file's content (SHA-256, 16 hex digits); it is
	// shown on /issuers and in setgate_config_info.
	Hash string
	// Fingerprint covers the file and every secret file it names, so a
	// rotated secret is noticed too: a reload whose Fingerprint equals the
	// running one changes nothing. It is never shown.
	Fingerprint [sha256.Size]byte
	// Files are the paths read: the issuers file and the secret files, the
	// ones to watch for changes.
	Files []string
}

// LoadIssuers reads the issuers file at path (a regular file of at most
// [MaxIssuersFileBytes]) and the secret files it names (each at most
// [MaxSecretFileBytes]), strictly decodes and validates it
// ([ParseIssuers]). vars are the environment variables the file's *_env
// keys name. Every error names the file, and the issuer and key where
// there is one; none contains a secret.
func LoadIssuers(path string, vars map[string]string) (*LoadedIssuers, error) {
	if path == "" {
		return nil, errors.New("SETGATE_ISSUERS_FILE is not set")
	}
	data, err := ReadFile(path, MaxIssuersFileBytes)
	if err != nil {
		return nil, fmt.Errorf("issuers file: %w", err)
	}
	sum := sha256.Sum256(data)
	l := &LoadedIssuers{Hash: hex.EncodeToString(sum[:8]), Files: []string{path}}
	fp := sha256.New()
	fp.Write(data)
	readFile := func(name string) ([]byte, error) {
		b, err := ReadSecretFile(name)
		l.Files = append(l.Files, name)
		fp.Write([]byte(name))
		fp.Write(b)
		return b, err
	}
	if l.Issuers, err = ParseIssuers(data, vars, readFile); err != nil {
		return nil, fmt.Errorf("issuers file %s: %w", path, err)
	}
	fp.Sum(l.Fingerprint[:0])
	return l, nil
}

// ParseIssuers strictly decodes and validates the issuers file's content
// (README "The issuers file"): an unknown or duplicate key is an error
// naming its line, issuer and key path; names are unique; two entries may
// not accept the same issuer and audience. Secrets are resolved: a *_file
// key is read with readFile, an *_env key looked up in vars; the value is
// trimmed of white space and never appears in an error. The result is at
// least one Issuer, or an error, never both.
func ParseIssuers(data []byte, vars map[string]string, readFile func(string) ([]byte, error)) ([]Issuer, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, errors.New("the file is empty; it needs an issuers: list")
	}
	if err := checkKeys(root.Content[0], reflect.TypeOf(issuersFile{}), ""); err != nil {
		return nil, err
	}
	var f issuersFile
	if err := root.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Issuers) == 0 {
		return nil, errors.New("issuers: the list is empty")
	}
	seen := make(map[string]int)
	specs := make([]Issuer, 0, len(f.Issuers))
	for i, e := range f.Issuers {
		where := fmt.Sprintf("issuer #%d", i+1)
		if e.Name != "" {
			where = fmt.Sprintf("issuer %q", e.Name)
		}
		spec, err := e.resolve(vars, readFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if j, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("%s: name: already used by issuer #%d", where, j+1)
		}
		seen[e.Name] = i
		specs = append(specs, spec)
	}
	if err := checkSameIssuer(specs); err != nil {
		return nil, err
	}
	if err := checkPushTokens(specs); err != nil {
		return nil, err
	}
	return specs, nil
}

// checkPushTokens refuses two entries of different issuers (iss) with the
// same push credential: a transmitter holding it could push to the other
// issuer's path, and the 403 for a credential of another issuer could not
// tell them apart. Entries of one issuer (one per audience) may share it.
func checkPushTokens(specs []Issuer) error {
	for i, a := range specs {
		for _, b := range specs[i+1:] {
			if a.PushToken != "" && a.PushToken == b.PushToken && a.Verify.Issuer != b.Verify.Issuer {
				return fmt.Errorf("issuers %q and %q: the same push credential for two issuers; give each its own, so that one transmitter cannot push to another's path", a.Name, b.Name)
			}
		}
	}
	return nil
}

// checkSameIssuer refuses two entries with the same issuer and a common
// audience. A SET is stored once, under a message id made of its iss, jti
// and event type, by whichever entry receives it first; the other entry's
// subjects would never carry it, so its consumers would miss it (README
// "Issuers file"). One entry may carry both push and poll.
func checkSameIssuer(specs []Issuer) error {
	for i, a := range specs {
		for _, b := range specs[i+1:] {
			if a.Verify.Issuer != b.Verify.Issuer {
				continue
			}
			for _, aud := range a.Verify.Audience {
				if slices.Contains(b.Verify.Audience, aud) {
					return fmt.Errorf("issuers %q and %q: both accept issuer %s with audience %q: a SET is stored once (its id is iss, jti and event type), under whichever entry receives it first, so the other's consumers would miss it; use one entry (it may have both push and poll)",
						a.Name, b.Name, a.Verify.Issuer, aud)
				}
			}
		}
	}
	return nil
}

func (e *issuerEntry) resolve(vars map[string]string, readFile func(string) ([]byte, error)) (Issuer, error) {
	if e.Name == "" {
		return Issuer{}, errors.New("name: is required")
	}
	if !issuerName.MatchString(e.Name) {
		return Issuer{}, errors.New("name: must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
	}
	spec := Issuer{Name: e.Name, Discovery: e.Discovery}
	cfg := verify.Config{
		Name:       e.Name,
		Issuer:     e.Issuer,
		Audience:   e.Audience,
		JWKSURI:    e.JWKSURI,
		Algorithms: e.Algorithms,
		Profile:    verify.Profile(e.Profile),
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = defaultAlgorithms
	}
	if e.MaxClockSkew != "" {
		d, err := time.ParseDuration(e.MaxClockSkew)
		if err != nil {
			return spec, fmt.Errorf("max_clock_skew: %q is not a duration like 5m", e.MaxClockSkew)
		}
		cfg.MaxClockSkew = d
	}
	if e.MaxAge != "" {
		d, err := time.ParseDuration(e.MaxAge)
		if err != nil || d <= 0 {
			return spec, fmt.Errorf("max_age: %q is not a positive duration like 24h (leave it out to accept any age)", e.MaxAge)
		}
		cfg.MaxAge = d
	}
	switch e.PayloadValidation {
	case "", "strict":
	case "lenient":
		cfg.Lenient = true
	default:
		return spec, fmt.Errorf("payload_validation: %q is not strict or lenient", e.PayloadValidation)
	}
	check := cfg
	if e.Discovery && check.JWKSURI == "" {
		check.JWKSURI = check.Issuer // discovered later; validate the rest now
	}
	if err := check.Validate(); err != nil {
		return spec, err
	}
	spec.Verify = cfg
	if e.Stream != nil {
		st, err := e.Stream.resolve(e, vars, readFile)
		if err != nil {
			return spec, err
		}
		spec.Stream = st
		if st.Delivery == "push" && e.Push == nil {
			spec.PushToken = st.PushAuthorization // the credential we ask the transmitter to send
		}
	}
	if e.Push == nil && e.Poll == nil && e.Stream == nil {
		return spec, errors.New("push or poll: one is required (how SETs reach setgate)")
	}
	if e.Push != nil {
		token, err := secret("push", e.Push.BearerTokenFile, e.Push.BearerTokenEnv, vars, readFile)
		if err != nil {
			return spec, err
		}
		spec.PushToken = token
		if spec.PushRate, spec.PushBurst, err = e.Push.rateLimit(); err != nil {
			return spec, err
		}
	}
	if e.Poll != nil {
		managedPoll := spec.Stream != nil && spec.Stream.Delivery == "poll"
		p, err := e.Poll.resolve(vars, readFile, managedPoll)
		if err != nil {
			return spec, err
		}
		spec.Poll = p
	}
	if spec.Stream != nil && spec.Stream.Delivery == "poll" && spec.Poll == nil {
		// The transmitter names the endpoint; poll with the stream's credential.
		spec.Poll = &Poll{Bearer: spec.Stream.Bearer, OAuth2: spec.Stream.OAuth2}
	}
	if e.Events != nil {
		for typ, subj := range e.Events.Subjects {
			if err := bridge.ValidateOverride(subj); err != nil {
				return spec, fmt.Errorf("events.subjects[%q]: %w", typ, err)
			}
		}
		spec.Overrides = e.Events.Subjects
	}
	return spec, nil
}

// rateText is push.rate_limit as written: a scalar, never a mapping or a
// list, so a mistaken shape is named by its key and line.
type rateText string

// UnmarshalYAML accepts a scalar only.
func (r *rateText) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: push.rate_limit: want a rate like 100/s (and push.burst beside it)", n.Line)
	}
	*r = rateText(n.Value)
	return nil
}

// rateUnits are the units of push.rate_limit.
var rateUnits = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}

// rateLimit parses push.rate_limit and push.burst; a zero limit means
// none.
func (b *pushBlock) rateLimit() (rate.Limit, int, error) {
	if b.RateLimit == "" {
		if b.Burst != 0 {
			return 0, 0, errors.New("push.burst: needs push.rate_limit")
		}
		return 0, 0, nil
	}
	n, unit, ok := strings.Cut(string(b.RateLimit), "/")
	per, known := rateUnits[unit]
	count, err := strconv.ParseFloat(n, 64)
	if !ok || !known || err != nil || count <= 0 || math.IsInf(count, 0) {
		return 0, 0, fmt.Errorf("push.rate_limit: %q is not a positive rate like 100/s, 600/m or 1000/h", b.RateLimit)
	}
	limit := rate.Limit(count / per.Seconds())
	burst := b.Burst
	switch {
	case burst < 0:
		return 0, 0, errors.New("push.burst: must not be negative")
	case burst == 0:
		burst = max(int(math.Ceil(float64(limit))), 1)
	}
	return limit, burst, nil
}

// resolve validates a poll block. For a managed poll stream the
// transmitter names the endpoint, so the block must not.
func (b *pollBlock) resolve(vars map[string]string, readFile func(string) ([]byte, error), managed bool) (*Poll, error) {
	switch {
	case managed && b.Endpoint != "":
		return nil, errors.New("poll.endpoint: must be left out: the managed stream (stream.delivery: poll) names it")
	case !managed && b.Endpoint == "":
		return nil, errors.New("poll.endpoint: is required")
	case !managed:
		if err := verify.CheckEndpointURL(b.Endpoint); err != nil {
			return nil, fmt.Errorf("poll.endpoint: %w", err)
		}
	}
	if b.MaxEvents < 0 {
		return nil, errors.New("poll.max_events: must not be negative")
	}
	p := &Poll{Endpoint: b.Endpoint, MaxEvents: b.MaxEvents}
	if b.LongPollTimeout != "" {
		d, err := time.ParseDuration(b.LongPollTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("poll.long_poll_timeout: %q is not a positive duration like 30s", b.LongPollTimeout)
		}
		p.LongPollTimeout = d
	}
	hasBearer := b.BearerTokenFile != "" || b.BearerTokenEnv != ""
	switch {
	case hasBearer && b.OAuth2 != nil:
		return nil, errors.New("poll: set a bearer token or oauth2, not both")
	case b.OAuth2 != nil:
		cc, err := b.OAuth2.resolve("poll", vars, readFile)
		if err != nil {
			return nil, err
		}
		p.OAuth2 = cc
	default:
		tok, err := secret("poll", b.BearerTokenFile, b.BearerTokenEnv, vars, readFile)
		if err != nil {
			return nil, err
		}
		p.Bearer = tok
	}
	return p, nil
}

func (b *streamBlock) resolve(e *issuerEntry, vars map[string]string, readFile func(string) ([]byte, error)) (*Stream, error) {
	if !e.Discovery {
		return nil, errors.New("stream: needs discovery: true (the SSF endpoints come from the transmitter's metadata)")
	}
	if !b.Manage {
		return nil, errors.New("stream.manage: only manage: true is supported; remove the stream block to leave the stream alone")
	}
	if strings.TrimSpace(b.StreamID) != b.StreamID || strings.ContainsFunc(b.StreamID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, errors.New("stream.stream_id: must not have surrounding white space or control characters")
	}
	st := &Stream{Delivery: b.Delivery, StreamID: b.StreamID, EventsRequested: b.EventsRequested, Description: b.Description,
		VerificationInterval: time.Hour, VerificationTimeout: 2 * time.Minute}
	switch b.Delivery {
	case "push":
		tok, err := secretValue("stream.authorization_header", b.AuthorizationHeaderFile, b.AuthorizationHeaderEnv, vars, readFile)
		if err != nil {
			return nil, err
		}
		st.PushAuthorization = tok
		if e.Push != nil {
			if e.Push.BearerTokenFile != b.AuthorizationHeaderFile || e.Push.BearerTokenEnv != b.AuthorizationHeaderEnv {
				return nil, errors.New("push: with stream.delivery push, leave the push block out (stream.authorization_header_file is the push credential) or name the same secret")
			}
		}
	case "poll":
		if b.AuthorizationHeaderFile != "" || b.AuthorizationHeaderEnv != "" {
			return nil, errors.New("stream.authorization_header_file: only for delivery push")
		}
	default:
		return nil, fmt.Errorf("stream.delivery: %q is not push or poll", b.Delivery)
	}
	if len(b.EventsRequested) == 0 {
		return nil, errors.New("stream.events_requested: name at least one event type")
	}
	hasBearer := b.BearerTokenFile != "" || b.BearerTokenEnv != ""
	switch {
	case hasBearer && b.OAuth2 != nil:
		return nil, errors.New("stream: set a bearer token or oauth2, not both")
	case b.OAuth2 != nil:
		cc, err := b.OAuth2.resolve("stream", vars, readFile)
		if err != nil {
			return nil, err
		}
		st.OAuth2 = cc
	default:
		tok, err := secret("stream", b.BearerTokenFile, b.BearerTokenEnv, vars, readFile)
		if err != nil {
			return nil, err
		}
		st.Bearer = tok
	}
	origins, err := ssf.ParseAllowedOrigins(b.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("stream.allowed_origins%w", err)
	}
	st.AllowedOrigins = origins
	if st.VerificationInterval, err = optionalDuration("stream.verification_interval", b.VerificationInterval, time.Hour); err != nil {
		return nil, err
	}
	if st.VerificationTimeout, err = optionalDuration("stream.verification_timeout", b.VerificationTimeout, 2*time.Minute); err != nil {
		return nil, err
	}
	return st, nil
}

// optionalDuration parses raw, or returns def when raw is empty.
func optionalDuration(key, raw string, def time.Duration) (time.Duration, error) {
	if raw == "" {
		return def, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a duration like 1h (0 disables)", key, raw)
	}
	return d, nil
}

// resolve validates an oauth2 block of the block named where. The client
// authenticates exactly one way: a secret (client_secret_file or _env,
// sent as auth_style says: basic, the default, or post) or
// private_key_jwt.
func (o *oauth2Block) resolve(where string, vars map[string]string, readFile func(string) ([]byte, error)) (*poller.OAuth2Config, error) {
	key := where + ".oauth2"
	if o.TokenURL == "" {
		return nil, fmt.Errorf("%s.token_url: is required", key)
	}
	if err := verify.CheckEndpointURL(o.TokenURL); err != nil {
		return nil, fmt.Errorf("%s.token_url: %w", key, err)
	}
	if o.ClientID == "" {
		return nil, fmt.Errorf("%s.client_id: is required", key)
	}
	cfg := &poller.OAuth2Config{ClientID: o.ClientID, TokenURL: o.TokenURL, Scopes: o.Scopes}
	hasSecret := o.ClientSecretFile != "" || o.ClientSecretEnv != ""
	switch {
	case hasSecret && o.PrivateKeyJWT != nil:
		return nil, fmt.Errorf("%s: set one of client_secret_file, client_secret_env or private_key_jwt, not several", key)
	case o.PrivateKeyJWT != nil:
		if o.AuthStyle != "" {
			return nil, fmt.Errorf("%s.auth_style: is for a client secret; private_key_jwt is its own way", key)
		}
		if o.PrivateKeyJWT.KeyFile == "" {
			return nil, fmt.Errorf("%s.private_key_jwt.key_file: is required", key)
		}
		pem, err := readFile(o.PrivateKeyJWT.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.private_key_jwt.key_file: %w", key, err)
		}
		if _, _, err := poller.ParseAssertionKey(pem); err != nil {
			return nil, fmt.Errorf("%s.private_key_jwt.key_file: %s: %w", key, o.PrivateKeyJWT.KeyFile, err)
		}
		cfg.AuthStyle, cfg.PrivateKeyPEM, cfg.KeyID = poller.AuthPrivateKeyJWT, pem, o.PrivateKeyJWT.KID
	default:
		switch style := poller.AuthStyle(o.AuthStyle); style {
		case "", poller.AuthBasic:
			cfg.AuthStyle = poller.AuthBasic
		case poller.AuthPost:
			cfg.AuthStyle = poller.AuthPost
		default:
			return nil, fmt.Errorf("%s.auth_style: %q is not basic or post", key, o.AuthStyle)
		}
		if !hasSecret {
			return nil, fmt.Errorf("%s: client_secret_file, client_secret_env or private_key_jwt is required", key)
		}
		sec, err := secretValue(key+".client_secret", o.ClientSecretFile, o.ClientSecretEnv, vars, readFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret = sec
	}
	return cfg, nil
}

// secret reads a bearer token named by exactly one of a *_file path or an
// *_env variable name. The value is never logged.
func secret(block, file, envName string, vars map[string]string, readFile func(string) ([]byte, error)) (string, error) {
	return secretValue(block+".bearer_token", file, envName, vars, readFile)
}

// secretValue reads the secret named key from exactly one of a file
// (key_file) or an environment variable (key_env), trimmed of white space.
func secretValue(key, file, envName string, vars map[string]string, readFile func(string) ([]byte, error)) (string, error) {
	switch {
	case file != "" && envName != "":
		return "", fmt.Errorf("%s: set %s_file or %s_env, not both", key, key, key)
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", key, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("%s_file: %s is empty", key, file)
		}
		return t, nil
	case envName != "":
		t := strings.TrimSpace(vars[envName])
		if t == "" {
			return "", fmt.Errorf("%s_env: variable %s is unset or empty", key, envName)
		}
		return t, nil
	default:
		return "", fmt.Errorf("%s: %s_file or %s_env is required", strings.SplitN(key, ".", 2)[0], key, key)
	}
}

// checkKeys walks a YAML mapping against the yaml tags of struct type t and
// reports the first unknown or duplicate key with its line and path.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(yaml.Node{}):
		return nil
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := make(map[string]reflect.Type)
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			fields[name] = t.Field(i).Type
		}
		seen := make(map[string]bool)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key := path + k.Value
			if seen[k.Value] {
				return fmt.Errorf("line %d: %s: duplicate key", k.Line, key)
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: %s: unknown key", k.Line, key)
			}
			if err := checkKeys(n.Content[i+1], ft, key+"."); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)
			if item.Kind == yaml.MappingNode {
				if name := mappingValue(item, "name"); name != "" {
					p = fmt.Sprintf("issuer %q: ", name)
				}
			}
			if err := checkKeys(item, t.Elem(), p); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		seen := make(map[string]bool)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; seen[k.Value] {
				return fmt.Errorf("line %d: %s%s: duplicate key", k.Line, path, k.Value)
			}
			seen[n.Content[i].Value] = true
		}
	}
	return nil
}

func mappingValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value
		}
	}
	return ""
}
