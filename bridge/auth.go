package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
