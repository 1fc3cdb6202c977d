package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// reconnectWait is the pause between reconnect attempts (plus jitter).
const reconnectWait = 250 * time.Millisecond

// Bridge owns the NATS connection and, when no URL is configured, the
// embedded server. It is safe for concurrent use.
type Bridge struct {
	cfg      Config
	log      *slog.Logger
	subjects *Subjects
	srv      *server.Server // nil with an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	url      string
	closed   chan struct{} // closed by the connection's ClosedHandler

	closeOnce sync.Once
	closeErr  error

	// consumerPassword is the embedded listener's [ConsumerUser] password.
	consumerPassword string

	// msgPool holds released *outMsg for reuse; ackPrefix is the usual
	// start of the stream's PubAcks (see parsePubAck).
	msgPool   sync.Pool
	ackPrefix []byte
}

// Open connects to NATS as cfg says (starting the embedded server when
// cfg.URL is empty), then creates or updates the stream (cfg.StreamManage)
// or checks that it exists. ctx bounds the stream calls. The connection
// reconnects forever; disconnects and reconnects are logged.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bridge, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	subjects, err := NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return nil, err
	}
	// b.url is what logs and /issuers show: never a URL's user part.
	b := &Bridge{cfg: cfg, log: log, subjects: subjects, url: RedactURL(cfg.URL), closed: make(chan struct{}), ackPrefix: pubAckPrefix(cfg.Stream)}

	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			} else {
				log.Debug("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", RedactURL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			log.Warn("nats async error", attrs...)
		}),
	}
	connectURL := cfg.URL
	if cfg.URL == "" {
		e, err := startEmbedded(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv, b.consumerPassword = e.srv, e.consumerPassword
		b.url = embeddedClientURL(b.srv)
		// In-process: no TCP, and a user no one else knows. The URL only
		// names the connection; nats.go dials nothing. Writes are
		// buffered (inprocess.go).
		connectURL = "nats://in-process"
		opts = append(opts, nats.InProcessServer(bufferedServer{b.srv}),
			nats.UserInfo(internalUser, e.internalPassword),
			nats.CustomInboxPrefix(internalInboxPrefix))
	} else {
		authOpts, err := cfg.AuthOptions()
		if err != nil {
			return nil, err
		}
		opts = append(opts, authOpts...)
	}

	b.nc, err = nats.Connect(connectURL, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("bridge: connect to NATS at %s: %w%s", RedactURL(connectURL), RedactURLError(err), loginHint(err, cfg))
	}
	b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		b.abort()
		return nil, fmt.Errorf("bridge: jetstream: %w", err)
	}
	if err := b.ensureStream(ctx); err != nil {
		b.abort()
		return nil, err
	}
	attrs := []any{"url", b.url, "embedded", b.srv != nil, "stream", cfg.Stream, "subjects", cfg.SubjectPrefix + ".>"}
	if b.srv != nil {
		attrs = append(attrs, "sync", cfg.EmbeddedSync)
		if b.url != "" {
			attrs = append(attrs, "consumer_user", ConsumerUser, "consumer_password_file", cfg.ConsumerPasswordFile)
		}
	}
	log.Info("nats ready", attrs...)
	return b, nil
}

// AuthOptions turns the login and the credential and TLS files of cfg into
// NATS connect options; every setgate client of NATS (serve, tail, bench
// --url) connects with them. At most one kind of login may be set.
func (cfg Config) AuthOptions() ([]nats.Option, error) {
	if err := cfg.checkAuthKinds(); err != nil {
		return nil, err
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("bridge: NATS client certificate and key files must be set together")
	}
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: nkey file %s: %w", cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.Login.User != "" {
		opts = append(opts, nats.UserInfo(cfg.Login.User, string(cfg.Login.Password)))
	}
	if cfg.Login.Token != "" {
		opts = append(opts, nats.Token(string(cfg.Login.Token)))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	return opts, nil
}

// loginHint says which login an external server refused, naming the kind
// and the user, never a secret.
func loginHint(err error, cfg Config) string {
	if cfg.URL == "" || !errors.Is(err, nats.ErrAuthorization) {
		return ""
	}
	switch {
	case cfg.Login.User != "":
		return fmt.Sprintf(" (the server refused user %q with the password file's password)", cfg.Login.User)
	case cfg.Login.Token != "":
		return " (the server refused the token file's token)"
	case cfg.CredsFile != "":
		return " (the server refused the creds file's user)"
	case cfg.NKeyFile != "":
		return " (the server refused the nkey)"
	}
	return " (the server wants a login: a user and password file, a token file, a creds file or an nkey file)"
}

// ensureStream creates or updates the stream, or checks it exists.
func (b *Bridge) ensureStream(ctx context.Context) error {
	if !b.cfg.StreamManage {
		if _, err := b.js.Stream(ctx, b.cfg.Stream); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("bridge: stream %q does not exist and stream management is off: create it or enable SETGATE_STREAM_MANAGE: %w", b.cfg.Stream, err)
			}
			return fmt.Errorf("bridge: look up stream %q: %w", b.cfg.Stream, err)
		}
		return nil
	}
	_, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig())
	if err != nil {
		return fmt.Errorf("bridge: create or update stream %q: %w", b.cfg.Stream, err)
	}
	return nil
}

// streamConfig is the stream setgate creates or updates. A byte limit
// with discard new makes JetStream refuse publishes once the stream is
// full (answered with 503); with discard old it removes the oldest
// events instead.
func (b *Bridge) streamConfig() jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:       b.cfg.Stream,
		Subjects:   []string{b.cfg.SubjectPrefix + ".>"},
		Storage:    jetstream.FileStorage,
		Replicas:   b.cfg.StreamReplicas,
		MaxAge:     b.cfg.StreamMaxAge,
		Duplicates: b.cfg.DuplicateWindow,
		MaxBytes:   -1,
		Discard:    jetstream.DiscardNew,
	}
	if b.cfg.StreamMaxBytes > 0 {
		sc.MaxBytes = b.cfg.StreamMaxBytes
	}
	if b.cfg.StreamDiscard == DiscardOld {
		sc.Discard = jetstream.DiscardOld
	}
	return sc
}

// Close drains the connection, waiting at most until ctx is done (then it
// closes it outright), and shuts the embedded server down, if any. Calls
// after the first return the first call's result.
func (b *Bridge) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionReconnecting) {
			b.nc.Close()
			b.closeErr = fmt.Errorf("bridge: drain NATS connection: %w", err)
		}
		select {
		case <-b.closed:
		case <-ctx.Done():
			b.nc.Close()
			if b.closeErr == nil {
				b.closeErr = fmt.Errorf("bridge: drain NATS connection: %w", ctx.Err())
			}
		}
		b.shutdownServer()
	})
	return b.closeErr
}

// abort closes the connection and server after a failed Open.
func (b *Bridge) abort() {
	b.nc.Close()
	b.shutdownServer()
}

// shutdownServer stops the embedded server, if any, and waits for it.
func (b *Bridge) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Conn returns the NATS connection.
func (b *Bridge) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream context of the connection.
func (b *Bridge) JetStream() jetstream.JetStream { return b.js }

// ClientURL returns the URL of the server in use, without a user part
// ([RedactURL]); for the embedded server its listener's URL with the
// actual port, dialable by other clients as [ConsumerUser], or empty when
// it has no listener.
func (b *Bridge) ClientURL() string { return b.url }

// ConsumerPasswordFile returns the file holding the [ConsumerUser]'s
// password when the embedded server listens, else empty.
func (b *Bridge) ConsumerPasswordFile() string {
	if b.consumerPassword == "" {
		return ""
	}
	return b.cfg.ConsumerPasswordFile
}

// ConsumerOptions returns the connect options with which another client
// logs in at [Bridge.ClientURL] as [ConsumerUser]; nil for an external
// server or an embedded one without a listener.
func (b *Bridge) ConsumerOptions() []nats.Option {
	if b.consumerPassword == "" {
		return nil
	}
	return []nats.Option{nats.UserInfo(ConsumerUser, b.consumerPassword)}
}

// Subjects returns the subject mapping of the configured prefix.
func (b *Bridge) Subjects() *Subjects { return b.subjects }

// Ready returns nil when the connection is up and the stream exists, and
// otherwise an error saying which is not. Without a deadline on ctx the
// stream lookup is bounded by the publish timeout.
func (b *Bridge) Ready(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("bridge: NATS connection is %s", st)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.PublishTimeout)
		defer cancel()
	}
	if _, err := b.js.Stream(ctx, b.cfg.Stream); err != nil {
		return fmt.Errorf("bridge: stream %q: %w", b.cfg.Stream, err)
	}
	return nil
}
