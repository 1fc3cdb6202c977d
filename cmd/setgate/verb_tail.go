package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/consumer"
	"github.com/setgate/setgate/internal/present"
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
		"NATS_URL", "NATS_CREDS_FILE", "NATS_NKEY_FILE", "NATS_USER", "NATS_PASSWORD_FILE", "NATS_TOKEN_FILE", "NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE",
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
	opts, err := tailNATSOptions(s, stderr)
	if err != nil {
		return err
	}
	refused := &setupRefusal{stderr: stderr}
	opts = append(opts, nats.ErrorHandler(refused.handle))
	nc, err := consumer.Connect(consumer.Options{Settings: s, URL: *server, PasswordFile: *passwordFile, Options: opts})
	if err != nil {
		return fmt.Errorf("tail: %w", err)
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
	var cons jetstream.Consumer
	err = refused.do(ctx, func(ctx context.Context) (err error) {
		cons, err = js.OrderedConsumer(ctx, *stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject},
			DeliverPolicy:  policy,
		})
		return err
	})
	if errors.Is(err, nats.ErrPermissionViolation) {
		// Refused: the embedded server's consumer user may create
		// consumers on setgate's stream only, so a stream that does not
		// exist is refused rather than reported missing. The stream
		// names, which it may list, tell the two apart.
		if listed, lerr := streamListed(ctx, refused, js, *stream); lerr == nil && !listed {
			err = jetstream.ErrStreamNotFound
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("tail: stream %q not found at %s (is setgate serve running?)", *stream, bridge.RedactURL(nc.ConnectedUrl()))
		}
		if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) && !errors.Is(err, nats.ErrPermissionViolation) {
			return fmt.Errorf("tail: consumer on %s for %s: %w (%v)", *stream, subject, err, last)
		}
		return fmt.Errorf("tail: consumer on %s for %s: %w", *stream, subject, err)
	}
	out := present.NewTail(stdout, *asJSON)
	consuming, err := cons.Consume(func(m jetstream.Msg) {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		out.Event(m.Subject(), seq, m.Data())
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
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
		sub, err := nc.Subscribe(rejectedWildcard, func(m *nats.Msg) { out.Rejection(m.Subject, m.Data) })
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
	fmt.Fprintf(stderr, "setgate tail: following %s in stream %s%s at %s\n", subject, *stream, also, bridge.RedactURL(nc.ConnectedUrl()))
	<-ctx.Done()
	return nil
}

// setupRefusal ends tail's setup requests at once when the server refuses
// one. A JetStream API request whose subject the connection may not
// publish to is never answered: the server only sends an asynchronous
// permissions violation, and the request would wait for the JetStream API
// timeout (5 s) before it failed.
type setupRefusal struct {
	stderr io.Writer

	mu     sync.Mutex
	cancel context.CancelCauseFunc // of the requests running now; nil: none
}

// handle is the connection's asynchronous error handler: a permissions
// violation during setup cancels the setup's requests with it as the
// cause; every other error (and a violation after setup) is printed.
func (r *setupRefusal) handle(_ *nats.Conn, _ *nats.Subscription, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil && errors.Is(err, nats.ErrPermissionViolation) {
		r.cancel(err)
		return
	}
	fmt.Fprintln(r.stderr, "setgate tail:", err)
}

// do runs the requests of f with a context that a refusal cancels, and
// returns f's error, or the permissions violation when that ended f.
func (r *setupRefusal) do(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	err := f(ctx)
	r.mu.Lock()
	r.cancel = nil
	r.mu.Unlock()
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, nats.ErrPermissionViolation) {
		err = cause
	}
	cancel(nil)
	return err
}

// streamListed reports whether the stream name is among the account's
// streams ($JS.API.STREAM.NAMES, which the embedded server's consumer user
// may ask for).
func streamListed(ctx context.Context, r *setupRefusal, js jetstream.JetStream, name string) (bool, error) {
	listed := false
	err := r.do(ctx, func(ctx context.Context) error {
		names := js.StreamNames(ctx)
		for n := range names.Name() {
			listed = listed || n == name
		}
		return names.Err()
	})
	return listed, err
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
			fmt.Fprintln(stderr, "setgate tail: reconnected to", bridge.RedactURL(nc.ConnectedUrl()))
		}),
	}
	cfg, err := bridgeConfig(s)
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	auth, err := cfg.AuthOptions()
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	opts = append(opts, auth...)
	return opts, nil
}
