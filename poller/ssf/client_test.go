package ssf_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
)

// TestClientStreamLifecycle walks one stream through every call.
func TestClientStreamLifecycle(t *testing.T) {
	ctx := context.Background()
	sx := newSSF(t, "")
	c := newClient(t, sx)

	list, err := c.GetStreams(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("GetStreams before create: want [], got %v, %v", list, err)
	}
	created, err := c.CreateStream(ctx, ssf.StreamConfig{
		Iss:             "ignored: transmitter-supplied",
		EventsRequested: []string{supported1},
		Description:     "setgate acme",
		Delivery:        ssf.Delivery{Method: ssf.MethodPush, EndpointURL: "https://setgate.example/events/acme", AuthorizationHeader: "Bearer " + pushToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.StreamID == "" || created.Iss != sx.Issuer() || len(created.Aud) == 0 {
		t.Fatalf("created: want stream_id, iss %q and aud, got %+v", sx.Issuer(), created)
	}
	if created.Delivery.Method != ssf.MethodPush || created.Delivery.EndpointURL != "https://setgate.example/events/acme" {
		t.Fatalf("created delivery: got %+v", created.Delivery)
	}
	if !slices.Equal(created.EventsDelivered, []string{supported1}) {
		t.Fatalf("events_delivered: want [%s], got %v", supported1, created.EventsDelivered)
	}

	got, err := c.GetStream(ctx, created.StreamID)
	if err != nil || got.StreamID != created.StreamID || got.Description != "setgate acme" {
		t.Fatalf("GetStream: got %+v, %v", got, err)
	}
	list, err = c.GetStreams(ctx)
	if err != nil || len(list) != 1 || list[0].StreamID != created.StreamID {
		t.Fatalf("GetStreams: want the stream, got %+v, %v", list, err)
	}

	updated, err := c.UpdateStream(ctx, ssf.StreamConfig{StreamID: created.StreamID, Description: "renamed"})
	if err != nil || updated.Description != "renamed" || !slices.Equal(updated.EventsRequested, []string{supported1}) {
		t.Fatalf("UpdateStream (partial): want description changed and events kept, got %+v, %v", updated, err)
	}

	st, err := c.Status(ctx, created.StreamID)
	if err != nil || st.Status != ssf.StatusEnabled {
		t.Fatalf("Status: want enabled, got %+v, %v", st, err)
	}
	if err := c.RequestVerification(ctx, created.StreamID, ""); err != nil {
		t.Fatalf("RequestVerification without state: %v", err)
	}

	if err := c.DeleteStream(ctx, created.StreamID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetStream(ctx, created.StreamID)
	if ssf.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("GetStream after delete: want 404, got %v", err)
	}
	calls := sx.Calls()
	for _, want := range []string{"POST /ssf/stream", "GET /ssf/stream", "PATCH /ssf/stream", "DELETE /ssf/stream", "GET /ssf/status", "POST /ssf/verify"} {
		if count(calls, want) == 0 {
			t.Errorf("want a %s call, got %v", want, calls)
		}
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name           string
		auth           poller.Auth
		faults         transmitter.SSFFaults
		call           func(c *ssf.Client, id string) error
		wantCode       int
		wantRetryAfter time.Duration
		wantErr        error
	}{
		{name: "wrong credential", auth: poller.BearerToken("wrong-token"),
			call: func(c *ssf.Client, _ string) error { _, err := c.GetStreams(ctx); return err }, wantCode: http.StatusUnauthorized},
		{name: "no credential", call: func(c *ssf.Client, _ string) error { _, err := c.GetStreams(ctx); return err }, wantCode: http.StatusUnauthorized},
		{name: "server error", auth: poller.BearerToken(mgmtToken), faults: transmitter.SSFFaults{ConfigStatus: http.StatusServiceUnavailable},
			call: func(c *ssf.Client, _ string) error { _, err := c.GetStreams(ctx); return err }, wantCode: http.StatusServiceUnavailable},
		{name: "verification rate limited", auth: poller.BearerToken(mgmtToken), faults: transmitter.SSFFaults{VerifyRetryAfter: 7 * time.Second},
			call:     func(c *ssf.Client, id string) error { return c.RequestVerification(ctx, id, "s") },
			wantCode: http.StatusTooManyRequests, wantRetryAfter: 7 * time.Second},
		{name: "unknown stream", auth: poller.BearerToken(mgmtToken),
			call: func(c *ssf.Client, _ string) error { _, err := c.Status(ctx, "nope"); return err }, wantCode: http.StatusNotFound},
		{name: "update without stream_id", auth: poller.BearerToken(mgmtToken),
			call: func(c *ssf.Client, _ string) error {
				_, err := c.UpdateStream(ctx, ssf.StreamConfig{Description: "x"})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sx := newSSF(t, "")
			id := sx.AddStream(transmitter.SSFDelivery{Method: transmitter.MethodPoll}, nil)
			sx.SetFaults(tt.faults)
			c := ssf.New(discover(t, sx), tt.auth, nil, nil)
			err := tt.call(c, id)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			if got := ssf.StatusCode(err); got != tt.wantCode {
				t.Fatalf("want status %d, got %d (%v)", tt.wantCode, got, err)
			}
			var he *ssf.HTTPError
			if errors.As(err, &he) && he.RetryAfter != tt.wantRetryAfter {
				t.Errorf("RetryAfter: want %v, got %v", tt.wantRetryAfter, he.RetryAfter)
			}
			if strings.Contains(err.Error(), mgmtToken) || strings.Contains(err.Error(), "wrong-token") {
				t.Errorf("the error shows a credential: %v", err)
			}
		})
	}
}

// TestClientChecksAnswers feeds the client answers a real transmitter
// might give, from a plain HTTP server.
func TestClientChecksAnswers(t *testing.T) {
	ctx := context.Background()
	const iss = "https://tr.example.com/"
	tests := []struct {
		name    string
		answer  string
		call    func(c *ssf.Client) error
		wantErr error // nil: success
	}{
		{name: "list as single object", answer: `{"stream_id":"s1","iss":"` + iss + `","aud":"r","delivery":{"method":"urn:ietf:rfc:8936","endpoint_url":"https://tr.example.com/poll"}}`,
			call: func(c *ssf.Client) error {
				l, err := c.GetStreams(ctx)
				if err == nil && (len(l) != 1 || l[0].StreamID != "s1") {
					return errors.New("want one stream s1")
				}
				return err
			}},
		{name: "aud as array", answer: `[{"stream_id":"s1","iss":"` + iss + `","aud":["a","b"]}]`,
			call: func(c *ssf.Client) error {
				l, err := c.GetStreams(ctx)
				if err == nil && len(l[0].Aud) != 2 {
					return errors.New("want two audiences")
				}
				return err
			}},
		{name: "read answered with a list", answer: `[{"stream_id":"s0","iss":"` + iss + `","aud":"r"},{"stream_id":"s1","iss":"` + iss + `","aud":"r"}]`,
			call: func(c *ssf.Client) error { _, err := c.GetStream(ctx, "s1"); return err }},
		{name: "iss mismatch on read", answer: `{"stream_id":"s1","iss":"https://evil.example/","aud":"r"}`,
			call: func(c *ssf.Client) error { _, err := c.GetStream(ctx, "s1"); return err }, wantErr: ssf.ErrIssuerMismatch},
		{name: "iss mismatch in a list is left out", answer: `[{"stream_id":"s1","iss":"https://evil.example/","aud":"r"},{"stream_id":"s2","iss":"` + iss + `","aud":"r"}]`,
			call: func(c *ssf.Client) error {
				l, err := c.GetStreams(ctx)
				if err == nil && (len(l) != 1 || l[0].StreamID != "s2") {
					return fmt.Errorf("want only stream s2, got %+v", l)
				}
				return err
			}},
		{name: "iss missing on create", answer: `{"stream_id":"s1","aud":"r"}`,
			call: func(c *ssf.Client) error { _, err := c.CreateStream(ctx, ssf.StreamConfig{}); return err }, wantErr: ssf.ErrIssuerMismatch},
		{name: "aud missing on update is a warning", answer: `{"stream_id":"s1","iss":"` + iss + `"}`,
			call: func(c *ssf.Client) error {
				s, err := c.UpdateStream(ctx, ssf.StreamConfig{StreamID: "s1"})
				if err == nil && len(s.Warnings()) != 1 {
					return fmt.Errorf("want one warning about aud, got %q", s.Warnings())
				}
				return err
			}},
		{name: "iss mismatch on update", answer: `{"stream_id":"s1","iss":"https://evil.example/","aud":"r"}`,
			call: func(c *ssf.Client) error { _, err := c.UpdateStream(ctx, ssf.StreamConfig{StreamID: "s1"}); return err }, wantErr: ssf.ErrIssuerMismatch},
		{name: "another stream on read", answer: `{"stream_id":"s2","iss":"` + iss + `","aud":"r"}`,
			call: func(c *ssf.Client) error { _, err := c.GetStream(ctx, "s1"); return err }, wantErr: ssf.ErrBadAnswer},
		{name: "not JSON", answer: `<html>`,
			call: func(c *ssf.Client) error { _, err := c.GetStreams(ctx); return err }, wantErr: ssf.ErrBadAnswer},
		{name: "unknown status", answer: `{"stream_id":"s1","status":"sleeping"}`,
			call: func(c *ssf.Client) error { _, err := c.Status(ctx, "s1"); return err }, wantErr: ssf.ErrBadAnswer},
		{name: "status of another stream", answer: `{"stream_id":"s2","status":"enabled"}`,
			call: func(c *ssf.Client) error { _, err := c.Status(ctx, "s1"); return err }, wantErr: ssf.ErrBadAnswer},
		{name: "status paused with reason", answer: `{"stream_id":"s1","status":"paused","reason":"maintenance"}`,
			call: func(c *ssf.Client) error {
				st, err := c.Status(ctx, "s1")
				if err == nil && (st.Status != ssf.StatusPaused || st.Reason != "maintenance") {
					return errors.New("want paused: maintenance")
				}
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodPost {
					w.WriteHeader(http.StatusCreated)
				}
				_, _ = w.Write([]byte(tt.answer))
			}))
			t.Cleanup(srv.Close)
			c := ssf.New(&ssf.Metadata{Issuer: iss, ConfigurationEndpoint: srv.URL + "/stream", StatusEndpoint: srv.URL + "/status"}, nil, nil, nil)
			err := tt.call(c)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("want %v, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestClientMissingEndpoint(t *testing.T) {
	c := ssf.New(&ssf.Metadata{Issuer: "https://tr.example.com/"}, nil, nil, nil)
	err := c.RequestVerification(context.Background(), "s1", "x")
	if !errors.Is(err, ssf.ErrNotSupported) || !strings.Contains(err.Error(), "verification_endpoint") {
		t.Fatalf("want ErrNotSupported naming verification_endpoint, got %v", err)
	}
}

func TestHTTPErrorBodyTruncated(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("line one\nline two " + strings.Repeat("x", 5000)))
	}))
	t.Cleanup(srv.Close)
	c := ssf.New(&ssf.Metadata{Issuer: "https://tr.example.com/", ConfigurationEndpoint: srv.URL}, poller.BearerToken(mgmtToken), nil, nil)
	_, err := c.GetStreams(context.Background())
	var he *ssf.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("want an HTTPError, got %v", err)
	}
	if len(he.Body) > 260 || strings.Contains(he.Body, "\n") || !strings.HasPrefix(he.Body, "line one line two") {
		t.Fatalf("want at most 256 bytes without control characters, got %d bytes: %q", len(he.Body), he.Body[:min(40, len(he.Body))])
	}
	if strings.Contains(err.Error(), mgmtToken) {
		t.Fatalf("the error shows the credential: %v", err)
	}
}
