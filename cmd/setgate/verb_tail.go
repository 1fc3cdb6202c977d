package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
)

// rejectedWildcard matches every bridge.RejectionSubject.
const rejectedWildcard = "setgate.rejected.>"

// tailVerb runs "setgate tail": an ordered consumer on the stream that
// prints each stored event on one line (or its envelope with --json) until
// ctx is done; with --rejected it also prints the rejections announced on
// setgate.rejected.>.
func tailVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("tail", "[flags] [subject]", stdout,
		"Print the events stored in the stream, one line each, as they arrive (default subject\n"+
			"<SETGATE_SUBJECT_PREFIX>.>); --json prints each envelope. Runs until interrupted.\n"+
			"Without --server it connects to SETGATE_NATS_URL, else to the embedded server of\n"+
			"serve/demo at SETGATE_EMBEDDED_NATS_ADDR as user consumer, with the password from\n"+
			"--password-file (default: serve's password file, when it exists).",
		"NATS_URL", "NATS_CREDS_FILE", "NATS_NKEY_FILE", "NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE",
		"EMBEDDED_NATS_ADDR", "EMBEDDED_NATS_CONSUMER_PASSWORD_FILE", "DATA_DIR", "STREAM", "SUBJECT_PREFIX")
	server := fs.String("server", "", "NATS URL(s), comma-separated (default $SETGATE_NATS_URL, else nats://$SETGATE_EMBEDDED_NATS_ADDR)")
	passwordFile := fs.String("password-file", "", "log in as user consumer with the password in this file (default $SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE, else $SETGATE_DATA_DIR/consumer.password, when it exists and no NATS URL or credentials are set)")
	stream := fs.String("stream", "", "JetStream stream (default $SETGATE_STREAM)")
	asJSON := fs.Bool("json", false, "print each event's full envelope as one JSON line, with nats_subject and stream_sequence first")
	all := fs.Bool("all", false, "start with the oldest stored event instead of new ones only")
	rejected := fs.Bool("rejected", false, "also print rejections announced on "+rejectedWildcard)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fs.Usage()
		return fmt.Errorf("tail: want at most one subject, got %d", len(pos))
	}
	s, err := config.Load(vars)
	if err != nil {
		return err
	}
	subject := s.SubjectPrefix + ".>"
	if len(pos) == 1 {
		subject = pos[0]
	}
	if *stream == "" {
		*stream = s.Stream
	}
	natsURL := *server
	if natsURL == "" {
		natsURL = defaultTailURL(s)
	}
	opts, err := tailNATSOptions(s, stderr)
	if err != nil {
		return err
	}
	consumer, err := consumerLogin(s, *passwordFile)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	nc, err := nats.Connect(natsURL, append(opts, consumer...)...)
	if err != nil {
		return fmt.Errorf("tail: connect to NATS at %s: %w%s", natsURL, err, loginHint(err, consumer))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("tail: jetstream: %w", err)
	}
	policy := jetstream.DeliverNewPolicy
	if *all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, *stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  policy,
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("tail: stream %q not found at %s (is setgate serve running?)", *stream, nc.ConnectedUrlRedacted())
		}
		if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
			return fmt.Errorf("tail: consumer on %s for %s: %w (%v)", *stream, subject, err, last)
		}
		return fmt.Errorf("tail: consumer on %s for %s: %w", *stream, subject, err)
	}
	out := &tailPrinter{w: stdout, json: *asJSON}
	consuming, err := cons.Consume(out.event, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		fmt.Fprintln(stderr, "setgate tail:", err)
	}))
	if err != nil {
		return fmt.Errorf("tail: consume %s: %w", subject, err)
	}
	defer func() {
		consuming.Stop()
		<-consuming.Closed()
	}()
	if *rejected {
		sub, err := nc.Subscribe(rejectedWildcard, out.rejection)
		if err != nil {
			return fmt.Errorf("tail: subscribe %s: %w", rejectedWildcard, err)
		}
		defer sub.Unsubscribe()
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("tail: subscribe %s: %w", rejectedWildcard, err)
		}
	}
	also := ""
	if *rejected {
		also = " and " + rejectedWildcard
	}
	fmt.Fprintf(stderr, "setgate tail: following %s in stream %s%s at %s\n", subject, *stream, also, nc.ConnectedUrlRedacted())
	<-ctx.Done()
	return nil
}

// defaultTailURL is SETGATE_NATS_URL, else the embedded server of serve.
func defaultTailURL(s config.Settings) string {
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

// consumerLogin returns the option that logs in as bridge.ConsumerUser at
// the embedded server's listener: with the password in file when given,
// else, when no NATS URL or credentials are set, with the password in
// SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE or the data directory's
// consumer.password if that file exists (serve created it). Otherwise none.
func consumerLogin(s config.Settings, file string) ([]nats.Option, error) {
	if file == "" {
		if s.NATSURL != "" || s.NATSCredsFile != "" || s.NATSNKeyFile != "" {
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

// loginHint explains an authorization error: what to pass to log in.
func loginHint(err error, login []nats.Option) string {
	if !errors.Is(err, nats.ErrAuthorization) {
		return ""
	}
	if login == nil {
		return " (the embedded server wants user " + bridge.ConsumerUser + ": run where SETGATE_DATA_DIR is, or pass --password-file)"
	}
	return " (user " + bridge.ConsumerUser + " with the password file's password was refused)"
}

// tailNATSOptions are the connection options from the SETGATE_NATS_*
// credential and TLS variables, as serve uses them.
func tailNATSOptions(s config.Settings, stderr io.Writer) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("setgate-tail"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				fmt.Fprintln(stderr, "setgate tail: disconnected:", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			fmt.Fprintln(stderr, "setgate tail: reconnected to", nc.ConnectedUrlRedacted())
		}),
	}
	auth, err := bridgeConfig(s).AuthOptions()
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	opts = append(opts, auth...)
	return opts, nil
}

// tailPrinter writes one line per message; the consumer and the
// rejection subscription call it from different goroutines.
type tailPrinter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func (p *tailPrinter) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

// event prints one stored event.
func (p *tailPrinter) event(m jetstream.Msg) {
	if p.json {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		p.line(string(jsonWithRouting(m.Data(), m.Subject(), seq)))
		return
	}
	var env bridge.Envelope
	if err := json.Unmarshal(m.Data(), &env); err != nil {
		p.line(fmt.Sprintf("%s  (unreadable envelope: %v)", m.Subject(), err))
		return
	}
	fields := []string{
		env.ReceivedAt.UTC().Format(time.RFC3339),
		m.Subject(),
		env.Issuer,
		"jti=" + env.JTI,
	}
	if who := subjectSummary(env.SubID, env.Sub, env.Event); who != "" {
		fields = append(fields, who)
	}
	fields = append(fields, payloadFacts(env.Event)...)
	if n := len(env.PayloadWarnings); n > 0 {
		fields = append(fields, fmt.Sprintf("warnings=%d", n))
	}
	p.line(strings.Join(fields, "  "))
}

// jsonWithRouting returns the JSON object body with "nats_subject" (and,
// when seq is not 0, "stream_sequence") put first, so a --json line says
// where the message was routed and where it sits in the stream. A body
// that is not a JSON object is carried as the string "unreadable".
func jsonWithRouting(body []byte, subject string, seq uint64) []byte {
	subj, _ := json.Marshal(subject)
	head := append([]byte(`{"nats_subject":`), subj...)
	if seq != 0 {
		head = fmt.Appendf(head, `,"stream_sequence":%d`, seq)
	}
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) < 2 || trimmed[0] != '{' {
		raw, _ := json.Marshal(string(body))
		return append(append(head, `,"unreadable":`...), append(raw, '}')...)
	}
	rest := bytes.TrimSpace(trimmed[1:])
	if rest[0] == '}' {
		return append(head, '}')
	}
	return append(append(head, ','), rest...)
}

// rejection prints one announced rejection.
func (p *tailPrinter) rejection(m *nats.Msg) {
	if p.json {
		p.line(string(jsonWithRouting(m.Data, m.Subject, 0)))
		return
	}
	var r bridge.Rejection
	if err := json.Unmarshal(m.Data, &r); err != nil {
		p.line(fmt.Sprintf("%s  (unreadable rejection: %v)", m.Subject, err))
		return
	}
	p.line(strings.Join([]string{
		r.ReceivedAt.UTC().Format(time.RFC3339), m.Subject, r.Issuer, "jti=" + r.JTI,
		"REJECTED " + r.Code + ": " + r.Description,
	}, "  "))
}

// subjectSummary names the subject of a SET in a few characters: the
// email, phone number, iss_sub, opaque id, URI… of an RFC 9493 subject
// identifier (each member of an SSF complex subject, or the first alias)
// in sub_id, else the RFC 8417 sub claim, else the identifier in the event
// payload's "subject" member (the CAEP 1.0 legacy form, before SSF moved
// it to sub_id), formatted as sub_id is.
func subjectSummary(subID json.RawMessage, sub string, event json.RawMessage) string {
	if s := rawIdentifierSummary(subID); s != "" {
		return s
	}
	if sub != "" {
		return "sub=" + sub
	}
	var payload struct {
		Subject json.RawMessage `json:"subject"`
	}
	if len(event) > 0 && json.Unmarshal(event, &payload) == nil {
		return rawIdentifierSummary(payload.Subject)
	}
	return ""
}

// rawIdentifierSummary is identifierSummary of a JSON subject identifier,
// or "" when raw is not a JSON object.
func rawIdentifierSummary(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return identifierSummary(m)
}

func identifierSummary(m map[string]json.RawMessage) string {
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(m[k], &s)
		return s
	}
	switch str("format") {
	case "email":
		return str("email")
	case "phone_number":
		return str("phone_number")
	case "iss_sub":
		return str("sub") + " (iss " + str("iss") + ")"
	case "opaque":
		return "id=" + str("id")
	case "account", "uri":
		return str("uri")
	case "did":
		return str("url")
	case "aliases":
		var ids []map[string]json.RawMessage
		_ = json.Unmarshal(m["identifiers"], &ids)
		if len(ids) > 0 {
			return identifierSummary(ids[0])
		}
		return "aliases"
	case "":
		// SSF complex subject: {"user": {...}, "device": {...}, ...}.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			var inner map[string]json.RawMessage
			if json.Unmarshal(m[k], &inner) == nil {
				if s := identifierSummary(inner); s != "" {
					parts = append(parts, k+"="+s)
				}
			}
		}
		return strings.Join(parts, " ")
	default:
		return "format=" + str("format")
	}
}

// factKeys are payload members worth a glance, in print order.
var factKeys = []string{
	"reason", "change_type", "credential_type", "current_status", "current_level",
	"initiating_entity", "new-value", "principal",
}

// payloadFacts returns key=value for the string members of payload named
// in factKeys.
func payloadFacts(payload json.RawMessage) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return nil
	}
	var facts []string
	for _, k := range factKeys {
		var s string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
			facts = append(facts, k+"="+s)
		}
	}
	return facts
}
