package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/setgate/setgate/bridge"
)

// Settings are the process settings, read from SETGATE_* variables
// (README "Environment"). Each field's env tag names its variable (after
// [EnvPrefix]), its envDefault tag the default that [DefaultSettings] also
// holds, and its help tag the line --help prints ([PrintSettings]).
type Settings struct {
	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:":8080" help:"push receiver listen address"`
	AdminAddr         string        `env:"ADMIN_ADDR" envDefault:":9090" help:"admin listen address (/healthz, /readyz, /metrics, /issuers)"`
	IssuersFile       string        `env:"ISSUERS_FILE" help:"YAML issuers file (required for serve); reloaded on change and on SIGHUP"`
	NATSURL           string        `env:"NATS_URL" help:"NATS server URL(s), comma-separated, without user:password@ or token@ (refused); empty starts an embedded server"`
	NATSCredsFile     string        `env:"NATS_CREDS_FILE" help:"NATS user credentials file"`
	NATSNKeyFile      string        `env:"NATS_NKEY_FILE" help:"NATS nkey seed file"`
	NATSUser          string        `env:"NATS_USER" help:"NATS user name; its password in SETGATE_NATS_PASSWORD_FILE"`
	NATSPasswordFile  string        `env:"NATS_PASSWORD_FILE" help:"file holding SETGATE_NATS_USER's password"`
	NATSTokenFile     string        `env:"NATS_TOKEN_FILE" help:"file holding a NATS authentication token"`
	NATSCAFile        string        `env:"NATS_CA_FILE" help:"CA bundle for the NATS server's TLS certificate"`
	NATSCertFile      string        `env:"NATS_CERT_FILE" help:"client certificate for NATS mTLS"`
	NATSKeyFile       string        `env:"NATS_KEY_FILE" help:"client key for NATS mTLS"`
	EmbeddedNATSAddr  string        `env:"EMBEDDED_NATS_ADDR" envDefault:"127.0.0.1:4222" help:"consumers' listener of the embedded NATS server (user consumer); set empty: no listener"`
	EmbeddedNATSPass  string        `env:"EMBEDDED_NATS_CONSUMER_PASSWORD_FILE" help:"password of user consumer at the embedded listener; created (random, 0600) when missing (default <SETGATE_DATA_DIR>/consumer.password)"`
	EmbeddedSync      string        `env:"EMBEDDED_SYNC" envDefault:"always" help:"embedded JetStream: always (fsync before each ack) or interval (every 2m, faster)"`
	DataDir           string        `env:"DATA_DIR" envDefault:"./data" help:"embedded JetStream storage directory"`
	Stream            string        `env:"STREAM" envDefault:"SECEVENTS" help:"JetStream stream name"`
	SubjectPrefix     string        `env:"SUBJECT_PREFIX" envDefault:"secevent" help:"first subject token"`
	StreamManage      bool          `env:"STREAM_MANAGE" envDefault:"true" help:"create/update the stream at start (false: it must exist)"`
	StreamReplicas    int           `env:"STREAM_REPLICAS" envDefault:"1" help:"stream replicas (3 on a NATS cluster)"`
	StreamMaxAge      time.Duration `env:"STREAM_MAX_AGE" envDefault:"168h" help:"how long the stream keeps events"`
	StreamMaxBytes    ByteSize      `env:"STREAM_MAX_BYTES" envDefault:"0" help:"stream byte limit, e.g. 800Mi or 1G; 0 or -1: none (the server's storage limit applies)"`
	StreamDiscard     string        `env:"STREAM_DISCARD" envDefault:"new" help:"when the stream is full: new (refuse: pushes get 503) or old (remove the oldest events)"`
	DuplicateWindow   time.Duration `env:"DUPLICATE_WINDOW" envDefault:"90s" help:"JetStream de-duplication window: a SET retried within it is stored once"`
	PublishTimeout    time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"5s" help:"how long to wait for JetStream acks before answering 503"`
	PublicURL         string        `env:"PUBLIC_URL" help:"externally reachable base URL of the push receiver"`
	MaxBodyBytes      int64         `env:"MAX_BODY_BYTES" envDefault:"65536" help:"larger push bodies get 413, larger polled SETs invalid_request; must fit the NATS max_payload as a message (at most 419236 for 1 MiB)"`
	MaxConcurrent     int           `env:"MAX_CONCURRENT" envDefault:"256" help:"pushes per issuer being verified and published at once (body read) before 429"`
	MaxConnections    int           `env:"MAX_CONNECTIONS" envDefault:"4096" help:"open connections on the push listener; more wait in the kernel's accept queue"`
	TLSCertFile       string        `env:"TLS_CERT_FILE" help:"TLS certificate for the push listener"`
	TLSKeyFile        string        `env:"TLS_KEY_FILE" help:"TLS key for the push listener"`
	TLSClientCAFile   string        `env:"TLS_CLIENT_CA_FILE" help:"CA bundle: require and verify transmitter client certificates (mTLS)"`
	JWKSFetchTimeout  time.Duration `env:"JWKS_FETCH_TIMEOUT" envDefault:"5s" help:"bound on one JWKS fetch"`
	JWKSRefresh       time.Duration `env:"JWKS_REFRESH_INTERVAL" envDefault:"1h" help:"periodic JWKS refresh"`
	JWKSMinRefresh    time.Duration `env:"JWKS_MIN_REFRESH_INTERVAL" envDefault:"30s" help:"least time between refreshes caused by unknown kids"`
	PollLeaseTTL      time.Duration `env:"POLL_LEASE_TTL" envDefault:"15s" help:"poll lease lifetime: a replica that dies is replaced within this"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat         string        `env:"LOG_FORMAT" envDefault:"json" help:"json or text"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s" help:"graceful drain bound"`
	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"5s" help:"slow-client bound on request headers"`
	ReadTimeout       time.Duration `env:"READ_TIMEOUT" envDefault:"10s" help:"slow-client bound on a whole request"`
	IdleTimeout       time.Duration `env:"IDLE_TIMEOUT" envDefault:"60s" help:"how long an idle keep-alive push connection is kept"`
}

// defaultDuplicateWindow is SETGATE_DUPLICATE_WINDOW's default, chosen
// from the retry horizons (README "Guarantees") and the memory it costs
// (README "Memory"). An RFC 8936 poll transmitter delivers a SET whose ack
// did not arrive again at the next poll: seconds later, after a crash
// within SETGATE_POLL_LEASE_TTL (15 s) plus a poll. An RFC 8935 push
// transmitter that got no 202 retries on its own schedule (RFC 8935 §4);
// setgate's 503s ask for 5 s. JetStream keeps every Nats-Msg-Id of the
// window in the server's memory, about 114 bytes live each: 90 s at 2,000
// SETs/s are 180,000 ids. Two minutes measured up to 152 MB of RSS at
// 2,000 SETs/s, over the 150 MB the embedded gateway is to stay under.
const defaultDuplicateWindow = 90 * time.Second

// EnvPrefix starts the name of every variable of [Settings].
const EnvPrefix = "SETGATE_"

// DefaultSettings returns the settings of an empty environment: every
// field holds its envDefault tag's value (a test holds the two together),
// so the value is valid as it is and a caller changes only what it needs.
func DefaultSettings() Settings {
	return Settings{
		HTTPAddr:          ":8080",
		AdminAddr:         ":9090",
		EmbeddedNATSAddr:  "127.0.0.1:4222",
		EmbeddedSync:      bridge.SyncAlways,
		DataDir:           "./data",
		Stream:            "SECEVENTS",
		SubjectPrefix:     "secevent",
		StreamManage:      true,
		StreamReplicas:    1,
		StreamMaxAge:      168 * time.Hour,
		StreamDiscard:     "new",
		DuplicateWindow:   defaultDuplicateWindow,
		PublishTimeout:    5 * time.Second,
		MaxBodyBytes:      65536,
		MaxConcurrent:     256,
		MaxConnections:    4096,
		JWKSFetchTimeout:  5 * time.Second,
		JWKSRefresh:       time.Hour,
		JWKSMinRefresh:    30 * time.Second,
		PollLeaseTTL:      15 * time.Second,
		LogLevel:          "info",
		LogFormat:         "json",
		ShutdownTimeout:   20 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
}

// Load reads the settings from vars, the process environment as a map
// (KEY → value), and validates them. A map rather than a getenv function:
// an empty SETGATE_EMBEDDED_NATS_ADDR (no listener) differs from an unset
// one (the default), which getenv cannot tell apart. Every error starts
// with "environment: " and names the variable.
func Load(vars map[string]string) (Settings, error) {
	var s Settings
	err := env.ParseWithOptions(&s, env.Options{Prefix: EnvPrefix, Environment: vars})
	var agg env.AggregateError
	if errors.As(err, &agg) {
		msgs := make([]string, 0, len(agg.Errors))
		for _, e := range agg.Errors {
			var pe env.ParseError
			if errors.As(e, &pe) {
				if f, ok := reflect.TypeOf(s).FieldByName(pe.Name); ok {
					name := EnvPrefix + f.Tag.Get("env")
					msgs = append(msgs, fmt.Sprintf("%s=%q: %v", name, vars[name], pe.Err))
					continue
				}
			}
			msgs = append(msgs, e.Error())
		}
		return s, fmt.Errorf("environment: %s", strings.Join(msgs, "; "))
	}
	if err != nil {
		return s, fmt.Errorf("environment: %w", err)
	}
	// The env library gives an empty variable its default; an empty
	// SETGATE_EMBEDDED_NATS_ADDR means no listener.
	if v, ok := vars[EnvPrefix+"EMBEDDED_NATS_ADDR"]; ok && v == "" {
		s.EmbeddedNATSAddr = ""
	}
	return s, s.Validate()
}

// Validate checks the combinations and enumerations the types alone do
// not: log level and format, sync mode, positive limits, TLS files that go
// together, no credentials in the NATS URL and one NATS login at most.
// The error names the variable.
func (s Settings) Validate() error {
	if err := s.validateNATSLogin(); err != nil {
		return err
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("environment: SETGATE_LOG_LEVEL=%q: want debug, info, warn or error", s.LogLevel)
	}
	switch s.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("environment: SETGATE_LOG_FORMAT=%q: want json or text", s.LogFormat)
	}
	switch s.EmbeddedSync {
	case bridge.SyncAlways, bridge.SyncInterval:
	default:
		return fmt.Errorf("environment: SETGATE_EMBEDDED_SYNC=%q: want %s or %s", s.EmbeddedSync, bridge.SyncAlways, bridge.SyncInterval)
	}
	if s.MaxBodyBytes <= 0 {
		return fmt.Errorf("environment: SETGATE_MAX_BODY_BYTES must be positive")
	}
	if s.MaxConnections <= 0 {
		return fmt.Errorf("environment: SETGATE_MAX_CONNECTIONS must be positive")
	}
	if s.StreamReplicas < 1 || s.StreamReplicas > 5 {
		return fmt.Errorf("environment: SETGATE_STREAM_REPLICAS must be 1 to 5")
	}
	switch s.StreamDiscard {
	case "new", "old":
	default:
		return fmt.Errorf("environment: SETGATE_STREAM_DISCARD=%q: want new or old", s.StreamDiscard)
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return fmt.Errorf("environment: SETGATE_TLS_CERT_FILE and SETGATE_TLS_KEY_FILE go together")
	}
	if s.PollLeaseTTL < time.Second {
		return fmt.Errorf("environment: SETGATE_POLL_LEASE_TTL must be at least 1s")
	}
	if s.TLSClientCAFile != "" && s.TLSCertFile == "" {
		return fmt.Errorf("environment: SETGATE_TLS_CLIENT_CA_FILE needs SETGATE_TLS_CERT_FILE")
	}
	return nil
}

// validateNATSLogin refuses a user part in SETGATE_NATS_URL and more than
// one kind of NATS login. A URL's user:password@ or token@ would show
// wherever the URL is shown (logs, /issuers, errors, the process
// environment); secrets come from files (README "Environment").
func (s Settings) validateNATSLogin() error {
	if bridge.URLHasUserinfo(s.NATSURL) {
		return fmt.Errorf("environment: SETGATE_NATS_URL=%q has a user part (user:password@ or token@), which is refused: a secret in the URL would be shown wherever the URL is; "+
			"remove it and set SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE (a file holding the password), or SETGATE_NATS_TOKEN_FILE (a file holding the token), "+
			"or use SETGATE_NATS_CREDS_FILE or SETGATE_NATS_NKEY_FILE", bridge.RedactURL(s.NATSURL))
	}
	if (s.NATSUser == "") != (s.NATSPasswordFile == "") {
		return fmt.Errorf("environment: SETGATE_NATS_USER and SETGATE_NATS_PASSWORD_FILE go together")
	}
	var kinds []string
	for _, k := range []struct {
		set  bool
		name string
	}{
		{s.NATSCredsFile != "", "SETGATE_NATS_CREDS_FILE"},
		{s.NATSNKeyFile != "", "SETGATE_NATS_NKEY_FILE"},
		{s.NATSUser != "", "SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE"},
		{s.NATSTokenFile != "", "SETGATE_NATS_TOKEN_FILE"},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) > 1 {
		return fmt.Errorf("environment: %s: set one NATS login, not two kinds at once", strings.Join(kinds, " and "))
	}
	return nil
}

// NATSLogin reads the user/password or token login at an external NATS
// server: SETGATE_NATS_USER with the password in SETGATE_NATS_PASSWORD_FILE,
// or the token in SETGATE_NATS_TOKEN_FILE. The files are secret files
// ([ReadSecretFile]); surrounding white space is trimmed and an empty
// secret is refused. Errors name the variable and file, never the content.
// With neither set it returns the zero Login.
func (s Settings) NATSLogin() (bridge.Login, error) {
	var l bridge.Login
	if s.NATSPasswordFile != "" {
		pw, err := readNATSSecret("SETGATE_NATS_PASSWORD_FILE", s.NATSPasswordFile)
		if err != nil {
			return l, err
		}
		l.User, l.Password = s.NATSUser, pw
	}
	if s.NATSTokenFile != "" {
		tok, err := readNATSSecret("SETGATE_NATS_TOKEN_FILE", s.NATSTokenFile)
		if err != nil {
			return l, err
		}
		l.Token = tok
	}
	return l, nil
}

// readNATSSecret reads the secret file path named by variable name.
func readNATSSecret(name, path string) (bridge.Secret, error) {
	b, err := ReadSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("nats: %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("nats: %s: %s is empty", name, path)
	}
	return bridge.Secret(v), nil
}

// ByteSize is a byte count written as an integer with an optional
// Kubernetes-style suffix: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti
// (powers of 1024). A negative value means "no limit" and is kept as -1.
type ByteSize int64

// byteUnits are the accepted suffixes, longest first.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// UnmarshalText parses a byte size such as 65536, 800Mi or 1G.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a byte size like 800Mi, 1G or 1073741824", string(text))
	}
	if n < 0 {
		*b = -1
		return nil
	}
	if n > math.MaxInt64/mult {
		return fmt.Errorf("%q is too large", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// PrintSettings writes one line per variable with its default and
// meaning, as --help shows them.
func PrintSettings(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	t := reflect.TypeOf(Settings{})
	for i := range t.NumField() {
		f := t.Field(i)
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\n", EnvPrefix, f.Tag.Get("env"), def, f.Tag.Get("help"))
	}
	_ = tw.Flush()
}

// CheckMaxBody reports an error when a SET of SETGATE_MAX_BODY_BYTES could
// make a NATS message larger than maxPayload, the max payload of the NATS
// server setgate is connected to (known only after connecting): such a SET
// would pass the body limit and then never be stored. The bound is
// [bridge.MessageSizeBound] (README "Subjects and messages"); the error
// names the variable, both sizes and the largest value that fits.
func (s Settings) CheckMaxBody(maxPayload int64) error {
	need := bridge.MessageSizeBound(s.MaxBodyBytes, s.Stream)
	if maxPayload <= 0 || need <= maxPayload { // 0: not known (not connected)
		return nil
	}
	return fmt.Errorf("environment: SETGATE_MAX_BODY_BYTES=%d: a SET that large can make a NATS message of %d bytes, "+
		"more than the NATS server's max_payload of %d bytes; set SETGATE_MAX_BODY_BYTES to at most %d or raise the server's max_payload",
		s.MaxBodyBytes, need, maxPayload, bridge.MaxSETBytes(maxPayload, s.Stream))
}
