package ssf_test

import (
	"context"
	"fmt"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// A poll stream set up by discovery: the transmitter's endpoint_url is
// where the poll loop then polls.
func Example() {
	ctx := context.Background()
	tx, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Bearer: "ssf-token"})
	if err != nil {
		panic(err)
	}
	defer tx.Close()

	meta, err := ssf.Discover(ctx, nil, tx.Issuer())
	if err != nil {
		panic(err)
	}
	mgr, err := ssf.NewManager(ssf.ManagerConfig{
		Issuer:               meta.Issuer,
		Delivery:             ssf.DeliveryPoll,
		EventsRequested:      []string{transmitter.SessionRevoked},
		VerificationInterval: time.Hour,
		States:               verify.NewStates(nil), // in setgate: the issuer's Verifier.States()
		Client:               ssf.New(meta, poller.BearerToken("ssf-token"), nil, nil),
	})
	if err != nil {
		panic(err)
	}
	stream, err := mgr.Ensure(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(stream.Delivery.Method, stream.Delivery.EndpointURL == tx.PollServer().URL())
	fmt.Println(mgr.Status().EventsDelivered)
	// Output:
	// urn:ietf:rfc:8936 true
	// [https://schemas.openid.net/secevent/caep/event-type/session-revoked]
}
