package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// ErrUnavailable is wrapped by every [Bridge.PublishSET] error that means
// the events were not durably stored: NATS down, no JetStream responder, no
// acknowledgement in time, or an API error. It is an
// [intake.ErrUnavailable] (errors.Is matches both), so the intake pipeline
// and its sources answer 503 and let the transmitter retry.
var ErrUnavailable error = &sentinel{msg: "bridge: NATS unavailable", is: intake.ErrUnavailable}

// ErrStreamFull is wrapped, together with [ErrUnavailable], by a
// [Bridge.PublishSET] error when JetStream refused the events because the
// stream (or the account's storage) reached its byte limit under the
// discard new policy. It is an [intake.ErrStreamFull]. It is still "not
// stored": callers answer 503 with Retry-After (push) or leave the SET
// unacknowledged (poll).
var ErrStreamFull error = &sentinel{msg: "bridge: stream full", is: intake.ErrStreamFull}

// sentinel is a bridge error that also matches the intake error it is an
// instance of.
type sentinel struct {
	msg string
	is  error
}

func (e *sentinel) Error() string        { return e.msg }
func (e *sentinel) Is(target error) bool { return target == e.is }

// JetStream API error codes of a refused store (nats-server
// errors.json): JSStreamStoreFailedF carries "maximum bytes exceeded"
// under discard new; JSInsufficientResourcesErr means the server or
// account storage is exhausted.
const (
	jsErrStoreFailed           = 10077
	jsErrInsufficientResources = 10023
)

// Headers set on every published event, repeating the routing facts of the
// envelope so consumers can filter without parsing the body.
const (
	HeaderIssuer    = "Setgate-Issuer"
	HeaderIss       = "Setgate-Iss"
	HeaderJTI       = "Setgate-Jti"
	HeaderEventType = "Setgate-Event-Type"
	HeaderDelivery  = "Setgate-Delivery"
)

// Delivery is how a SET reached setgate ([intake.Delivery]).
type Delivery = intake.Delivery

// The two deliveries: RFC 8935 push and RFC 8936 poll.
const (
	DeliveryPush = intake.DeliveryPush
	DeliveryPoll = intake.DeliveryPoll
)

// Envelope is the JSON body of each published message (README "Subjects and
// messages"); a SET with several events is published as one message per
// event. It holds the claims of the SET that apply to every event, one
// event, and how and when the SET arrived.
type Envelope struct {
	// Issuer is the configured issuer name; Iss the SET's iss claim.
	Issuer string `json:"issuer"`
	Iss    string `json:"iss"`
	JTI    string `json:"jti"`
	// IAT and TOE are NumericDates exactly as sent; TOE is empty when absent.
	IAT json.Number `json:"iat"`
	Aud []string    `json:"aud"`
	TOE json.Number `json:"toe,omitempty"`
	TXN string      `json:"txn,omitempty"`
	// SubID is the RFC 9493 subject identifier; Sub the RFC 8417 sub claim.
	SubID json.RawMessage `json:"sub_id,omitempty"`
	Sub   string          `json:"sub,omitempty"`
	// EventType is the event's type URI and Event its payload object.
	EventType string          `json:"event_type"`
	Event     json.RawMessage `json:"event"`
	Delivery  Delivery        `json:"delivery"`
	// ReceivedAt is when setgate received the SET, in UTC.
	ReceivedAt time.Time `json:"received_at"`
	// SET is the compact serialization as received.
	SET string `json:"set"`
	// PayloadWarnings lists payload faults tolerated under lenient
	// validation.
	PayloadWarnings []string `json:"payload_warnings,omitempty"`
}

// Result is what publishing one SET stored ([intake.Result]).
type Result = intake.Result

// Bridge is the intake pipeline's publisher.
var _ intake.Publisher = (*Bridge)(nil)

// msgIDBytes is how much of the SHA-256 a Nats-Msg-Id keeps: 144 bits,
// 24 base64url characters.
const msgIDBytes = 18

// MsgID returns the Nats-Msg-Id of the event of type eventType in the SET
// identified by iss and jti: the unpadded base64url encoding of the first
// 18 bytes of sha256(iss NUL jti NUL eventType), 24 characters (README
// "Subjects and messages").
//
// JetStream keeps every id of its duplicate window in the server's memory,
// so the id is short: 24 characters fit Go's 24-byte allocation class,
// where the full hex digest took 64 bytes per id. 144 bits are still far
// from any collision here. By chance: n ids within one window collide with
// a probability of about n²/2¹⁴⁵, under 2⁻⁹⁹ for 7.2 million ids (2,000
// SETs/s for an hour). On purpose: only verified SETs are published, and
// iss is hashed in, so making JetStream drop someone else's SET as a
// duplicate takes a second preimage of a 144-bit prefix (about 2¹⁴⁴
// hashes) for a jti known in advance; a birthday collision (about 2⁷²)
// between inputs a transmitter chooses can only drop its own SETs.
func MsgID(iss, jti, eventType string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + jti + "\x00" + eventType))
	return base64.RawURLEncoding.EncodeToString(sum[:msgIDBytes])
}

// PublishSET publishes one message per event of set, from the issuer named
// issuerName (with its subject overrides), received by d at receivedAt, and
// returns only after JetStream acknowledged every one, waiting at most the
// configured publish timeout (and until ctx is done). An error that wraps
// [ErrUnavailable] means the SET must not be acknowledged; any other error
// means set itself cannot be published.
func (b *Bridge) PublishSET(ctx context.Context, issuerName string, overrides map[string]string, set *verify.SET, d Delivery, receivedAt time.Time) (Result, error) {
	if set == nil || len(set.Events) == 0 {
		return Result{}, errors.New("bridge: SET has no events")
	}
	msgs := make([]*nats.Msg, len(set.Events))
	res := Result{Subjects: make([]string, len(set.Events)), Sequences: make([]uint64, len(set.Events)), SET: set}
	for i, ev := range set.Events {
		m, err := b.message(issuerName, overrides, set, ev, d, receivedAt)
		if err != nil {
			return Result{}, err
		}
		msgs[i] = m
		res.Subjects[i] = m.Subject
	}

	if st := b.nc.Status(); st != nats.CONNECTED {
		return Result{}, fmt.Errorf("%w: connection is %s", ErrUnavailable, st)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()

	started := time.Now()
	acks, err := b.publish(ctx, msgs)
	if err != nil {
		return Result{}, err
	}
	res.PublishTime = time.Since(started)
	res.Duplicate = true
	for i, ack := range acks {
		res.Sequences[i] = ack.Sequence
		res.Duplicate = res.Duplicate && ack.Duplicate
	}
	return res, nil
}

// publish sends msgs to JetStream and waits for every acknowledgement.
func (b *Bridge) publish(ctx context.Context, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	// Each message carries the expected stream header itself (see
	// message), so no publish options are needed.
	acks := make([]*jetstream.PubAck, len(msgs))
	if len(msgs) == 1 {
		ack, err := b.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return nil, unavailable(msgs[0].Subject, err)
		}
		acks[0] = ack
		return acks, nil
	}

	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := b.js.PublishMsgAsync(m)
		if err != nil {
			return nil, unavailable(m.Subject, err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			return nil, unavailable(msgs[i].Subject, err)
		case <-ctx.Done():
			return nil, unavailable(msgs[i].Subject, ctx.Err())
		}
	}
	return acks, nil
}

// unavailable wraps a publish failure in ErrUnavailable, and in
// ErrStreamFull too when JetStream refused it for lack of room.
func unavailable(subject string, err error) error {
	if isFull(err) {
		return fmt.Errorf("%w: %w: publish on %s: %w", ErrUnavailable, ErrStreamFull, subject, err)
	}
	return fmt.Errorf("%w: publish on %s: %w", ErrUnavailable, subject, err)
}

// isFull reports whether err is JetStream refusing a message because a
// byte limit was reached.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrInsufficientResources:
		return true
	case jsErrStoreFailed:
		return strings.Contains(apiErr.Description, "maximum bytes")
	}
	return false
}

// message builds the message for one event of set.
func (b *Bridge) message(issuerName string, overrides map[string]string, set *verify.SET, ev verify.Event, d Delivery, receivedAt time.Time) (*nats.Msg, error) {
	env := Envelope{
		Issuer:          issuerName,
		Iss:             set.Iss,
		JTI:             set.JTI,
		IAT:             set.IAT,
		Aud:             set.Aud,
		TXN:             set.TXN,
		SubID:           set.SubID,
		Sub:             set.Sub,
		EventType:       ev.Type,
		Event:           ev.Payload,
		Delivery:        d,
		ReceivedAt:      receivedAt.UTC(),
		SET:             set.Raw,
		PayloadWarnings: set.Warnings,
	}
	if set.TOE != nil {
		env.TOE = *set.TOE
	}
	if env.Aud == nil {
		env.Aud = []string{}
	}
	if len(env.Event) == 0 {
		env.Event = json.RawMessage("{}")
	}
	body, err := appendEnvelope(make([]byte, 0, envelopeSize(&env)), &env)
	if err != nil {
		return nil, fmt.Errorf("bridge: encode envelope of %s event %s: %w", set.JTI, ev.Type, err)
	}
	// The header names are canonical already (what Header.Set would
	// make of them); the values share one backing array.
	v := [...]string{"application/json", MsgID(set.Iss, set.JTI, ev.Type), issuerName, set.Iss, set.JTI, ev.Type, string(d), b.cfg.Stream}
	vals := v[:]
	return &nats.Msg{
		Subject: b.subjects.For(issuerName, ev.Type, overrides),
		Data:    body,
		Header: nats.Header{
			"Content-Type":        vals[0:1:1],
			jetstream.MsgIDHeader: vals[1:2:2],
			HeaderIssuer:          vals[2:3:3],
			HeaderIss:             vals[3:4:4],
			HeaderJTI:             vals[4:5:5],
			HeaderEventType:       vals[5:6:6],
			HeaderDelivery:        vals[6:7:7],
			// What jetstream.WithExpectStream would add: JetStream
			// refuses the message unless this stream takes it.
			jetstream.ExpectedStreamHeader: vals[7:8:8],
		},
	}, nil
}

// Rejection is the JSON body announced on [RejectionSubject] for a
// rejected SET (README "Subjects and messages").
type Rejection struct {
	// Issuer is the configured issuer name.
	Issuer string `json:"issuer"`
	// Code and Description are the RFC 8935 §2.3 error code and the
	// description the transmitter was given.
	Code        string `json:"code"`
	Description string `json:"description"`
	// JTI is the SET's jti; empty when it was not readable.
	JTI      string   `json:"jti,omitempty"`
	Delivery Delivery `json:"delivery"`
	// ReceivedAt is when setgate received the SET, in UTC.
	ReceivedAt time.Time `json:"received_at"`
}

// RejectionSubject returns the core NATS subject on which rejections of
// the issuer named issuerName are announced: "setgate.rejected.<issuer>".
func RejectionSubject(issuerName string) string {
	return rejectedPrefix + ".rejected." + issuerToken(issuerName)
}

// PublishRejection announces, best effort, that a SET from the issuer named
// issuerName, delivered by d at at, was rejected with the RFC 8935 code and
// description (jti may be empty when it was not readable). It publishes on
// [RejectionSubject] with core NATS, outside the stream, never waits for the
// server, and only logs failures at debug level.
func (b *Bridge) PublishRejection(issuerName string, code, description, jti string, d Delivery, at time.Time) {
	body, err := json.Marshal(Rejection{
		Issuer:      issuerName,
		Code:        code,
		Description: description,
		JTI:         jti,
		Delivery:    d,
		ReceivedAt:  at.UTC(),
	})
	if err == nil {
		err = b.nc.Publish(RejectionSubject(issuerName), body)
	}
	if err != nil {
		b.log.Debug("publish rejection", "issuer", issuerName, "code", code, "err", err)
	}
}
