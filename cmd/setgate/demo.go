package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/issuers"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// demo runs the gateway with an embedded NATS server and two built-in
// transmitters that push a mix of CAEP and RISC events, some of them bad,
// and prints what lands on which subject and what is rejected with which
// code.
func demo(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stdout, "Run the gateway with embedded NATS and a built-in transmitter; events are printed.\nThe variables below apply too (defaults differ: loopback addresses, a temporary data dir, text logs at warn).")
	count := fs.Int("count", 0, "stop after this many pushes (0: run until interrupted)")
	interval := fs.Duration("interval", 700*time.Millisecond, "time between pushes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// serve reloads its issuers file on SIGHUP; the demo's issuers are
	// built in (no file, keys and tokens made at start), so there is
	// nothing to reload. The signal is caught from the start, so that a
	// reload attempt or a terminal hang-up does not end the demo.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	dir, err := os.MkdirTemp("", "setgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	acme, err := transmitter.New(transmitter.Options{Alg: "ES256", Audience: "https://setgate.demo/"})
	if err != nil {
		return err
	}
	defer acme.Close()
	globex, err := transmitter.New(transmitter.Options{Alg: "RS256", Audience: "https://setgate.demo/"})
	if err != nil {
		return err
	}
	defer globex.Close()
	rogue, err := transmitter.New(transmitter.Options{Alg: "ES256", Audience: "https://setgate.demo/"})
	if err != nil {
		return err
	}
	defer rogue.Close()

	initech, err := transmitter.New(transmitter.Options{Alg: "EdDSA", Audience: "https://setgate.demo/"})
	if err != nil {
		return err
	}
	defer initech.Close()
	acmeToken, globexToken, pollToken, ssfPushToken, ssfMgmtToken := randomToken(), randomToken(), randomToken(), randomToken(), randomToken()
	sgnl, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: "https://setgate.demo/", Bearer: ssfMgmtToken})
	if err != nil {
		return err
	}
	defer sgnl.Close()
	pollServer, err := transmitter.NewPollServer(transmitter.PollOptions{Bearer: pollToken, Hold: 2 * time.Second})
	if err != nil {
		return err
	}
	defer pollServer.Close()
	aud := []string{"https://setgate.demo/"}
	specs := []config.Issuer{
		{Name: "acme-idp", PushToken: acmeToken, Verify: verify.Config{Name: "acme-idp", Issuer: acme.Issuer(), Audience: aud,
			JWKSURI: acme.JWKSURL(), Algorithms: []string{"ES256"}}},
		{Name: "globex-risc", PushToken: globexToken, Verify: verify.Config{Name: "globex-risc", Issuer: globex.Issuer(), Audience: aud,
			JWKSURI: globex.JWKSURL(), Algorithms: []string{"RS256"}}},
		{Name: "initech-poll", Verify: verify.Config{Name: "initech-poll", Issuer: initech.Issuer(), Audience: aud,
			JWKSURI: initech.JWKSURL(), Algorithms: []string{"EdDSA"}},
			Poll: &config.Poll{Endpoint: pollServer.URL(), LongPollTimeout: 2 * time.Second, Bearer: pollToken}},
		{Name: "sgnl-ssf", Discovery: true, PushToken: ssfPushToken, // the credential the stream asks sgnl to send
			Verify: verify.Config{Name: "sgnl-ssf", Issuer: sgnl.Issuer(), Audience: aud, Algorithms: []string{"ES256"}},
			Stream: &config.Stream{Delivery: ssf.DeliveryPush, EventsRequested: []string{transmitter.SessionRevoked, transmitter.CredentialChange},
				Description: "setgate demo", PushAuthorization: ssfPushToken, Bearer: ssfMgmtToken,
				VerificationInterval: 15 * time.Second, VerificationTimeout: 2 * time.Minute}},
	}
	s, err := demoSettings(vars, filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	log := newLogger(s, stderr)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &printer{w: stdout}
	go ignoreHangups(ctx, hup, out, log)
	app, err := NewApp(ctx, s, specs, log)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	// Read events back from the stream (what is stored), not from a core
	// subscription (which would also see retried duplicates). From the
	// start: the stream is the demo's own, and the SSF stream's first
	// verification event may be stored before this consumer exists.
	nc := app.Bridge().Conn()
	cons, err := app.Bridge().JetStream().OrderedConsumer(ctx, s.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.SubjectPrefix + ".>"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	consuming, err := cons.Consume(func(m jetstream.Msg) { out.event(m) })
	if err != nil {
		return err
	}
	defer consuming.Stop()
	rejected, err := nc.Subscribe("setgate.rejected.>", func(m *nats.Msg) { out.rejection(m) })
	if err != nil {
		return err
	}
	defer rejected.Unsubscribe()

	natsAt := app.NATSURL()
	if natsAt == "" {
		natsAt = "in-process only (SETGATE_EMBEDDED_NATS_ADDR is empty)"
	}
	out.printf("setgate demo: push receiver %s, admin %s, NATS %s (stream %s)\n",
		app.PushURL(), app.AdminURL(), natsAt, s.Stream)
	out.printf("Two transmitters push CAEP and RISC events, setgate polls a third (RFC 8936) and sets up\nand verifies an OpenID Shared Signals stream with a fourth; some SETs are bad on purpose.\nCtrl-C stops.\n")
	if pw := app.ConsumerPasswordFile(); pw != "" {
		out.printf("Watch with any NATS client:  nats sub '%s.>' --server %s --user %s --password \"$(cat %s)\"\n",
			s.SubjectPrefix, app.NATSURL(), bridge.ConsumerUser, pw)
		out.printf("or with setgate:             setgate tail --server %s --password-file %s\n\n", app.NATSURL(), pw)
	} else {
		out.printf("\n")
	}

	script := demoScript(acme, globex, rogue, acmeToken, globexToken)
	script = append(script[:3], append(pollSteps(initech, pollServer), script[3:]...)...)
	script = append(script[:6], append([]demoAction{ssfStep(sgnl)}, script[6:]...)...)
	go watchStream(ctx, out, app, "sgnl-ssf")
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for i := 0; (*count == 0 || i < *count) && ctx.Err() == nil; i++ {
		script[i%len(script)].run(ctx, out, app.PushURL())
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	if ctx.Err() == nil {
		_ = nc.Flush()
		time.Sleep(300 * time.Millisecond) // let the last events print
		cancel()
	}
	out.printf("\nstopping…\n")
	return <-done
}

// ignoreHangups tells of each SIGHUP on hup, until ctx is done, that the
// demo has no issuers file to reload and runs on.
func ignoreHangups(ctx context.Context, hup <-chan os.Signal, out *printer, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: the demo has no issuers file to reload; running on")
			out.printf("SIGHUP: the demo's issuers are built in, there is no issuers file to reload; running on (Ctrl-C stops)\n")
		}
	}
}

// demoAction is one step of the demo's script.
type demoAction interface {
	run(ctx context.Context, out *printer, base string)
}

// demoStep is one push.
type demoStep struct {
	from   *transmitter.Transmitter
	issuer string
	bearer string
	what   string
	token  func() string
}

// pollStep queues one SET at the poll transmitter for setgate to fetch.
type pollStep func(out *printer)

func (p pollStep) run(_ context.Context, out *printer, _ string) { p(out) }

// pollSteps queue SETs at the poll transmitter: a good one and a bad one
// (wrong audience), which setgate reports back in setErrs.
func pollSteps(t *transmitter.Transmitter, ps *transmitter.PollServer) []demoAction {
	queue := func(what string, claims func() map[string]any) demoAction {
		return pollStep(func(out *printer) {
			c := claims()
			tok, err := t.Sign(c)
			if err != nil {
				panic(err) // in-memory signing with a fresh key cannot fail
			}
			ps.Enqueue(c["jti"].(string), tok)
			acked, errs := ps.Acked(), ps.Errors()
			out.printf("⇠ %-11s %-44s queued for poll (so far: %d acked, %d in setErrs)\n", "initech-poll", what, len(acked), len(errs))
		})
	}
	return []demoAction{
		queue("credential-change (judy, password)", func() map[string]any {
			return t.Claims(transmitter.CredentialChange, map[string]any{"credential_type": "password", "change_type": "update"}, "judy@initech.example")
		}),
		queue("session-revoked for another audience", func() map[string]any {
			c := t.Claims(transmitter.SessionRevoked, nil, "mallory@initech.example")
			c["aud"] = "https://someone-else.example/"
			return c
		}),
	}
}

func (d demoStep) run(ctx context.Context, out *printer, base string) {
	resp, err := d.from.Push(ctx, base+"/events/"+d.issuer, d.bearer, d.token())
	if err != nil {
		if ctx.Err() == nil {
			out.printf("→ %-11s %-44s error: %v\n", d.issuer, d.what, err)
		}
		return
	}
	verdict := fmt.Sprint(resp.Status)
	if resp.Status == 202 {
		verdict = "202 Accepted"
	} else {
		var e struct{ Err, Description string }
		_ = json.Unmarshal(resp.Body, &e)
		verdict = fmt.Sprintf("%d %s: %s", resp.Status, e.Err, e.Description)
	}
	out.printf("→ %-11s %-44s %s\n", d.issuer, d.what, verdict)
}

func demoScript(acme, globex, rogue *transmitter.Transmitter, acmeToken, globexToken string) []demoAction {
	signed := func(t *transmitter.Transmitter, c map[string]any) string {
		tok, err := t.Sign(c)
		if err != nil {
			panic(err) // in-memory signing with a fresh key cannot fail
		}
		return tok
	}
	event := func(t *transmitter.Transmitter, typ string, payload map[string]any, email string) func() string {
		return func() string { return signed(t, t.Claims(typ, payload, email)) }
	}
	var lastSET string
	revoked := event(acme, transmitter.SessionRevoked, map[string]any{
		"initiating_entity": "policy", "reason_admin": map[string]any{"en": "Landspeed policy violation"},
		"event_timestamp": time.Now().Unix(),
	}, "alice@acme.example")
	return []demoAction{
		demoStep{acme, "acme-idp", acmeToken, "session-revoked (alice)", func() string { lastSET = revoked(); return lastSET }},
		demoStep{acme, "acme-idp", acmeToken, "credential-change (bob, fido2)", event(acme, transmitter.CredentialChange, map[string]any{
			"credential_type": "fido2-roaming", "change_type": "create", "friendly_name": "Bob's security key",
		}, "bob@acme.example")},
		demoStep{globex, "globex-risc", globexToken, "account-disabled (carol, hijacking)", event(globex, transmitter.AccountDisabled, map[string]any{
			"reason": "hijacking",
		}, "carol@globex.example")},
		demoStep{acme, "acme-idp", acmeToken, "same session-revoked again (retry)", func() string { return lastSET }},
		demoStep{acme, "acme-idp", acmeToken, "SET for another audience", func() string {
			c := acme.Claims(transmitter.SessionRevoked, nil, "dave@acme.example")
			c["aud"] = "https://someone-else.example/"
			return signed(acme, c)
		}},
		demoStep{acme, "acme-idp", acmeToken, "device-compliance-change (erin)", event(acme, transmitter.DeviceCompliance, map[string]any{
			"previous_status": "compliant", "current_status": "not-compliant",
		}, "erin@acme.example")},
		demoStep{rogue, "acme-idp", acmeToken, "SET signed with a key acme never published", func() string {
			c := rogue.Claims(transmitter.SessionRevoked, nil, "frank@acme.example")
			c["iss"] = acme.Issuer()
			return signed(rogue, c)
		}},
		demoStep{acme, "acme-idp", acmeToken, "credential-change without change_type", event(acme, transmitter.CredentialChange, map[string]any{
			"credential_type": "password",
		}, "grace@acme.example")},
		demoStep{globex, "acme-idp", globexToken, "globex's credential on acme's endpoint", event(globex, transmitter.SessionRevoked, nil, "heidi@globex.example")},
		demoStep{acme, "acme-idp", "wrong-token", "wrong bearer token", event(acme, transmitter.SessionRevoked, nil, "ivan@acme.example")},
	}
}

// printer serialises the demo's output lines.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *printer) event(m jetstream.Msg) {
	var env struct {
		Issuer    string          `json:"issuer"`
		Delivery  string          `json:"delivery"`
		JTI       string          `json:"jti"`
		SubID     json.RawMessage `json:"sub_id"`
		EventType string          `json:"event_type"`
		Event     map[string]any  `json:"event"`
	}
	if err := json.Unmarshal(m.Data(), &env); err != nil {
		p.printf("  ✓ stored %s (unreadable envelope: %v)\n", m.Subject(), err)
		return
	}
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	var sub struct{ Email string }
	_ = json.Unmarshal(env.SubID, &sub)
	var facts []string
	for _, k := range []string{"reason", "change_type", "credential_type", "current_status", "initiating_entity", "state", "status"} {
		if v, ok := env.Event[k]; ok {
			facts = append(facts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	p.printf("  ✓ stored #%-3d %-46s %s %s [%s]\n", seq, m.Subject(), sub.Email, strings.Join(facts, " "), env.Delivery)
}

func (p *printer) rejection(m *nats.Msg) {
	var r struct{ Code, Description, Delivery string }
	_ = json.Unmarshal(m.Data, &r)
	p.printf("  ✗ announced on %-40s %s [%s]\n", m.Subject, r.Code, r.Delivery)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ssfStep has the SSF transmitter send an event down the stream setgate
// created at it.
func ssfStep(t *transmitter.SSFTransmitter) demoAction {
	return pollStep(func(out *printer) {
		err := t.Push(context.Background(), transmitter.CredentialChange,
			map[string]any{"credential_type": "fido2-platform", "change_type": "revoke"}, "kim@sgnl.example")
		verdict := "delivered on its SSF stream"
		if err != nil {
			verdict = "not delivered: " + err.Error()
		}
		out.printf("⇢ %-11s %-44s %s\n", "sgnl-ssf", "credential-change (kim, fido2)", verdict)
	})
}

// watchStream prints how the SSF stream of issuer name is set up and
// verified, as it happens.
func watchStream(ctx context.Context, out *printer, app *App, name string) {
	li := app.Issuers().Get(name)
	if li == nil {
		return
	}
	if _, ok := li.Stream(); !ok {
		return
	}
	var said, confirmed string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, _ := li.Stream()
		if st.StreamID != "" && said == "" {
			said = st.StreamID
			out.printf("⇄ %-11s SSF stream %s set up at the transmitter: %s delivery to %s\n", name, st.StreamID, st.Delivery, issuers.StreamPushEndpoint(app.Settings().PublicURL, name))
		}
		if c := st.VerificationConfirmed.Format(time.RFC3339Nano); !st.VerificationConfirmed.IsZero() && c != confirmed {
			confirmed = c
			out.printf("⇄ %-11s SSF verification confirmed (stream healthy: %v)\n", name, st.Healthy)
		}
	}
}

// demoSettings are the settings of vars with the demo's own defaults
// where vars set nothing (loopback addresses, free ports, text logs at
// warn, a data directory of its own), always its own embedded NATS, and a public
// URL the SSF transmitter can push to.
func demoSettings(vars map[string]string, dataDir string) (config.Settings, error) {
	s, err := config.Load(vars)
	if err != nil {
		return s, err
	}
	unset := func(name string) bool { _, ok := vars[config.EnvPrefix+name]; return !ok }
	for _, d := range []struct {
		name  string
		field *string
		value string
	}{
		{"HTTP_ADDR", &s.HTTPAddr, freeOr("127.0.0.1:8080")},
		{"ADMIN_ADDR", &s.AdminAddr, freeOr("127.0.0.1:9090")},
		{"EMBEDDED_NATS_ADDR", &s.EmbeddedNATSAddr, freeOr("127.0.0.1:4222")},
		{"LOG_LEVEL", &s.LogLevel, "warn"},
		{"LOG_FORMAT", &s.LogFormat, "text"},
		{"DATA_DIR", &s.DataDir, dataDir},
	} {
		if unset(d.name) {
			*d.field = d.value
		}
	}
	s.IssuersFile = ""
	s.NATSURL = "" // the demo always runs its own NATS
	// The SSF transmitter pushes to the public URL, so the push address
	// must be known before the gateway starts.
	if s.HTTPAddr, err = concreteAddr(s.HTTPAddr); err != nil {
		return s, err
	}
	if s.PublicURL == "" {
		s.PublicURL = "http://" + s.HTTPAddr
	}
	return s, s.Validate()
}

// concreteAddr returns addr with a real port: a port 0 is replaced by one
// free now, and an empty or wildcard host by the loopback address.
func concreteAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("SETGATE_HTTP_ADDR=%q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if port != "0" {
		return net.JoinHostPort(host, port), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// freeOr returns addr when it can be listened on now, else a random
// loopback port, so the demo runs beside another setgate or NATS.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}
