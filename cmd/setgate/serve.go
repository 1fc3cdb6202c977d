package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/issuers"
)

// App is one gateway: push and admin listeners (bound, not yet serving),
// the NATS bridge, the intake pipeline and the live issuer set. serve,
// demo, bench and the tests build it with [NewApp] from a settings value
// and a list of issuers, read its addresses, and run it with [App.Run].
type App struct {
	s       config.Settings
	log     *slog.Logger
	br      *bridge.Bridge
	intake  *intake.Pipeline
	gw      *gateway.Server
	issuers *issuers.Set
	metrics *gateway.Metrics

	// file is the issuers file the configuration came from (nil when the
	// issuers were given as values): Run watches it and reloads.
	file *issuersFile

	cfgMu    sync.Mutex
	cfgState gateway.ConfigState

	push    *http.Server
	admin   *http.Server
	pushLn  *gateway.Listener
	adminLn net.Listener
	pushURL string
}

// serve loads the issuers file, starts the gateway, and runs it until ctx
// is done, reloading the file when it changes; then it drains. started,
// if not nil, is called once the listeners are up.
func serve(ctx context.Context, s config.Settings, vars map[string]string, log *slog.Logger, started func(*App)) error {
	loaded, err := config.LoadIssuers(s.IssuersFile, vars)
	if err != nil {
		return err
	}
	app, err := NewApp(ctx, s, loaded.Issuers, log)
	if err != nil {
		return err
	}
	app.file = &issuersFile{vars: vars}
	app.loaded(loaded)
	if started != nil {
		started(app)
	}
	return app.Run(ctx)
}

// startCPUProfile profiles the whole process (gateway and, in embedded
// mode, the NATS server) into the file at path until stop is called:
// setgate serve --cpuprofile, to split the CPU a SET costs under load
// from a separate load generator (README "Performance").
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("serve: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("serve: --cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// NewApp starts the parts in order: listeners (bound, not yet serving),
// NATS bridge, issuers (each built as a reload builds it). When a part
// fails, the parts started before it are stopped in reverse order and the
// error names the part.
func NewApp(ctx context.Context, s config.Settings, specs []config.Issuer, log *slog.Logger) (*App, error) {
	if err := checkNATSFiles(s); err != nil {
		return nil, err
	}
	brCfg, err := bridgeConfig(s)
	if err != nil {
		return nil, err
	}
	app := &App{s: s, log: log, metrics: gateway.NewMetrics()}
	started := false
	defer func() {
		if !started {
			_ = app.close(context.WithoutCancel(ctx))
		}
	}()

	app.push = &http.Server{
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.ReadTimeout + s.PublishTimeout + 5*time.Second,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		// Accept errors are logged at warn by the gateway.Listener; what
		// net/http reports here (TLS handshakes, malformed requests) is
		// the clients' business.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if s.TLSCertFile != "" {
		if app.push.TLSConfig, err = serverTLS(s); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	app.admin = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	// The listeners are bound first, so that a port in use fails the
	// start before NATS or any issuer is touched. Only the push listener
	// is capped: the admin listener (probes, metrics) stays reachable when
	// the push side is full.
	ln, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("push listener on %s: %w", s.HTTPAddr, listenCause(err))
	}
	app.pushLn = gateway.NewListener(ln, gateway.ListenerConfig{MaxConnections: s.MaxConnections, Logger: log})
	warnFileLimit(s, log)
	if app.adminLn, err = net.Listen("tcp", s.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin listener on %s: %w", s.AdminAddr, listenCause(err))
	}

	if app.br, err = bridge.Open(ctx, brCfg, log); err != nil {
		return nil, err
	}
	// A SET that passes the body limit must fit the server's max payload.
	if err = s.CheckMaxBody(app.br.Conn().MaxPayload()); err != nil {
		return nil, err
	}

	// One intake pipeline for push and poll, built once: verify, publish
	// with the bridge (rejections logged and announced), then the metrics
	// observe; each issuer's SSF stream manager observes its own SETs
	// (package issuers).
	app.intake = intake.New(intake.Config{
		Publisher: app.br,
		Observers: []intake.Observer{app.metrics},
		Logger:    log,
	})
	app.gw = gateway.New(gateway.Config{
		Intake:        app.intake,
		Ready:         app.br.Ready,
		MaxBodyBytes:  s.MaxBodyBytes,
		MaxConcurrent: s.MaxConcurrent,
		Logger:        log,
		Metrics:       app.metrics,
		State:         app.state,
	})
	if err = app.metrics.Register(gateway.NewStateCollector(app.state)); err != nil {
		return nil, err
	}
	if err = app.metrics.Register(gateway.NewStreamCollector(streamStats(app.br.Monitor()))); err != nil {
		return nil, err
	}
	if err = app.metrics.Register(connectionsGauge(app.pushLn)); err != nil {
		return nil, err
	}
	app.issuers = issuers.New(issuers.Options{
		Settings: s, Logger: log, Bridge: app.br, Intake: app.intake,
		Register: app.gw.SetIssuers, Counters: app.metrics.Counters,
	})
	if err = app.issuers.Apply(ctx, specs); err != nil {
		return nil, err
	}
	app.push.Handler = app.gw.Handler()
	app.admin.Handler = app.gw.AdminHandler()
	app.pushURL = scheme + "://" + app.pushLn.Addr().String()
	started = true
	return app, nil
}

// PushURL is the push listener's base URL (http or https, the bound
// address); issuer name's endpoint is PushURL()+"/events/"+name.
func (app *App) PushURL() string { return app.pushURL }

// AdminURL is the admin listener's base URL (/healthz, /readyz,
// /metrics, /issuers).
func (app *App) AdminURL() string { return "http://" + app.adminLn.Addr().String() }

// NATSURL is where NATS clients connect: the embedded server's client
// URL, or SETGATE_NATS_URL; "" when the embedded server listens
// in-process only.
func (app *App) NATSURL() string { return app.br.ClientURL() }

// ConsumerPasswordFile is the file holding the embedded server's consumer
// password (user bridge.ConsumerUser); "" with an external NATS.
func (app *App) ConsumerPasswordFile() string { return app.br.ConsumerPasswordFile() }

// Settings are the settings the app was built with.
func (app *App) Settings() config.Settings { return app.s }

// Bridge is the app's NATS bridge (its connection and JetStream context).
func (app *App) Bridge() *bridge.Bridge { return app.br }

// Issuers is the app's live issuer set.
func (app *App) Issuers() *issuers.Set { return app.issuers }

// warnFileLimit warns when the push listener's cap leaves too few file
// descriptors for everything else (admin, NATS, outbound calls, files):
// the cap then no longer keeps the process from running out of them.
func warnFileLimit(s config.Settings, log *slog.Logger) {
	const reserve = 256
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < uint64(s.MaxConnections)+reserve {
		log.Warn("SETGATE_MAX_CONNECTIONS leaves too few file descriptors; lower it or raise the open-file limit",
			"max_connections", s.MaxConnections, "rlimit_nofile", lim.Cur, "reserve", reserve)
	}
}

// listenCause is the reason of a failed net.Listen without the
// "listen tcp <addr>:" the caller already says, e.g. "address already in
// use" or "permission denied".
func listenCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) && sc.Err != nil {
		err = sc.Err
	}
	return err
}

// streamStats reads the stream's fill level for the gateway's stream
// metrics from the bridge's monitor.
func streamStats(mon *bridge.StreamMonitor) gateway.StreamStatsFunc {
	return func(ctx context.Context) (gateway.StreamStats, error) {
		st, err := mon.Stats(ctx)
		if err != nil {
			return gateway.StreamStats{}, err
		}
		return gateway.StreamStats{
			Bytes: st.Bytes, Messages: st.Messages, MaxBytes: st.MaxBytes,
			FirstAge: st.FirstAge(), Discarded: st.Discarded,
		}, nil
	}
}

// connectionsGauge exports the push listener's open connections.
func connectionsGauge(ln *gateway.Listener) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "setgate_push_connections_open",
		Help: "Connections open on the push listener (capped by SETGATE_MAX_CONNECTIONS).",
	}, func() float64 { return float64(ln.Open()) })
}

// bridgeConfig maps the NATS settings onto the bridge's configuration,
// reading the NATS password or token file (config.Settings.NATSLogin).
func bridgeConfig(s config.Settings) (bridge.Config, error) {
	login, err := s.NATSLogin()
	if err != nil {
		return bridge.Config{}, err
	}
	return bridge.Config{
		URL: s.NATSURL, Login: login, CredsFile: s.NATSCredsFile, NKeyFile: s.NATSNKeyFile,
		CAFile: s.NATSCAFile, CertFile: s.NATSCertFile, KeyFile: s.NATSKeyFile,
		EmbeddedAddr: s.EmbeddedNATSAddr, DataDir: s.DataDir,
		ConsumerPasswordFile: s.EmbeddedNATSPass, EmbeddedSync: s.EmbeddedSync,
		Stream: s.Stream, SubjectPrefix: s.SubjectPrefix, StreamManage: s.StreamManage,
		StreamReplicas: s.StreamReplicas, StreamMaxAge: s.StreamMaxAge, DuplicateWindow: s.DuplicateWindow,
		StreamMaxBytes: int64(s.StreamMaxBytes), StreamDiscard: bridge.Discard(s.StreamDiscard),
		PublishTimeout: s.PublishTimeout, Name: "setgate",
	}, nil
}

// serverTLS builds the push listener's TLS configuration. The files must
// be regular files: the key at most config.MaxSecretFileBytes, certificates at
// most config.MaxCertFileBytes.
func serverTLS(s config.Settings) (*tls.Config, error) {
	certPEM, err := config.ReadFile(s.TLSCertFile, config.MaxCertFileBytes)
	if err != nil {
		return nil, fmt.Errorf("tls: SETGATE_TLS_CERT_FILE: %w", err)
	}
	keyPEM, err := config.ReadSecretFile(s.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: SETGATE_TLS_KEY_FILE: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: %s and %s: %w", s.TLSCertFile, s.TLSKeyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.TLSClientCAFile != "" {
		pem, err := config.ReadFile(s.TLSClientCAFile, config.MaxCertFileBytes)
		if err != nil {
			return nil, fmt.Errorf("tls: SETGATE_TLS_CLIENT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: SETGATE_TLS_CLIENT_CA_FILE: no certificate in %s", s.TLSClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// checkNATSFiles checks that the NATS credential and TLS files named in
// the settings are regular files of bounded size before the NATS client
// reads them (it would block on a FIFO): secrets at most
// config.MaxSecretFileBytes, certificates at most config.MaxCertFileBytes.
func checkNATSFiles(s config.Settings) error {
	for _, f := range []struct {
		name, path string
		limit      int64
	}{
		{"SETGATE_NATS_CREDS_FILE", s.NATSCredsFile, config.MaxSecretFileBytes},
		{"SETGATE_NATS_NKEY_FILE", s.NATSNKeyFile, config.MaxSecretFileBytes},
		{"SETGATE_NATS_CA_FILE", s.NATSCAFile, config.MaxCertFileBytes},
		{"SETGATE_NATS_CERT_FILE", s.NATSCertFile, config.MaxCertFileBytes},
		{"SETGATE_NATS_KEY_FILE", s.NATSKeyFile, config.MaxSecretFileBytes},
	} {
		if f.path == "" {
			continue
		}
		if _, err := config.ReadFile(f.path, f.limit); err != nil {
			return fmt.Errorf("nats: %s: %w", f.name, err)
		}
	}
	return nil
}

// Run serves until ctx is done or a listener fails, then shuts down in
// reverse order of start within SETGATE_SHUTDOWN_TIMEOUT. An app built
// by serve watches its issuers file meanwhile.
func (app *App) Run(ctx context.Context) error {
	app.cfgMu.Lock()
	hash := app.cfgState.Hash
	app.cfgMu.Unlock()
	app.log.Info("setgate started", "version", version, "push", app.pushLn.Addr().String(), "admin", app.adminLn.Addr().String(),
		"nats", app.br.ClientURL(), "stream", app.s.Stream, "issuers", app.issuers.Len(), "config_hash", hash,
		"max_connections", app.s.MaxConnections)
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	if app.file != nil {
		watch := app.watchConfig(wctx) // watches set before the listeners serve
		go watch()
	}

	errc := make(chan error, 2)
	go func() {
		var err error
		if app.push.TLSConfig != nil {
			err = app.push.ServeTLS(app.pushLn, "", "")
		} else {
			err = app.push.Serve(app.pushLn)
		}
		errc <- err
	}()
	go func() { errc <- app.admin.Serve(app.adminLn) }()

	var runErr error
	select {
	case <-ctx.Done():
		app.log.Info("shutting down", "timeout", app.s.ShutdownTimeout.String())
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("listener: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), app.s.ShutdownTimeout)
	defer cancel()
	if err := app.close(sctx); err != nil && runErr == nil {
		runErr = err
	}
	app.log.Info("stopped")
	return runErr
}

// close drains: readiness false, in-flight pushes finish, then NATS.
func (app *App) close(ctx context.Context) error {
	var errs []error
	if app.gw != nil {
		app.gw.Drain()
	}
	if app.push != nil {
		if err := app.push.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("push shutdown: %w", err))
		}
	}
	if app.admin != nil {
		if err := app.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin shutdown: %w", err))
		}
	}
	if app.pushLn != nil {
		_ = app.pushLn.Close() // already closed when its server ran
	}
	if app.adminLn != nil {
		_ = app.adminLn.Close()
	}
	if app.issuers != nil {
		// Poll loops finish their batch and acknowledge before NATS drains.
		if err := app.issuers.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if app.br != nil {
		if err := app.br.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
