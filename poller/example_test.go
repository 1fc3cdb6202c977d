package poller_test

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/poller"
)

// One poll loop per issuer with a poll block: the intake pipeline
// verifies and publishes with the bridge, the lease makes one replica
// poll, and the signal context stops it.
func ExampleLoop_Run() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.Default()
	br, err := bridge.Open(ctx, bridge.Config{URL: "nats://127.0.0.1:4222", StreamManage: true}, log)
	if err != nil {
		log.Error("nats", "err", err)
		return
	}
	defer br.Close(context.Background())
	// The pipeline is built once and shared with push.
	in := intake.New(intake.Config{Publisher: br, Logger: log})
	var src *intake.Source // the issuer's name, verifier and subject overrides, as for push

	lease, err := br.Lease(ctx, "poll.acme", bridge.NewHolderID(), 15*time.Second)
	if err != nil {
		log.Error("lease", "err", err)
		return
	}
	auth, err := poller.NewOAuth2(poller.OAuth2Config{
		TokenURL: "https://idp.acme.example/oauth/token", ClientID: "setgate", ClientSecret: "…",
		AuthStyle: poller.AuthBasic, Scopes: []string{"ssf.read"},
	}, poller.OAuth2Options{Logger: log})
	if err != nil {
		log.Error("oauth2", "err", err)
		return
	}
	loop, err := poller.New(poller.Config{
		Source:    src,
		Endpoint:  "https://idp.acme.example/ssf/poll/123",
		MaxEvents: 100,
		Auth:      auth,
		Lease:     lease,
		Logger:    log,
	}, in)
	if err != nil {
		log.Error("poller", "err", err)
		return
	}
	if err := loop.Run(ctx); err != nil { // returns after the final acknowledgement
		log.Warn("poll stopped", "err", err)
	}
}
