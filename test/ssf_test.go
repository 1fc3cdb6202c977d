package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/setgate/setgate/test/transmitter"
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
