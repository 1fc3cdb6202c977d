package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// freeAddr returns a loopback address nobody listens on right now (the
// push receiver must know its public URL before it starts).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ssfIssuerState is the part of /issuers an SSF test reads.
type ssfIssuerState struct {
	Name   string
	Stream *struct {
		Healthy bool
		Status  string
		Detail  struct {
			StreamID     string `json:"stream_id"`
			Delivery     string `json:"delivery"`
			Verification string `json:"verification"`
			HealthReason string `json:"health_reason"`
		}
	}
}

func ssfState(t testing.TB, g *gatewayProc, name string) (ssfIssuerState, error) {
	var st struct{ Issuers []ssfIssuerState }
	if err := json.Unmarshal([]byte(getBody(t, "http://"+g.admin+"/issuers")), &st); err != nil {
		return ssfIssuerState{}, err
	}
	for _, is := range st.Issuers {
		if is.Name == name && is.Stream != nil {
			return is, nil
		}
	}
	return ssfIssuerState{}, fmt.Errorf("issuer %s has no stream state", name)
}

// TestSSFManagedStream runs the whole Shared Signals flow against the
// binary, by push and by poll: discovery, stream creation with the right
// delivery, verification round trip, events stored, stream-updated
// disabled surfaced.
func TestSSFManagedStream(t *testing.T) {
	for _, delivery := range []string{"push", "poll"} {
		t.Run(delivery, func(t *testing.T) {
			t.Parallel()
			tx, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: audience, Bearer: "mgmt-token", PollBearer: "mgmt-token"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tx.Close() })
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "mgmt.token"), "mgmt-token\n")
			writeFile(t, filepath.Join(dir, "push.token"), "push-token\n")
			extra := ""
			if delivery == "push" {
				extra = fmt.Sprintf("      authorization_header_file: %s\n", filepath.Join(dir, "push.token"))
			}
			is := newIssuers(t)
			is.file = filepath.Join(dir, "issuers.yaml")
			writeFile(t, is.file, fmt.Sprintf(`issuers:
  - name: okta
    issuer: %s
    audience: [%s]
    discovery: true
    algorithms: [ES256]
    stream:
      manage: true
      delivery: %s
      events_requested: [%s]
      description: setgate test
      bearer_token_file: %s
%s`, tx.Issuer(), audience, delivery, transmitter.SessionRevoked, filepath.Join(dir, "mgmt.token"), extra))
			addr := freeAddr(t)
			g := startGateway(t, gwOptions{NATS: startNATS(t), Issuers: is, Env: map[string]string{
				"SETGATE_HTTP_ADDR":  addr,
				"SETGATE_PUBLIC_URL": "http://" + addr,
			}})

			// The stream is created with the right delivery and verified.
			checkFor(t, waitLong, 50*time.Millisecond, func() error {
				st, err := ssfState(t, g, "okta")
				if err != nil {
					return err
				}
				if !st.Stream.Healthy || st.Stream.Detail.Verification != "confirmed" {
					return fmt.Errorf("stream not verified yet: %+v", st.Stream)
				}
				return nil
			})
			streams := tx.Streams()
			if len(streams) != 1 {
				t.Fatalf("want one stream at the transmitter, got %d", len(streams))
			}
			s := streams[0]
			wantMethod := map[string]string{"push": transmitter.MethodPush, "poll": transmitter.MethodPoll}[delivery]
			if s.Delivery.Method != wantMethod {
				t.Fatalf("want delivery %s, got %+v", wantMethod, s.Delivery)
			}
			if delivery == "push" && (s.Delivery.EndpointURL != "http://"+addr+"/events/okta" || s.Delivery.AuthorizationHeader != "Bearer push-token") {
				t.Fatalf("push delivery: want endpoint and authorization of setgate, got %+v", s.Delivery)
			}

			// An event flows into the stream.
			if err := tx.Push(context.Background(), transmitter.SessionRevoked, nil, "alice@okta.example"); err != nil {
				t.Fatal(err)
			}
			checkFor(t, waitLong, 50*time.Millisecond, func() error {
				for _, m := range readStream(t, g.natsURL) {
					if m.Subject == "secevent.caep.session-revoked.okta" {
						return nil
					}
				}
				return fmt.Errorf("session-revoked not stored yet")
			})

			// stream-updated disabled is surfaced, not mistaken for quiet.
			if err := tx.SendStreamUpdated(context.Background(), "disabled", "maintenance"); err != nil {
				t.Fatal(err)
			}
			checkFor(t, waitLong, 50*time.Millisecond, func() error {
				st, err := ssfState(t, g, "okta")
				if err != nil {
					return err
				}
				if st.Stream.Healthy || st.Stream.Status != "disabled" {
					return fmt.Errorf("disabled stream not surfaced: %+v", st.Stream)
				}
				return nil
			})
			if got := value(scrape(t, g), "setgate_ssf_stream_healthy", map[string]string{"issuer": "okta"}); got != 0 {
				t.Fatalf("setgate_ssf_stream_healthy: want 0, got %v", got)
			}
		})
	}
}

// TestSSFDiscoveryDownAtStart: a transmitter whose metadata cannot be read
// does not stop setgate; its pushes get 503 until discovery succeeds, then
// its stream is set up and verified.
func TestSSFDiscoveryDownAtStart(t *testing.T) {
	tx, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: audience, Bearer: "mgmt-token"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	tx.SetFaults(transmitter.SSFFaults{DiscoveryStatus: 503})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mgmt.token"), "mgmt-token\n")
	writeFile(t, filepath.Join(dir, "push.token"), "push-token\n")
	is := newIssuers(t)
	orig := getFile(t, is.file)
	is.file = filepath.Join(dir, "issuers.yaml")
	writeFile(t, is.file, orig+fmt.Sprintf(`  - name: okta
    issuer: %s
    audience: [%s]
    discovery: true
    algorithms: [ES256]
    stream:
      manage: true
      delivery: push
      events_requested: [%s]
      authorization_header_file: %s
      bearer_token_file: %s
`, tx.Issuer(), audience, transmitter.SessionRevoked, filepath.Join(dir, "push.token"), filepath.Join(dir, "mgmt.token")))
	addr := freeAddr(t)
	g := startGateway(t, gwOptions{Issuers: is, Env: map[string]string{"SETGATE_HTTP_ADDR": addr, "SETGATE_PUBLIC_URL": "http://" + addr}})

	// The other issuers serve; okta answers 503 (retry later), not 4xx.
	if _, r := g.pushAcme(t); r.Status != 202 {
		t.Fatalf("acme: want 202, got %d %s", r.Status, r.Body)
	}
	_, tok, _ := tx.Transmitter().SET(transmitter.SessionRevoked, nil, "a@okta.example")
	if r := g.pushAs(t, "okta", "push-token", tok); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("okta while undiscovered: want 503 with Retry-After, got %d %s", r.Status, r.Body)
	}
	st := getBody(t, "http://"+g.admin+"/issuers")
	if !strings.Contains(st, `"discovery_error"`) {
		t.Fatalf("/issuers does not show the discovery error:\n%s", st)
	}

	tx.SetFaults(transmitter.SSFFaults{})
	checkFor(t, waitLong, 100*time.Millisecond, func() error {
		st, err := ssfState(t, g, "okta")
		if err != nil {
			return err
		}
		if !st.Stream.Healthy {
			return fmt.Errorf("stream not healthy yet: %+v", st.Stream)
		}
		return nil
	})
}

func getFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
