package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// internalUser is setgate's own user at the embedded server; its password
// is random per start and only ever held in memory.
const internalUser = "setgate-internal"

// internalInboxPrefix is the reply prefix of setgate's own connection to the
// embedded server, outside the _INBOX.> a consumer may subscribe to, so a
// consumer does not see setgate's publish acknowledgements.
const internalInboxPrefix = "_SETGATE_INBOX"

// Bounds of a consumer password file: at most maxPasswordFile bytes, at
// least minPassword characters after trimming.
const (
	maxPasswordFile = 4096
	minPassword     = 16
)

// randomSecret returns n random bytes encoded as unpadded base64url.
func randomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bridge: random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ensureConsumerPassword returns the password held in path, first writing
// a new random one (32 bytes, base64url, mode 0600) when path does not
// exist. The password is never logged nor put in an error.
func ensureConsumerPassword(path string) (string, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := writeNewPassword(path); err != nil {
			return "", err
		}
	}
	return ReadConsumerPassword(path)
}

// writeNewPassword writes a fresh password to path unless a file appeared
// there meanwhile. It writes a temporary file and links it into place, so
// path never holds a partial password.
func writeNewPassword(path string) error {
	pw, err := randomSecret(32)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bridge: consumer password file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".consumer.password-*")
	if err != nil {
		return fmt.Errorf("bridge: consumer password file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600.
	_, werr := io.WriteString(tmp, pw+"\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("bridge: consumer password file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("bridge: consumer password file %s: %w", path, err)
	}
	return nil
}

// ReadConsumerPassword reads the password of [ConsumerUser] from path: a
// regular file (or a link to one) of at most 4 KiB holding at least 16
// characters, surrounding white space trimmed. Errors name the file, never
// its content.
func ReadConsumerPassword(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("bridge: consumer password file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("bridge: consumer password file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bridge: consumer password file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("bridge: consumer password file %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		return "", fmt.Errorf("bridge: consumer password file %s is larger than %d bytes", path, maxPasswordFile)
	}
	pw := strings.TrimSpace(string(b))
	if len(pw) < minPassword {
		return "", fmt.Errorf("bridge: consumer password file %s: the password must have at least %d characters", path, minPassword)
	}
	return pw, nil
}

// serverPassword is what nats-server gets for password: its bcrypt hash,
// so the server holds no plaintext (and does not warn about it). The hash
// never leaves memory, so the lowest cost does: a higher one would only
// make every login attempt, failed ones included, cost the server more.
func serverPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("bridge: hash a NATS password: %w", err)
	}
	return string(h), nil
}

// consumerPermissions is what [ConsumerUser] may do at the embedded server:
// read the stream and the rejection announcements, and create, use and
// delete JetStream consumers on the stream. It may not publish events or
// rejections, nor create, update, purge or delete streams or messages:
// none of those subjects is in the allow-list, and the event and setgate
// subjects are denied outright as well.
//
// The JetStream API subjects are those nats.go's jetstream package and the
// nats CLI send for stream info, message and direct get, ordered, durable
// pull and push consumers (create, info, fetch, ack, flow control, delete).
func consumerPermissions(prefix, stream string) *server.Permissions {
	api := func(format string) string { return fmt.Sprintf(format, stream) }
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				"$JS.API.INFO",
				"$JS.API.STREAM.NAMES",
				"$JS.API.STREAM.LIST", // nats stream ls
				api("$JS.API.STREAM.INFO.%s"),
				api("$JS.API.STREAM.MSG.GET.%s"),
				api("$JS.API.DIRECT.GET.%s"),
				api("$JS.API.DIRECT.GET.%s.>"),
				api("$JS.API.CONSUMER.CREATE.%s"),
				api("$JS.API.CONSUMER.CREATE.%s.>"),
				api("$JS.API.CONSUMER.DURABLE.CREATE.%s.*"),
				api("$JS.API.CONSUMER.INFO.%s.*"),
				api("$JS.API.CONSUMER.DELETE.%s.*"),
				api("$JS.API.CONSUMER.NAMES.%s"),
				api("$JS.API.CONSUMER.LIST.%s"),
				api("$JS.API.CONSUMER.MSG.NEXT.%s.*"),
				api("$JS.ACK.%s.>"),
				api("$JS.FC.%s.>"),
			},
			Deny: []string{prefix + ".>", rejectedPrefix + ".>"},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{prefix + ".>", rejectedPrefix + ".rejected.>", "_INBOX.>"},
		},
	}
}

// Secret is a password or token read from a file. It prints, logs and
// marshals as [redacted], so a [Config] shown by mistake shows no secret;
// string(s) is the value.
type Secret string

// redacted is what a [Secret] shows instead of its value.
const redacted = "[redacted]"

// String returns [redacted], never the value.
func (Secret) String() string { return redacted }

// GoString returns [redacted] quoted, never the value (fmt's %#v).
func (Secret) GoString() string { return `"` + redacted + `"` }

// LogValue returns [redacted], never the value (log/slog).
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns [redacted], never the value (encoding/json and the like).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Login is a user/password or a token login at an external NATS server
// (SETGATE_NATS_USER with SETGATE_NATS_PASSWORD_FILE, or
// SETGATE_NATS_TOKEN_FILE; the caller reads the files). The zero value is
// no login of this kind.
type Login struct {
	User     string
	Password Secret
	Token    Secret
}

// kinds reports whether l holds a user/password and whether a token.
func (l Login) kinds() (userPassword, token bool) {
	return l.User != "" || l.Password != "", l.Token != ""
}

// RedactURL returns urls, one NATS URL or several separated by commas,
// with the user part of each (user:password@ or token@) removed: what logs,
// errors and /issuers show of a NATS URL. A NATS URL has no meaningful path,
// so everything between the scheme and the last @ goes, whatever a parser
// would make of it.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		parts[i], _ = cutUserinfo(p)
	}
	return strings.Join(parts, ",")
}

// URLHasUserinfo reports whether any of urls, separated by commas, has a
// user part (user:password@ or token@), that is, an @ anywhere.
func URLHasUserinfo(urls string) bool {
	for p := range strings.SplitSeq(urls, ",") {
		if _, ok := cutUserinfo(p); ok {
			return true
		}
	}
	return false
}

// cutUserinfo removes everything between u's scheme (if any) and its last
// @, and reports whether there was an @.
func cutUserinfo(u string) (string, bool) {
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return u, false
	}
	prefix := ""
	if i := strings.Index(u, "://"); i >= 0 && i < at && isScheme(strings.TrimSpace(u[:i])) {
		prefix = u[:i+len("://")]
	}
	return prefix + u[at+1:], true
}

// isScheme reports whether s is a URL scheme (RFC 3986 §3.1): a letter,
// then letters, digits, +, - or .
func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// RedactURLError returns err, or, when err is a parse error of a URL with
// a user part, an error saying so without any of the URL: nats.go returns
// url.Parse's error, which quotes the whole URL, and its cause may quote
// part of the password ("invalid port ...").
func RedactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && URLHasUserinfo(ue.URL) {
		return fmt.Errorf("%s %q: a URL with a user part does not parse (the cause is not shown: it may quote the secret)", ue.Op, RedactURL(ue.URL))
	}
	return err
}
