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

// startEmbedded starts a nats-server with JetStream stored in cfg.DataDir,
// listening on cfg.EmbeddedAddr, and waits until it accepts clients. Its
// log goes to log: warnings and errors always, notices and debug output
// only when log is enabled for debug.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	host, port, err := splitEmbeddedAddr(cfg.EmbeddedAddr)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: embedded NATS server: %w", err)
	}
	fatal := make(chan string, 1)
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(serverLogger{log: log.With("component", "nats-server"), fatal: fatal}, debug, false, false)
	srv.Start()
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
			return nil, fmt.Errorf("bridge: embedded NATS server on %s: %s", cfg.EmbeddedAddr, msg)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("bridge: embedded NATS server on %s not ready within %v", cfg.EmbeddedAddr, embeddedReadyTimeout)
		}
	}
	if !srv.JetStreamEnabled() {
		stop()
		return nil, fmt.Errorf("bridge: embedded NATS server could not enable JetStream in %s (see its log)", cfg.DataDir)
	}
	return srv, nil
}

// embeddedClientURL returns a URL other processes can dial: the server's
// client URL, with a wildcard listen host replaced by the loopback address.
func embeddedClientURL(srv *server.Server) string {
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		return srv.ClientURL()
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
