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
	"sync"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/gateway"
)

// gatewayApp is a started gateway: NATS bridge, verifiers, push and admin
// listeners.
type gatewayApp struct {
	s       settings
	log     *slog.Logger
	br      *bridge.Bridge
	gw      *gateway.Server
	issuers *liveIssuers
	metrics *gateway.Metrics
	vars    map[string]string

	cfgMu       sync.Mutex
	cfgState    gateway.ConfigState
	fingerprint [32]byte
	watched     []string // files of the configuration in force
	push        *http.Server
	admin       *http.Server
	pushLn      net.Listener
	adminLn     net.Listener
	pushURL     string
}

// serve runs the gateway until ctx is done, then drains. started, if not
// nil, is called once the listeners are up.
func serve(ctx context.Context, s settings, vars map[string]string, log *slog.Logger, started func(*gatewayApp)) error {
	app, err := startGateway(ctx, s, vars, log)
	if err != nil {
		return err
	}
	if started != nil {
		started(app)
	}
	return app.run(ctx)
}

func startGateway(ctx context.Context, s settings, vars map[string]string, log *slog.Logger) (app *gatewayApp, err error) {
	loaded, err := loadIssuers(s.IssuersFile, vars)
	if err != nil {
		return nil, err
	}
	app = &gatewayApp{s: s, log: log, vars: vars, metrics: gateway.NewMetrics()}
	defer func() {
		if err != nil {
			app.close(context.WithoutCancel(ctx))
		}
	}()

	app.br, err = bridge.Open(ctx, bridgeConfig(s), log)
	if err != nil {
		return nil, err
	}

	// One intake for push and poll: counted by the metrics, observed by
	// the SSF stream managers, verified and published by the bridge.
	observed := &observingIntake{in: app.metrics.Wrap(app.br)}
	intake := gateway.Intake(observed)
	app.gw = gateway.New(gateway.Config{
		Intake:        intake,
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
	if err = app.metrics.Register(gateway.NewStreamCollector(app.br.Monitor().Stats)); err != nil {
		return nil, err
	}
	app.issuers = newLiveIssuers(s, log, app.br, intake, app.gw)
	observed.live = app.issuers
	if err = app.issuers.apply(ctx, loaded.specs); err != nil {
		return nil, err
	}
	app.loaded(loaded)

	app.push = &http.Server{
		Handler:           app.gw.Handler(),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.ReadTimeout + s.PublishTimeout + 5*time.Second,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if s.TLSCertFile != "" {
		if app.push.TLSConfig, err = serverTLS(s); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	app.admin = &http.Server{
		Handler:           app.gw.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	if app.pushLn, err = net.Listen("tcp", s.HTTPAddr); err != nil {
		return nil, fmt.Errorf("push listener: %w", err)
	}
	if app.adminLn, err = net.Listen("tcp", s.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	app.pushURL = scheme + "://" + app.pushLn.Addr().String()
	log.Info("setgate started", "version", version, "push", app.pushLn.Addr().String(), "admin", app.adminLn.Addr().String(),
		"nats", app.br.ClientURL(), "stream", s.Stream, "issuers", len(loaded.specs), "config_hash", loaded.hash)
	return app, nil
}

// bridgeConfig maps the NATS settings onto the bridge's configuration.
func bridgeConfig(s settings) bridge.Config {
	return bridge.Config{
		URL: s.NATSURL, CredsFile: s.NATSCredsFile, NKeyFile: s.NATSNKeyFile,
		CAFile: s.NATSCAFile, CertFile: s.NATSCertFile, KeyFile: s.NATSKeyFile,
		EmbeddedAddr: s.EmbeddedNATSAddr, DataDir: s.DataDir,
		Stream: s.Stream, SubjectPrefix: s.SubjectPrefix, StreamManage: s.StreamManage,
		StreamReplicas: s.StreamReplicas, StreamMaxAge: s.StreamMaxAge, DuplicateWindow: s.DuplicateWindow,
		StreamMaxBytes: int64(s.StreamMaxBytes), StreamDiscard: bridge.Discard(s.StreamDiscard),
		PublishTimeout: s.PublishTimeout, Name: "setgate",
	}
}

func serverTLS(s settings) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.TLSClientCAFile != "" {
		pem, err := os.ReadFile(s.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client ca: no certificate in %s", s.TLSClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// run serves until ctx is done or a listener fails, then shuts down in
// reverse order of start within SETGATE_SHUTDOWN_TIMEOUT.
func (app *gatewayApp) run(ctx context.Context) error {
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watch := app.watchConfig(wctx) // watches set before the listeners serve
	go watch()

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
func (app *gatewayApp) close(ctx context.Context) error {
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
	for _, ln := range []net.Listener{app.pushLn, app.adminLn} {
		if ln != nil {
			_ = ln.Close() // already closed when its server ran
		}
	}
	if app.issuers != nil {
		// Poll loops finish their batch and acknowledge before NATS drains.
		if err := app.issuers.stopAll(ctx); err != nil {
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
