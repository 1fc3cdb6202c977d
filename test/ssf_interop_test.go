package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

// ssfStreamDetail is the part of /issuers' stream detail the interop
// tests read beyond ssfIssuerState.
type ssfStreamDetail struct {
	StreamID     string   `json:"stream_id"`
	Found        string   `json:"found"`
	Verification string   `json:"verification"`
	Warnings     []string `json:"warnings"`
	Healthy      bool     `json:"healthy"`
	HealthReason string   `json:"health_reason"`
}

func ssfDetail(t testing.TB, g *gatewayProc, name string) (ssfStreamDetail, error) {
	var st struct {
		Issuers []struct {
			Name   string
			Stream *struct{ Detail ssfStreamDetail }
		}
	}
	if err := json.Unmarshal([]byte(getBody(t, "http://"+g.admin+"/issuers")), &st); err != nil {
		return ssfStreamDetail{}, err
	}
	for _, is := range st.Issuers {
		if is.Name == name && is.Stream != nil {
			return is.Stream.Detail, nil
		}
	}
	return ssfStreamDetail{}, fmt.Errorf("issuer %s has no stream state", name)
}

// TestSSFTransmitterDeviations runs the managed push and poll streams
// against each deviation of transmitters that exist (README "Adding an SSF
// transmitter"): the stream is set up and verified, an event is stored
// once, and after a restart with another description the same stream is
// found without listing, updated, and delivers again.
func TestSSFTransmitterDeviations(t *testing.T) {
	tests := []struct {
		name   string
		faults transmitter.SSFFaults
		// hold is the transmitter's poll hold, with long_poll_timeout 1s;
		// 0: the default (short) hold.
		hold time.Duration
	}{
		{name: "list refused", faults: transmitter.SSFFaults{ListRefused: true}},
		{name: "no aud", faults: transmitter.SSFFaults{NoAud: true}},
		{name: "stream_id in query only", faults: transmitter.SSFFaults{StreamIDQueryOnly: true}},
		{name: "per-stream poll token", faults: transmitter.SSFFaults{PerStreamPollToken: true}},
		// Longer than long_poll_timeout + 10 s, the request timeout before.
		{name: "long hold", hold: 12 * time.Second},
	}
	for _, tt := range tests {
		for _, delivery := range []string{"push", "poll"} {
			if tt.hold > 0 && delivery == "push" {
				continue
			}
			t.Run(tt.name+"/"+delivery, func(t *testing.T) {
				t.Parallel()
				tx := newSSFTx(t, transmitter.SSFOptions{PollBearer: "mgmt-token", PollHold: tt.hold})
				tx.SetFaults(tt.faults)
				okta := newSSFOkta(t, tx, delivery, false)
				if tt.hold > 0 {
					okta.extra = fmt.Sprintf("    poll:\n      long_poll_timeout: 1s\n      bearer_token_file: %s\n", okta.mgmt)
				}
				okta.description = "setgate test"
				nats := startNATS(t)
				g, opts := okta.start(t, nats)

				var first ssfStreamDetail
				checkFor(t, waitLong, 50*time.Millisecond, func() error {
					d, err := ssfDetail(t, g, "okta")
					if err != nil {
						return err
					}
					if !d.Healthy || d.Verification != "confirmed" {
						return fmt.Errorf("stream not verified yet: %+v", d)
					}
					first = d
					return nil
				})
				if first.Found != "created" || len(tx.Streams()) != 1 {
					t.Fatalf("want one stream created, got %+v and %d streams", first, len(tx.Streams()))
				}
				if tt.faults.NoAud && len(first.Warnings) != 1 {
					t.Fatalf("want the missing aud as a warning, got %q", first.Warnings)
				}
				pushOnce(t, g, tx, "alice@okta.example")

				if tt.hold > 0 {
					// At least one whole idle hold passes (the poll server
					// answers a request only after it), and none failed.
					n := len(tx.PollServer().Requests())
					checkFor(t, waitLong, 100*time.Millisecond, func() error {
						if done := answered(tx.PollServer().Requests()[n:]); done < 1 {
							return fmt.Errorf("no idle poll answered yet")
						}
						return nil
					})
					for _, rec := range g.log.records() {
						if rec["msg"] == "poll failed" {
							t.Fatalf("a poll held %v failed: %v", tt.hold, rec)
						}
					}
					return
				}

				// Restart with another description: the remembered stream is
				// used (and updated), even where the transmitter lists none.
				g.stop()
				okta.description = "setgate test, renamed"
				okta.write(t)
				g = startGateway(t, opts)
				checkFor(t, waitLong, 50*time.Millisecond, func() error {
					d, err := ssfDetail(t, g, "okta")
					if err != nil {
						return err
					}
					if d.StreamID != first.StreamID || d.Found != "remembered" || !d.Healthy {
						return fmt.Errorf("want stream %s remembered and healthy, got %+v", first.StreamID, d)
					}
					return nil
				})
				if s := tx.Streams(); len(s) != 1 || s[0].Description != "setgate test, renamed" {
					t.Fatalf("want the one stream updated, got %+v", s)
				}
				pushOnce(t, g, tx, "bob@okta.example")
			})
		}
	}
}

// pushOnce has the transmitter send one session-revoked event about email
// and waits until it is stored, then checks every jti is stored once.
func pushOnce(t *testing.T, g *gatewayProc, tx *transmitter.SSFTransmitter, email string) {
	t.Helper()
	before := len(tx.Delivered())
	if err := tx.Push(context.Background(), transmitter.SessionRevoked, nil, email); err != nil {
		t.Fatal(err)
	}
	var sent transmitter.SSFDelivered // verification events may be delivered meanwhile
	for _, d := range tx.Delivered()[before:] {
		if d.EventType == transmitter.SessionRevoked {
			sent = d
		}
	}
	if sent.JTI == "" || (sent.Method == transmitter.MethodPush && sent.Status != 202) {
		t.Fatalf("want session-revoked delivered (push: 202), got %+v", sent)
	}
	checkFor(t, waitLong, 50*time.Millisecond, func() error {
		if len(byJTI(readStream(t, g.natsURL))[sent.JTI]) == 0 {
			return fmt.Errorf("session-revoked %s not stored yet", sent.JTI)
		}
		return nil
	})
	for j, msgs := range byJTI(readStream(t, g.natsURL)) {
		if len(msgs) != 1 {
			t.Fatalf("jti %s stored %d times", j, len(msgs))
		}
	}
}

// answered counts the requests the poll server has answered.
func answered(reqs []transmitter.PollRequest) int {
	n := 0
	for _, r := range reqs {
		if r.Status == 200 {
			n++
		}
	}
	return n
}

// TestSSFRefusesOtherStreamAndIssuer: a verification event naming another
// stream is refused with invalid_request (push: 400; poll: setErrs) and
// leaves the verification pending; a transmitter whose stream
// configurations name another iss gets one stream created, never used.
func TestSSFRefusesOtherStreamAndIssuer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults transmitter.SSFFaults
	}{
		{name: "verification of another stream", faults: transmitter.SSFFaults{VerifyOtherStream: true}},
		{name: "another iss", faults: transmitter.SSFFaults{WrongIss: "https://evil.example/"}},
	} {
		for _, delivery := range []string{"push", "poll"} {
			t.Run(tt.name+"/"+delivery, func(t *testing.T) {
				t.Parallel()
				tx := newSSFTx(t, transmitter.SSFOptions{PollBearer: "mgmt-token"})
				tx.SetFaults(tt.faults)
				g, _ := newSSFOkta(t, tx, delivery, false).start(t, startNATS(t))

				if tt.faults.WrongIss != "" {
					checkFor(t, waitLong, 50*time.Millisecond, func() error {
						d, err := ssfDetail(t, g, "okta")
						if err != nil {
							return err
						}
						if !strings.Contains(d.HealthReason, "issuer mismatch") {
							return fmt.Errorf("want the mismatch shown, got %+v", d)
						}
						if d.StreamID != "" || d.Healthy {
							t.Fatalf("the stream of another issuer is in use: %+v", d)
						}
						return nil
					})
					if n := len(tx.Streams()); n != 1 {
						t.Fatalf("want one stream created, got %d", n)
					}
					for _, c := range tx.Calls() {
						if c == "POST /ssf/verify" || c == "GET /ssf/status" {
							t.Fatalf("the stream was used: %v", tx.Calls())
						}
					}
					return
				}

				var jti string
				checkFor(t, waitLong, 50*time.Millisecond, func() error {
					for _, d := range tx.Delivered() {
						switch {
						case d.EventType != transmitter.Verification:
						case delivery == "push" && d.Status == 400 && strings.Contains(d.Body, "invalid_request"):
							jti = d.JTI
							return nil
						case delivery == "poll" && tx.PollServer().Errors()[d.JTI].Err == "invalid_request":
							jti = d.JTI
							return nil
						}
					}
					return fmt.Errorf("verification not refused yet: %+v", tx.Delivered())
				})
				d, err := ssfDetail(t, g, "okta")
				if err != nil {
					t.Fatal(err)
				}
				if d.Verification != "pending" {
					t.Fatalf("want the verification still pending, got %+v", d)
				}
				if len(byJTI(readStream(t, g.natsURL))[jti]) != 0 {
					t.Fatalf("the refused verification %s was stored", jti)
				}
			})
		}
	}
}
