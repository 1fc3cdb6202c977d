package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// foreignHost is a host on another origin than the SSF transmitter that
// records every request and answers with bytes of its own.
func foreignHost(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"FOREIGN-HOST-BYTES"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func originOf(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// ssfOriginGateway starts setgate with the acme and globex issuers plus
// okta, an SSF issuer managed with delivery and the extra stream keys.
func ssfOriginGateway(t *testing.T, tx *transmitter.SSFTransmitter, delivery, extra string) *gatewayProc {
	t.Helper()
	okta := newSSFOkta(t, tx, delivery, true)
	okta.extra = extra
	g, _ := okta.start(t, nil)
	return g
}

// TestSSFForeignOriginRefused: SSF metadata naming management endpoints
// on another host makes the issuer wait (503 to its pushes) with an error
// naming the endpoint and stream.allowed_origins; the other host receives
// nothing (neither the stream bearer token nor setgate's push
// credential), and none of its bytes appear on /issuers.
func TestSSFForeignOriginRefused(t *testing.T) {
	t.Parallel()
	tx := newSSFTx(t, transmitter.SSFOptions{})
	other, hits := foreignHost(t)
	tx.SetFaults(transmitter.SSFFaults{EndpointsAt: other.URL + "/"})
	g := ssfOriginGateway(t, tx, "push", "")

	if _, r := g.pushAcme(t); r.Status != 202 {
		t.Fatalf("acme: want 202, got %d %s", r.Status, r.Body)
	}
	_, tok, _ := tx.Transmitter().SET(transmitter.SessionRevoked, nil, "a@okta.example")
	if r := g.pushAs(t, "okta", "push-token", tok); r.Status != 503 {
		t.Fatalf("okta with a foreign configuration_endpoint: want 503, got %d %s", r.Status, r.Body)
	}
	body := getBody(t, "http://"+g.admin+"/issuers")
	for _, want := range []string{"configuration_endpoint", "stream.allowed_origins", originOf(t, other.URL)} {
		if !strings.Contains(body, want) {
			t.Errorf("/issuers does not name %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "FOREIGN-HOST-BYTES") {
		t.Errorf("/issuers shows the foreign host's answer:\n%s", body)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("want nothing sent to the foreign host, got %d requests", n)
	}
	if n := len(tx.Streams()); n != 0 {
		t.Errorf("want no stream created, got %d", n)
	}
}

// TestSSFAllowedOrigins: a transmitter whose JWKS and poll endpoint are on
// other origins than its issuer works once the operator lists them in
// stream.allowed_origins; without, its poll endpoint is never polled.
func TestSSFAllowedOrigins(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "not listed", true: "listed"}[allow], func(t *testing.T) {
			t.Parallel()
			tx := newSSFTx(t, transmitter.SSFOptions{PollBearer: "mgmt-token"})
			tx.SetFaults(transmitter.SSFFaults{DirectPoll: true})
			extra := ""
			if allow {
				extra = fmt.Sprintf("      allowed_origins: [%s]\n", originOf(t, tx.DirectPollURL()))
			}
			g := ssfOriginGateway(t, tx, "poll", extra)
			if !allow {
				checkFor(t, waitLong, 50*time.Millisecond, func() error {
					st, err := ssfState(t, g, "okta")
					if err != nil {
						return err
					}
					if st.Stream.Healthy || !strings.Contains(st.Stream.Detail.HealthReason, "poll endpoint_url") ||
						!strings.Contains(st.Stream.Detail.HealthReason, "stream.allowed_origins") {
						return fmt.Errorf("want the stream refused for its poll endpoint_url, got %+v", st.Stream)
					}
					return nil
				})
				if n := len(tx.PollServer().Requests()); n != 0 {
					t.Fatalf("want the foreign poll endpoint never polled, got %d requests", n)
				}
				return
			}
			waitSSFVerified(t, g, "okta")
		})
	}
}
