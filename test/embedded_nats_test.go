package test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/internal/transmitter"
)

// TestEmbeddedNATSClosed runs setgate serve with its embedded NATS server
// listening and plays the local attacker of README "Security": anonymous
// and wrong-password clients are refused; user consumer with the password
// file serve wrote reads the stream but cannot publish a forged envelope,
// take a real SET's Nats-Msg-Id, purge or delete the stream, or delete a
// message. The SET pushed afterwards is stored and read back verified.
func TestEmbeddedNATSClosed(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	g := startGateway(t, gwOptions{DataDir: dataDir})
	jti, resp := g.pushAcme(t)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("push: want 202, got %d", resp.Status)
	}

	u, err := url.Parse(g.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.User = nil
	listener := u.String()
	fi, err := os.Stat(filepath.Join(dataDir, "consumer.password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: want mode 0600, got %v, %v", fi, err)
	}
	if strings.Contains(g.log.String(), password) {
		t.Fatal("the consumer password is in setgate's log")
	}

	for _, tt := range []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo("consumer", "not-the-password-at-all")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(listener, append(tt.opts, nats.Timeout(waitShort))...)
			if err == nil {
				nc.Close()
				t.Fatal("want the connection refused")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("want %v, got %v", nats.ErrAuthorization, err)
			}
		})
	}

	nc, err := nats.Connect(listener, nats.UserInfo("consumer", password), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect as consumer: %v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	js, stream := secevents(ctx, t, nc) // as consumer
	before := stream.CachedInfo().State

	// The next SET's Nats-Msg-Id (README "Subjects and messages": SHA-256
	// of iss, jti and event type), as an attacker who can predict the jti
	// would write it.
	nextJTI, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "bob@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(g.acme.Issuer() + "\x00" + nextJTI + "\x00" + transmitter.SessionRevoked))
	fake := nats.NewMsg("secevent.caep.session-revoked.acme")
	fake.Header.Set(jetstream.MsgIDHeader, base64.RawURLEncoding.EncodeToString(sum[:18]))
	fake.Data = []byte(`{"issuer":"acme","jti":"` + nextJTI + `","event_type":"` + transmitter.SessionRevoked + `"}`)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	attempts := []struct {
		name string
		do   func() error
	}{
		{"publish a forged envelope", func() error {
			return nc.Publish("secevent.caep.session-revoked.acme", []byte(`{"issuer":"acme","jti":"forged"}`))
		}},
		{"publish a coming SET's Nats-Msg-Id", func() error { return nc.PublishMsg(fake) }},
		{"purge the stream", func() error {
			ctx, cancel := short()
			defer cancel()
			return stream.Purge(ctx)
		}},
		{"delete the stream", func() error {
			ctx, cancel := short()
			defer cancel()
			return js.DeleteStream(ctx, streamName)
		}},
		{"delete a message", func() error {
			ctx, cancel := short()
			defer cancel()
			return stream.DeleteMsg(ctx, before.LastSeq)
		}},
	}
	for _, a := range attempts {
		_ = a.do() // publishes return nil; the refused API calls time out
		if err := nc.Flush(); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		if last := nc.LastError(); !errors.Is(last, nats.ErrPermissionViolation) {
			t.Errorf("%s: want a permissions violation, got %v", a.name, last)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != before.Msgs || info.State.LastSeq != before.LastSeq {
		t.Fatalf("the consumer changed the stream: %d messages up to %d, before %d up to %d",
			info.State.Msgs, info.State.LastSeq, before.Msgs, before.LastSeq)
	}

	if resp := g.pushAs(t, "acme", g.acmeToken, set); resp.Status != http.StatusAccepted {
		t.Fatalf("the real SET: want 202, got %d", resp.Status)
	}
	got := byJTI(readStream(t, g.natsURL))
	if len(got[jti]) != 1 || len(got[nextJTI]) != 1 || len(got["forged"]) != 0 {
		t.Fatalf("want the two pushed SETs stored once each and nothing forged, got %d, %d, %d",
			len(got[jti]), len(got[nextJTI]), len(got["forged"]))
	}
}
