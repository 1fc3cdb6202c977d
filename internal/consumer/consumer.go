// Package consumer connects setgate's operator commands ("setgate tail",
// the stream check of "setgate bench --url") to the NATS server the
// gateway publishes to: at SETGATE_NATS_URL, else at the embedded
// server's listener, with the SETGATE_NATS_* credentials, or logged in as
// the embedded server's consumer user (bridge.ConsumerUser) with the
// password serve wrote.
package consumer

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
)

// DefaultURL is SETGATE_NATS_URL, else the embedded server of serve.
func DefaultURL(s config.Settings) string {
	if s.NATSURL != "" {
		return s.NATSURL
	}
	host, port, err := net.SplitHostPort(s.EmbeddedNATSAddr)
	if err != nil || port == "0" {
		return "nats://127.0.0.1:4222"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// Login returns the option that logs in as bridge.ConsumerUser at the
// embedded server's listener: with the password in file when given, else,
// when no NATS URL or credentials are set, with the password in
// SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE or the data directory's
// consumer.password if that file exists (serve created it). Otherwise none.
func Login(s config.Settings, file string) ([]nats.Option, error) {
	if file == "" {
		if s.NATSURL != "" || natsLoginSet(s) {
			return nil, nil
		}
		file = s.EmbeddedNATSPass
		if file == "" {
			file = filepath.Join(s.DataDir, bridge.ConsumerPasswordFileName)
		}
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	pw, err := bridge.ReadConsumerPassword(file)
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.UserInfo(bridge.ConsumerUser, pw)}, nil
}

// natsLoginSet reports whether a SETGATE_NATS_* login is set: a creds or
// nkey file, a user and password file, or a token file.
func natsLoginSet(s config.Settings) bool {
	return s.NATSCredsFile != "" || s.NATSNKeyFile != "" || s.NATSUser != "" || s.NATSPasswordFile != "" || s.NATSTokenFile != ""
}

// Options configure [Connect].
type Options struct {
	// Settings give the default URL and the consumer login.
	Settings config.Settings
	// URL is the server's URL(s), comma-separated; "" is DefaultURL.
	URL string
	// PasswordFile holds the consumer password; "" finds it as Login does.
	PasswordFile string
	// Options are the connection's options: its name, handlers, and the
	// SETGATE_NATS_* credential and TLS options.
	Options []nats.Option
}

// ConnectError is a connection that failed, with a hint at what to pass
// to log in when the server refused the login.
type ConnectError struct {
	// URL is the server's URL(s) without a user part (bridge.RedactURL).
	URL  string
	Err  error
	Hint string
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to NATS at %s: %v%s", e.URL, e.Err, e.Hint)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Connect connects to the server as a consumer. A URL with a user part
// (user:password@ or token@) is refused: secrets come from files. A failed
// connection is a *ConnectError; an unreadable password file is returned
// as it is.
func Connect(o Options) (*nats.Conn, error) {
	url := o.URL
	if url == "" {
		url = DefaultURL(o.Settings)
	}
	if bridge.URLHasUserinfo(url) {
		return nil, fmt.Errorf("NATS URL %s has a user part (user:password@ or token@), which is refused: remove it and pass --password-file, "+
			"or set SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE, or SETGATE_NATS_TOKEN_FILE", bridge.RedactURL(url))
	}
	login, err := Login(o.Settings, o.PasswordFile)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(o.Options, login...)...)
	if err != nil {
		return nil, &ConnectError{URL: bridge.RedactURL(url), Err: bridge.RedactURLError(err), Hint: loginHint(err, o.Settings, login)}
	}
	return nc, nil
}

// loginHint explains an authorization error: what to pass to log in.
func loginHint(err error, s config.Settings, login []nats.Option) string {
	if !errors.Is(err, nats.ErrAuthorization) {
		return ""
	}
	if login == nil && natsLoginSet(s) {
		return " (the server refused the SETGATE_NATS_* login)"
	}
	if login == nil {
		return " (the embedded server wants user " + bridge.ConsumerUser + ": run where SETGATE_DATA_DIR is, or pass --password-file)"
	}
	return " (user " + bridge.ConsumerUser + " with the password file's password was refused)"
}
