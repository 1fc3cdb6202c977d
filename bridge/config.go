package bridge

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by [Open] to zero-valued [Config] fields.
const (
	DefaultStream         = "SECEVENTS"
	DefaultSubjectPrefix  = "secevent"
	DefaultPublishTimeout = 5 * time.Second
	DefaultName           = "setgate"
	// DefaultEmbeddedSync is the embedded server's default sync mode.
	DefaultEmbeddedSync = SyncAlways
)

// DefaultEmbeddedAddr is SETGATE_EMBEDDED_NATS_ADDR's default: the
// embedded server's listener on loopback. [Open] does not apply it: an
// empty [Config.EmbeddedAddr] means no listener.
const DefaultEmbeddedAddr = "127.0.0.1:4222"

// Sync modes of the embedded server's JetStream file store
// (SETGATE_EMBEDDED_SYNC).
const (
	// SyncAlways writes every message to disk (fsync) before JetStream
	// acknowledges it, so a 202 survives a power loss.
	SyncAlways = "always"
	// SyncInterval leaves syncing to nats-server's periodic flush (every
	// 2 minutes): faster, but a host failure can lose acknowledged SETs.
	SyncInterval = "interval"
)

// ConsumerUser is the user name consumers log in with at the embedded
// server's listener; ConsumerPasswordFileName is the default name of its
// password file in the data directory.
const (
	ConsumerUser             = "consumer"
	ConsumerPasswordFileName = "consumer.password"
)

// rejectedPrefix is the first token of rejection subjects; it may not be
// the subject prefix, or the stream would capture rejections.
const rejectedPrefix = "setgate"

// Config holds the NATS settings, filled by cmd from the SETGATE_* variables
// (README "Environment").
type Config struct {
	// URL of an external NATS server (SETGATE_NATS_URL); empty starts an
	// embedded server with JetStream.
	URL string
	// CredsFile, NKeyFile, CAFile, CertFile and KeyFile authenticate to an
	// external server and configure TLS. CertFile and KeyFile go together;
	// CredsFile and NKeyFile exclude each other. They need URL.
	CredsFile, NKeyFile, CAFile, CertFile, KeyFile string
	// Login is a user/password or token login at an external server. It
	// excludes CredsFile and NKeyFile and needs URL. A URL's own user part
	// is not a login setgate offers (config refuses it), but is never
	// shown: see [RedactURL].
	Login Login
	// EmbeddedAddr is where the embedded server listens for consumers,
	// host:port; port 0 picks a free port. Empty means no TCP listener at
	// all: setgate itself always connects in-process. The listener
	// requires the [ConsumerUser] and its password.
	EmbeddedAddr string
	// ConsumerPasswordFile holds the [ConsumerUser]'s password when the
	// embedded server listens (default <DataDir>/consumer.password). A
	// missing file is created at start with a random password, mode 0600.
	ConsumerPasswordFile string
	// EmbeddedSync is [SyncAlways] (default) or [SyncInterval].
	EmbeddedSync string
	// DataDir is the embedded server's JetStream store directory
	// (required when URL is empty).
	DataDir string
	// Stream is the JetStream stream name (default SECEVENTS).
	Stream string
	// SubjectPrefix is the first token of every subject (default secevent).
	SubjectPrefix string
	// StreamManage creates or updates the stream at start; when false the
	// stream must already exist.
	StreamManage bool
	// StreamReplicas is the stream's replica count (default 1).
	StreamReplicas int
	// StreamMaxAge is the stream's message age limit; 0 keeps messages
	// forever.
	StreamMaxAge time.Duration
	// DuplicateWindow is the stream's deduplication window; 0 leaves the
	// server default (2m). It may not exceed StreamMaxAge.
	DuplicateWindow time.Duration
	// StreamMaxBytes caps the stream's size in bytes as JetStream counts
	// it (message, subject and headers); 0 or negative means no byte
	// limit of its own (the server's or account's storage limit applies).
	StreamMaxBytes int64
	// StreamDiscard says what happens when the stream is full: with
	// [DiscardNew] (the zero value's default) JetStream refuses the
	// publish, which setgate answers with 503; with [DiscardOld] the
	// oldest events are removed to make room.
	StreamDiscard Discard
	// PublishTimeout bounds how long a publish waits for JetStream
	// acknowledgements (default 5s).
	PublishTimeout time.Duration
	// Name is the client connection name (default setgate).
	Name string
}

// Discard is the stream's policy when it reaches its byte limit.
type Discard string

// The two discard policies (SETGATE_STREAM_DISCARD).
const (
	// DiscardNew refuses new events when the stream is full: nothing
	// stored is lost, pushes get 503 and polls stop acknowledging.
	DiscardNew Discard = "new"
	// DiscardOld removes the oldest events to make room.
	DiscardOld Discard = "old"
)

// withDefaults returns c with defaults filled in, or an error naming the
// first invalid setting.
func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.EmbeddedSync == "" {
		c.EmbeddedSync = DefaultEmbeddedSync
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = 1
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.StreamDiscard == "" {
		c.StreamDiscard = DiscardNew
	}
	if c.StreamMaxBytes < 0 {
		c.StreamMaxBytes = 0
	}

	if err := validateStreamName(c.Stream); err != nil {
		return c, err
	}
	if !isToken(c.SubjectPrefix) {
		return c, fmt.Errorf("bridge: subject prefix %q must be one token of [A-Za-z0-9_-]+", c.SubjectPrefix)
	}
	if c.SubjectPrefix == rejectedPrefix {
		return c, fmt.Errorf("bridge: subject prefix %q is reserved for %s.rejected.<issuer>", c.SubjectPrefix, rejectedPrefix)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return c, fmt.Errorf("bridge: stream replicas %d must be between 1 and 5", c.StreamReplicas)
	}
	if c.StreamMaxAge < 0 {
		return c, fmt.Errorf("bridge: stream max age %v must not be negative", c.StreamMaxAge)
	}
	if c.DuplicateWindow < 0 {
		return c, fmt.Errorf("bridge: duplicate window %v must not be negative", c.DuplicateWindow)
	}
	if c.StreamMaxAge > 0 && c.DuplicateWindow > c.StreamMaxAge {
		return c, fmt.Errorf("bridge: duplicate window %v must not exceed stream max age %v", c.DuplicateWindow, c.StreamMaxAge)
	}
	if c.StreamDiscard != DiscardNew && c.StreamDiscard != DiscardOld {
		return c, fmt.Errorf("bridge: stream discard policy %q must be %q or %q", c.StreamDiscard, DiscardNew, DiscardOld)
	}
	if c.PublishTimeout < 0 {
		return c, fmt.Errorf("bridge: publish timeout %v must not be negative", c.PublishTimeout)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("bridge: NATS client certificate and key files must be set together")
	}
	if err := c.checkAuthKinds(); err != nil {
		return c, err
	}
	if c.URL == "" {
		if userPassword, token := c.Login.kinds(); userPassword || token || c.CredsFile != "" || c.NKeyFile != "" || c.CAFile != "" || c.CertFile != "" {
			return c, errors.New("bridge: NATS auth and TLS files need a NATS URL; the embedded server uses neither")
		}
		if c.DataDir == "" {
			return c, errors.New("bridge: the embedded NATS server needs a data directory")
		}
		if c.EmbeddedAddr != "" {
			if _, _, err := splitEmbeddedAddr(c.EmbeddedAddr); err != nil {
				return c, err
			}
			if c.ConsumerPasswordFile == "" {
				c.ConsumerPasswordFile = filepath.Join(c.DataDir, ConsumerPasswordFileName)
			}
		}
		if c.EmbeddedSync != SyncAlways && c.EmbeddedSync != SyncInterval {
			return c, fmt.Errorf("bridge: embedded sync %q: want %s or %s", c.EmbeddedSync, SyncAlways, SyncInterval)
		}
	}
	return c, nil
}

// validateStreamName applies the JetStream naming rules: non-empty, at most
// 255 bytes, printable, with no whitespace and none of . * > / \.
func validateStreamName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("bridge: stream name %q must be 1 to 255 characters", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) {
			return fmt.Errorf("bridge: stream name %q must not contain whitespace, control characters or any of . * > / \\", name)
		}
	}
	return nil
}

// splitEmbeddedAddr parses host:port for the embedded server. Port 0 means
// any free port, which nats-server spells -1.
func splitEmbeddedAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bridge: embedded NATS address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bridge: embedded NATS address %q: invalid port", addr)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}

// checkAuthKinds refuses more than one kind of login at once (creds file,
// nkey file, user and password, token) and a user without a password or
// the other way round.
func (c Config) checkAuthKinds() error {
	userPassword, token := c.Login.kinds()
	if userPassword && (c.Login.User == "" || c.Login.Password == "") {
		return errors.New("bridge: a NATS user and its password go together")
	}
	var kinds []string
	for _, k := range []struct {
		set  bool
		name string
	}{
		{c.CredsFile != "", "a creds file"}, {c.NKeyFile != "", "an nkey file"},
		{userPassword, "a user and password"}, {token, "a token"},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) > 1 {
		return fmt.Errorf("bridge: NATS login: set one of a creds file, an nkey file, a user and password or a token, not %s", strings.Join(kinds, " and "))
	}
	return nil
}
