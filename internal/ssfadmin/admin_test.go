package ssfadmin

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

const secret = "ssf-secret-do-not-print"

// managerConfig is a poll stream's configuration with the bearer
// credential, as serve builds it for a stream block without push.
func managerConfig(spec config.Issuer, meta *ssf.Metadata, _ string, hc *http.Client, log *slog.Logger) (ssf.ManagerConfig, error) {
	return ssf.ManagerConfig{
		Issuer: spec.Verify.Issuer, Delivery: spec.Stream.Delivery, EventsRequested: spec.Stream.EventsRequested,
		Description: spec.Stream.Description, Client: ssf.New(meta, poller.BearerToken(spec.Stream.Bearer), hc, log), Logger: log,
	}, nil
}

func openAdmin(t *testing.T, tr *transmitter.SSFTransmitter, out *bytes.Buffer, asJSON bool) *Admin {
	t.Helper()
	spec := config.Issuer{
		Name:   "acme",
		Verify: verify.Config{Name: "acme", Issuer: tr.Issuer()},
		Stream: &config.Stream{Delivery: ssf.DeliveryPoll, EventsRequested: []string{transmitter.SessionRevoked}, Description: "under test", Bearer: secret},
	}
	a, err := Open(t.Context(), Options{Issuer: spec, ManagerConfig: managerConfig, Logger: slog.New(slog.DiscardHandler), Out: out, JSON: asJSON})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAdminLifecycle: create, get, change the status of, verify and
// delete a poll stream at a real SSF transmitter; the JSON of each
// action names the stream and never the credential.
func TestAdminLifecycle(t *testing.T) {
	tr, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: "https://setgate.example/", Bearer: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	var out bytes.Buffer
	a := openAdmin(t, tr, &out, true)
	if err := a.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	var created struct {
		Result string     `json:"result"`
		Stream StreamView `json:"stream"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil || created.Result != "created" || created.Stream.Delivery != ssf.DeliveryPoll {
		t.Fatalf("want a created poll stream, got %v %s", err, out.String())
	}
	id := created.Stream.StreamID

	steps := []struct {
		name string
		run  func() error
		want string
	}{
		{"get", func() error { return a.Get(t.Context()) }, `"stream_id": "` + id + `"`},
		{"status", func() error { return a.SetStatus(t.Context(), ssf.StatusPaused, "maintenance") }, `"status": "paused"`},
		{"verify", func() error { return a.Verify(t.Context(), "secevent.ssf.verification.acme") }, `"requested": true`},
		{"delete", func() error { return a.Delete(t.Context(), id, false) }, `"deleted": true`},
	}
	for _, st := range steps {
		out.Reset()
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !strings.Contains(out.String(), st.want) {
			t.Errorf("%s: want %s in\n%s", st.name, st.want, out.String())
		}
		if strings.Contains(out.String(), secret) {
			t.Errorf("%s printed the credential", st.name)
		}
	}
	out.Reset()
	if _, err := a.StreamID(t.Context()); err == nil || !strings.Contains(err.Error(), "no stream") {
		t.Errorf("after delete: want no stream, got %v", err)
	}
}

// TestAdminPushWithoutPublicURL: a push stream cannot be created or
// replaced without SETGATE_PUBLIC_URL, and the reason is the error.
func TestAdminPushWithoutPublicURL(t *testing.T) {
	tr, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Bearer: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	noURL := errors.New("stream.delivery push needs SETGATE_PUBLIC_URL")
	spec := config.Issuer{Name: "acme", Verify: verify.Config{Name: "acme", Issuer: tr.Issuer()}, Stream: &config.Stream{Delivery: ssf.DeliveryPush, Bearer: secret}}
	a, err := Open(t.Context(), Options{Issuer: spec, Logger: slog.New(slog.DiscardHandler), Out: &bytes.Buffer{},
		ManagerConfig: func(spec config.Issuer, meta *ssf.Metadata, u string, hc *http.Client, log *slog.Logger) (ssf.ManagerConfig, error) {
			cfg, _ := managerConfig(spec, meta, u, hc, log)
			return cfg, noURL
		}})
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func() error{"ensure": func() error { return a.Ensure(t.Context()) }, "replace": func() error { return a.Replace(t.Context()) }} {
		if err := run(); !errors.Is(err, noURL) {
			t.Errorf("%s: want %v, got %v", name, noURL, err)
		}
	}
	if len(tr.Streams()) != 0 {
		t.Errorf("want no stream created, got %d", len(tr.Streams()))
	}
}

func TestPickIssuer(t *testing.T) {
	specs := []config.Issuer{{Name: "a"}, {Name: "b", Stream: &config.Stream{}}, {Name: "c", Stream: &config.Stream{}}}
	tests := []struct{ name, want, wantErr string }{
		{"b", "b", ""},
		{"a", "", "has no stream block"},
		{"z", "", `no issuer "z" in the file (it has a, b, c)`},
		{"", "", "--issuer is required; issuers with a stream block: b, c"},
	}
	for _, tt := range tests {
		got, err := PickIssuer(specs, tt.name)
		if got.Name != tt.want || (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("PickIssuer(%q): want %q %q, got %q %v", tt.name, tt.want, tt.wantErr, got.Name, err)
		}
	}
}
