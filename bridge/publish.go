package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/textproto"
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

// ErrTooLarge is wrapped by the error of a [Bridge.PublishSET] that
// refused a SET because one of its messages is larger than NATS takes:
// the server's max payload ([nats.Conn.MaxPayload], checked before
// publishing) or the stream's max message size (JetStream error 10054).
// Such a SET can never be stored, so the error is a *verify.Error with
// code invalid_request (RFC 8935 §2.3, RFC 8936 §2.4), never
// [ErrUnavailable]: the transmitter is told, not asked to retry forever.
// It is an [intake.ErrTooLarge].
var ErrTooLarge error = &sentinel{msg: "bridge: message larger than NATS takes", is: intake.ErrTooLarge}

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
	var in [256]byte // on the stack for the usual lengths
	h := append(append(append(append(append(in[:0], iss...), 0), jti...), 0), eventType...)
	sum := sha256.Sum256(h)
	var id [24]byte // base64.RawURLEncoding.EncodedLen(msgIDBytes)
	base64.RawURLEncoding.Encode(id[:], sum[:msgIDBytes])
	return string(id[:])
}

// PublishSET publishes one message per event of set, from the issuer named
// issuerName (with its subject overrides), received by d at receivedAt, and
// returns only after JetStream acknowledged every one, waiting at most the
// configured publish timeout (and until ctx is done). An error that wraps
// [ErrUnavailable] means the SET must not be acknowledged; a *verify.Error
// (wrapping [ErrTooLarge]) means set can never be stored and is to be
// rejected; any other error means set itself cannot be published.
//
// Every message is measured against the server's max payload before any
// is sent, so a SET with one oversized event stores none of its events.
func (b *Bridge) PublishSET(ctx context.Context, issuerName string, overrides map[string]string, set *verify.SET, d Delivery, receivedAt time.Time) (Result, error) {
	if set == nil || len(set.Events) == 0 {
		return Result{}, errors.New("bridge: SET has no events")
	}
	if len(set.Events) == 1 {
		return b.publishOne(ctx, issuerName, overrides, set, d, receivedAt)
	}
	msgs := make([]*nats.Msg, len(set.Events))
	res := Result{Subjects: make([]string, len(set.Events)), Sequences: make([]uint64, len(set.Events)), SET: set}
	maxPayload := b.nc.MaxPayload()
	for i, ev := range set.Events {
		// Not from the pool: an asynchronous publish keeps its message
		// for retries beyond the call that sent it.
		m, err := b.message(issuerName, overrides, set, ev, d, receivedAt)
		if err != nil {
			return Result{}, err
		}
		if size := m.size(); maxPayload > 0 && size > maxPayload {
			return Result{}, tooLarge(set, size, maxPayload, nil)
		}
		msgs[i] = &m.Msg
		res.Subjects[i] = m.Subject
	}

	ctx, cancel, err := b.publishWindow(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cancel()

	started := time.Now()
	acks, err := b.publishAsync(ctx, set, msgs)
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

// publishWindow is where every publish starts: an error wrapping
// [ErrUnavailable] when the connection is down, else ctx bounded by the
// configured publish timeout.
func (b *Bridge) publishWindow(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return nil, nil, fmt.Errorf("%w: connection is %s", ErrUnavailable, st)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	return ctx, cancel, nil
}

// oneResult holds the result slices of a single-event SET, allocated
// together.
type oneResult struct {
	subjects  [1]string
	sequences [1]uint64
}

// publishOne is PublishSET for a SET with one event, the common case: its
// message is built in a pooled [outMsg], sent as one request and released
// once the request returned (nats.go copied it into its write buffer before
// waiting for the reply).
func (b *Bridge) publishOne(ctx context.Context, issuerName string, overrides map[string]string, set *verify.SET, d Delivery, receivedAt time.Time) (Result, error) {
	m := b.getMsg()
	defer b.putMsg(m)
	if err := b.build(m, issuerName, overrides, set, set.Events[0], d, receivedAt); err != nil {
		return Result{}, err
	}
	if size, maxPayload := m.size(), b.nc.MaxPayload(); maxPayload > 0 && size > maxPayload {
		return Result{}, tooLarge(set, size, maxPayload, nil)
	}
	one := &oneResult{subjects: [1]string{m.Subject}}
	res := Result{Subjects: one.subjects[:], Sequences: one.sequences[:], SET: set}

	ctx, cancel, err := b.publishWindow(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cancel()

	started := time.Now()
	ack, err := b.request(ctx, &m.Msg)
	if err != nil {
		return Result{}, b.publishErr(set, &m.Msg, err)
	}
	res.PublishTime = time.Since(started)
	res.Sequences[0], res.Duplicate = ack.Sequence, ack.Duplicate
	return res, nil
}

// request publishes m and waits for its PubAck, as jetstream's PublishMsg
// does without options (the same retries when no stream responds, the same
// errors), but reads the acknowledgement without a generic decoder when it
// has the server's usual form.
func (b *Bridge) request(ctx context.Context, m *nats.Msg) (pubAck, error) {
	resp, err := b.nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// A stream leader election leaves no responder for a moment.
		t := time.NewTimer(jetstream.DefaultPubRetryWait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		resp, err = b.nc.RequestMsgWithContext(ctx, m)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return pubAck{}, jetstream.ErrNoStreamResponse
		}
		return pubAck{}, err
	}
	return parsePubAck(b.ackPrefix, resp.Data)
}

// pubAck is what setgate needs of a JetStream PubAck.
type pubAck struct {
	Sequence  uint64
	Duplicate bool
}

// pubAckPrefix is the start of a PubAck for stream as nats-server writes
// it (no JetStream domain): {"stream":"<stream>","seq":
func pubAckPrefix(stream string) []byte {
	return fmt.Appendf(nil, "{%q:%q,%q:", "stream", stream, "seq")
}

// parsePubAck reads a JetStream publish response. The forms nats-server
// writes for a stored or duplicate message on the configured stream,
// prefix followed by the sequence and "}" or `,"duplicate": true}`, are
// read directly; anything else is decoded as jetstream does, with the same
// errors: an API error as a *jetstream.APIError, a response without a
// stream as jetstream.ErrInvalidJSAck.
func parsePubAck(prefix, data []byte) (pubAck, error) {
	if rest, ok := bytes.CutPrefix(data, prefix); ok && len(prefix) > 0 {
		var seq uint64
		i := 0
		for ; i < len(rest) && i < 20 && '0' <= rest[i] && rest[i] <= '9'; i++ {
			d := uint64(rest[i] - '0')
			if seq > (math.MaxUint64-d)/10 {
				i = 0 // overflow: let the decoder judge
				break
			}
			seq = seq*10 + d
		}
		if i > 0 && (rest[0] != '0' || i == 1) {
			switch string(rest[i:]) {
			case "}":
				return pubAck{Sequence: seq}, nil
			case `,"duplicate": true}`, `,"duplicate":true}`:
				return pubAck{Sequence: seq, Duplicate: true}, nil
			}
		}
	}
	var r struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		jetstream.PubAck
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, fmt.Errorf("nats: %w", r.Error)
	}
	if r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{Sequence: r.Sequence, Duplicate: r.Duplicate}, nil
}

// publishAsync sends msgs to JetStream at once and waits for every
// acknowledgement.
func (b *Bridge) publishAsync(ctx context.Context, set *verify.SET, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	// Each message carries the expected stream header itself (see
	// build), so no publish options are needed.
	acks := make([]*jetstream.PubAck, len(msgs))
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := b.js.PublishMsgAsync(m)
		if err != nil {
			return nil, b.publishErr(set, m, err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			return nil, b.publishErr(set, msgs[i], err)
		case <-ctx.Done():
			return nil, unavailable(msgs[i].Subject, ctx.Err())
		}
	}
	return acks, nil
}

// publishErr sorts the failed publish of m, a message of set. A message
// NATS can never take, over the server's max payload (nats.go refuses it
// before sending; a backstop for a server that lowered it since the check
// in PublishSET) or over the stream's max message size (JetStream error
// 10054), refuses set as too large; anything else is an outage.
func (b *Bridge) publishErr(set *verify.SET, m *nats.Msg, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return tooLarge(set, msgSize(m), b.nc.MaxPayload(), err)
	case isAPIError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum):
		return tooLarge(set, msgSize(m), 0, err)
	}
	return unavailable(m.Subject, err)
}

// tooLarge is the rejection of set, one of whose messages is size bytes:
// more than the server's max payload maxPayload, or, with maxPayload 0,
// than the stream's max message size. cause, if any, is the publish error
// (for the log).
func tooLarge(set *verify.SET, size, maxPayload int64, cause error) error {
	desc := fmt.Sprintf("The SET is too large to store (%d bytes; the NATS server takes at most %d).", size, maxPayload)
	if maxPayload <= 0 {
		desc = fmt.Sprintf("The SET is too large to store (%d bytes; over the stream's maximum message size).", size)
	}
	err := ErrTooLarge
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrTooLarge, cause)
	}
	return &verify.Error{Code: verify.CodeInvalidRequest, Description: desc, JTI: set.JTI, Err: err}
}

// isAPIError reports whether err is the JetStream API error code.
func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// hdrFrame is what nats.go adds around a message's header lines:
// "NATS/1.0\r\n" before them and "\r\n" after.
const hdrFrame = len("NATS/1.0\r\n") + len("\r\n")

// msgSize is what NATS counts against its max payload for m: the body
// plus the headers as nats.go encodes them (one "Name: value\r\n" line
// per value, the value trimmed).
func msgSize(m *nats.Msg) int64 {
	n := len(m.Data)
	if len(m.Header) > 0 {
		n += hdrFrame
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(": \r\n") + len(textproto.TrimString(v))
			}
		}
	}
	return int64(n)
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

// The headers of every message, in the order of [outMsg.vals].
var msgHeaderNames = [...]string{
	"Content-Type",
	jetstream.MsgIDHeader,
	HeaderIssuer,
	HeaderIss,
	HeaderJTI,
	HeaderEventType,
	HeaderDelivery,
	// What jetstream.WithExpectStream would add: JetStream refuses the
	// message unless this stream takes it.
	jetstream.ExpectedStreamHeader,
}

// maxPooledBody is the largest body buffer kept for reuse; a message built
// for an unusually large SET leaves its buffer to the garbage collector.
const maxPooledBody = 16 << 10

// outMsg is one event's message together with the storage it is built in:
// the header values and the body's buffer. The Bridge keeps released ones
// for reuse ([Bridge.getMsg], [Bridge.putMsg]).
type outMsg struct {
	nats.Msg
	vals [len(msgHeaderNames)]string
}

// size is [msgSize] of m, read from its header values without walking
// the header map: it runs for every message before it is published.
func (m *outMsg) size() int64 {
	n := len(m.Data) + hdrFrame
	for i, name := range msgHeaderNames {
		n += len(name) + len(": \r\n") + len(textproto.TrimString(m.vals[i]))
	}
	return int64(n)
}

// getMsg returns an outMsg to build into, reused when one was released.
func (b *Bridge) getMsg() *outMsg {
	if m, ok := b.msgPool.Get().(*outMsg); ok {
		return m
	}
	return new(outMsg)
}

// putMsg releases m for reuse. Only a message whose publish call has
// returned may be released: nats.go copies a message into its write
// buffer (or its reconnect buffer) within the call, and a synchronous
// request keeps no reference after it returns.
func (b *Bridge) putMsg(m *outMsg) {
	if cap(m.Data) > maxPooledBody {
		return
	}
	m.Data = m.Data[:0]
	m.Subject, m.Reply, m.Sub = "", "", nil
	m.vals = [len(msgHeaderNames)]string{}
	b.msgPool.Put(m)
}

// message builds a new message for one event of set.
func (b *Bridge) message(issuerName string, overrides map[string]string, set *verify.SET, ev verify.Event, d Delivery, receivedAt time.Time) (*outMsg, error) {
	m := new(outMsg)
	if err := b.build(m, issuerName, overrides, set, ev, d, receivedAt); err != nil {
		return nil, err
	}
	return m, nil
}

// build fills m with the message for one event of set, reusing m's body
// buffer and header map.
func (b *Bridge) build(m *outMsg, issuerName string, overrides map[string]string, set *verify.SET, ev verify.Event, d Delivery, receivedAt time.Time) error {
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
	body := m.Data[:0]
	if size := envelopeSize(&env); cap(body) < size {
		body = make([]byte, 0, size)
	}
	body, err := appendEnvelope(body, &env)
	if err != nil {
		return fmt.Errorf("bridge: encode envelope of %s event %s: %w", set.JTI, ev.Type, err)
	}
	m.Data = body
	m.Subject = b.subjects.For(issuerName, ev.Type, overrides)
	m.vals = [...]string{"application/json", MsgID(set.Iss, set.JTI, ev.Type), issuerName, set.Iss, set.JTI, ev.Type, string(d), b.cfg.Stream}
	// The header names are canonical already (what Header.Set would make
	// of them); each value is a one-element window on m.vals, its
	// capacity capped so that appending to one header cannot change
	// another. Every entry is set again on reuse, so a header a caller
	// changed does not outlive its message.
	if m.Header == nil || len(m.Header) != len(msgHeaderNames) {
		m.Header = make(nats.Header, len(msgHeaderNames))
	}
	for i, name := range msgHeaderNames {
		m.Header[name] = m.vals[i : i+1 : i+1]
	}
	return nil
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

// maxIssuerName is the longest issuer name the issuers file allows
// (README "The issuers file": [a-z0-9-], at most 63 characters).
const maxIssuerName = 63

// MessageSizeBound returns the size NATS counts (body and headers) that
// no message of a SET of setBytes bytes exceeds on stream, unless the
// SET's claims need much JSON escaping (README "Subjects and messages",
// "Message size"):
//
//	bound(B) = F + B + 2·⌈3B/4⌉
//
// B is the compact SET, copied into "set" as it is (base64url and dots
// are never escaped). ⌈3B/4⌉ bounds its claims, decoded from base64url (3
// bytes per 4 characters); each claim a message holds (iss, jti, iat,
// aud, toe, txn, sub_id, sub, the event's type and payload, with their
// JSON names) appears once in the envelope, and iss, jti and the event
// type once more in the headers: at most twice the decoded claims. F is
// the rest, measured by building the message of a SET with empty claims
// under the longest issuer name: field names, "received_at" at its
// longest, "delivery", the event "{}", Nats-Msg-Id, the header names and
// the stream name.
//
// Not covered: strings holding many <, > or & (escaped as \u003c, six
// bytes for one) or U+2028/U+2029, and lenient payload warnings. A SET
// whose message exceeds the server's max payload anyway is refused when it
// is published ([ErrTooLarge]), never retried.
func MessageSizeBound(setBytes int64, stream string) int64 {
	if setBytes < 0 {
		setBytes = 0
	}
	if setBytes > 1<<50 {
		return math.MaxInt64
	}
	decoded := (3*setBytes + 3) / 4
	return fixedMessageSize(stream) + setBytes + 2*decoded
}

// MaxSETBytes returns the largest SET size whose [MessageSizeBound] on
// stream is at most maxPayload, the NATS server's max payload; 0 when
// none is.
func MaxSETBytes(maxPayload int64, stream string) int64 {
	lo, hi := int64(0), max(maxPayload, 0) // bound(B) > B, so B < maxPayload
	if MessageSizeBound(0, stream) > maxPayload {
		return 0
	}
	for lo < hi { // largest B in [lo, hi] with bound(B) ≤ maxPayload
		mid := lo + (hi-lo+1)/2
		if MessageSizeBound(mid, stream) <= maxPayload {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// fixedMessageSize is F of [MessageSizeBound]: the size of the message of
// a SET whose claims are all empty, from the longest issuer name, at the
// longest received_at, on stream.
func fixedMessageSize(stream string) int64 {
	env := Envelope{
		Issuer:     strings.Repeat("a", maxIssuerName),
		Aud:        []string{},
		Event:      json.RawMessage("{}"),
		Delivery:   DeliveryPush,
		ReceivedAt: time.Date(2000, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	body, _ := appendEnvelope(nil, &env) // no error: every member is valid
	m := outMsg{Msg: nats.Msg{Data: body}}
	m.vals = [...]string{"application/json", MsgID("", "", ""), env.Issuer, "", "", "", string(DeliveryPush), stream}
	return m.size()
}
