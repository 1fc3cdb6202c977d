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

// newSSFTx starts an SSF transmitter signing ES256 for audience whose
// management bearer token is mgmt-token; o adds the other options.
func newSSFTx(t testing.TB, o transmitter.SSFOptions) *transmitter.SSFTransmitter {
	t.Helper()
	o.Alg, o.Audience, o.Bearer = "ES256", audience, "mgmt-token"
	tx, err := transmitter.NewSSFTransmitter(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	return tx
}

// ssfOkta is okta, an issuer of tx whose SSF stream setgate manages, in a
// test's issuers file: newSSFOkta writes its token files, write the
// issuers file, start runs setgate with it.
type ssfOkta struct {
	tx       *transmitter.SSFTransmitter
	delivery string // "push" or "poll"; push adds setgate's push credential
	// description is stream.description; "" leaves it out.
	description string
	// extra is more stream keys, each line indented for the stream block.
	extra string

	is              *issuers
	others          string // the issuers before okta: "issuers:\n" alone, or with acme and globex
	mgmt, pushToken string // the token files: management bearer, push credential
}

// newSSFOkta writes okta's token files; withOthers keeps newIssuers'
// acme and globex beside okta.
func newSSFOkta(t testing.TB, tx *transmitter.SSFTransmitter, delivery string, withOthers bool) *ssfOkta {
	t.Helper()
	dir := t.TempDir()
	o := &ssfOkta{tx: tx, delivery: delivery, is: newIssuers(t), others: "issuers:\n",
		mgmt: filepath.Join(dir, "mgmt.token"), pushToken: filepath.Join(dir, "push.token")}
	writeFile(t, o.mgmt, "mgmt-token\n")
	writeFile(t, o.pushToken, "push-token\n")
	if withOthers {
		o.others = getFile(t, o.is.file)
	}
	o.is.file = filepath.Join(dir, "issuers.yaml")
	return o
}

// write writes the issuers file.
func (o *ssfOkta) write(t testing.TB) {
	t.Helper()
	keys := ""
	if o.description != "" {
		keys += fmt.Sprintf("      description: %s\n", o.description)
	}
	keys += fmt.Sprintf("      bearer_token_file: %s\n", o.mgmt)
	if o.delivery == "push" {
		keys += fmt.Sprintf("      authorization_header_file: %s\n", o.pushToken)
	}
	writeFile(t, o.is.file, o.others+fmt.Sprintf(`  - name: okta
    issuer: %s
    audience: [%s]
    discovery: true
    algorithms: [ES256]
    stream:
      manage: true
      delivery: %s
      events_requested: [%s]
%s%s`, o.tx.Issuer(), audience, o.delivery, transmitter.SessionRevoked, keys, o.extra))
}

// start writes the issuers file and starts setgate with it, its push
// receiver on a free address it knows as its public URL; nats nil runs
// the embedded server. The options returned start it again.
func (o *ssfOkta) start(t testing.TB, nats *natsServer) (*gatewayProc, gwOptions) {
	t.Helper()
	o.write(t)
	addr := freeAddr(t)
	opts := gwOptions{NATS: nats, Issuers: o.is, Env: map[string]string{"SETGATE_HTTP_ADDR": addr, "SETGATE_PUBLIC_URL": "http://" + addr}}
	return startGateway(t, opts), opts
}

// waitSSFVerified waits until issuer name's stream is healthy and its
// verification confirmed.
func waitSSFVerified(t testing.TB, g *gatewayProc, name string) {
	t.Helper()
	checkFor(t, waitLong, 50*time.Millisecond, func() error {
		st, err := ssfState(t, g, name)
		if err != nil {
			return err
		}
		if !st.Stream.Healthy || st.Stream.Detail.Verification != "confirmed" {
			return fmt.Errorf("stream not verified yet: %+v", st.Stream)
		}
		return nil
	})
}

// TestSSFManagedStream runs the whole Shared Signals flow against the
// binary, by push and by poll: discovery, stream creation with the right
// delivery, verification round trip, events stored, stream-updated
// disabled surfaced.
func TestSSFManagedStream(t *testing.T) {
	for _, delivery := range []string{"push", "poll"} {
		t.Run(delivery, func(t *testing.T) {
			t.Parallel()
			tx := newSSFTx(t, transmitter.SSFOptions{PollBearer: "mgmt-token"})
			okta := newSSFOkta(t, tx, delivery, false)
			okta.description = "setgate test"
			g, opts := okta.start(t, startNATS(t))
			addr := opts.Env["SETGATE_HTTP_ADDR"]

			// The stream is created with the right delivery and verified.
			waitSSFVerified(t, g, "okta")
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
	tx := newSSFTx(t, transmitter.SSFOptions{})
	tx.SetFaults(transmitter.SSFFaults{DiscoveryStatus: 503})
	g, _ := newSSFOkta(t, tx, "push", true).start(t, nil)

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
