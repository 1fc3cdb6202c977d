package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedReadyTimeout bounds the embedded server's start; readyStep is
// how often the start is checked for a fatal error.
const (
	embeddedReadyTimeout = 10 * time.Second
	readyStep            = 50 * time.Millisecond
)

// embedded is a started embedded server and the credentials of setgate's
// own in-process connection to it.
type embedded struct {
	srv *server.Server
	// internalPassword is [internalUser]'s password, random per start.
	internalPassword string
	// consumerPassword is [ConsumerUser]'s password; empty without a
	// listener.
	consumerPassword string
}

// embeddedOptions returns the embedded server's options: JetStream stored
// in cfg.DataDir and synced as cfg.EmbeddedSync says; setgate's own user
// with the password internal; without cfg.EmbeddedAddr no listener, with
// it a listener on that address that also admits [ConsumerUser] with the
// password consumer and [consumerPermissions]. No user is anonymous.
func embeddedOptions(cfg Config, internal, consumer string) (*server.Options, error) {
	internalHash, err := serverPassword(internal)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		SyncAlways: cfg.EmbeddedSync == SyncAlways,
		Users:      []*server.User{{Username: internalUser, Password: internalHash}},
	}
	if cfg.EmbeddedAddr == "" {
		opts.DontListen = true
		return opts, nil
	}
	host, port, err := splitEmbeddedAddr(cfg.EmbeddedAddr)
	if err != nil {
		return nil, err
	}
	consumerHash, err := serverPassword(consumer)
	if err != nil {
		return nil, err
	}
	opts.Host, opts.Port = host, port
	opts.Users = append(opts.Users, &server.User{
		Username:    ConsumerUser,
		Password:    consumerHash,
		Permissions: consumerPermissions(cfg.SubjectPrefix, cfg.Stream),
	})
	return opts, nil
}

// startEmbedded starts a nats-server with [embeddedOptions] and waits
// until it accepts clients. Its log goes to log: warnings and errors
// always, notices and debug output only when log is enabled for debug.
func startEmbedded(cfg Config, log *slog.Logger) (*embedded, error) {
	e := &embedded{}
	var err error
	if e.internalPassword, err = randomSecret(32); err != nil {
		return nil, err
	}
	if cfg.EmbeddedAddr != "" {
		if e.consumerPassword, err = ensureConsumerPassword(cfg.ConsumerPasswordFile); err != nil {
			return nil, err
		}
	}
	opts, err := embeddedOptions(cfg, e.internalPassword, e.consumerPassword)
	if err != nil {
		return nil, err
	}
	where := cfg.EmbeddedAddr
	if where == "" {
		where = "(no listener)"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: embedded NATS server: %w", err)
	}
	fatal := make(chan string, 1)
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(serverLogger{log: log.With("component", "nats-server"), fatal: fatal}, debug, false, false)
	srv.Start()
	e.srv = srv
	stop := func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	// Wait in short steps: a fatal error (port in use, unusable store) does
	// not stop the server by itself, so the wait would last the full bound.
	deadline := time.Now().Add(embeddedReadyTimeout)
	for !srv.ReadyForConnections(readyStep) {
		select {
		case msg := <-fatal:
			stop()
			return nil, fmt.Errorf("bridge: embedded NATS server on %s: %s", where, msg)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("bridge: embedded NATS server on %s not ready within %v", where, embeddedReadyTimeout)
		}
	}
	if !srv.JetStreamEnabled() {
		stop()
		return nil, fmt.Errorf("bridge: embedded NATS server could not enable JetStream in %s (see its log)", cfg.DataDir)
	}
	return e, nil
}

// embeddedClientURL returns a URL other processes can dial: the server's
// client URL, with a wildcard listen host replaced by the loopback address;
// empty when the server does not listen.
func embeddedClientURL(srv *server.Server) string {
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := "127.0.0.1"
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// serverLogger adapts slog to nats-server's Logger. Notices go to debug:
// they are the server's start-up banner, of no use in setgate's log. A
// fatal message, on which nats-server itself would exit, is also sent
// (without blocking) on fatal.
type serverLogger struct {
	log   *slog.Logger
	fatal chan<- string
}

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l serverLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
