package transmitter

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EventFamilies maps the family of the "family.event" short form of an
// event type ("caep.session-revoked") to its type URI prefix.
func EventFamilies() map[string]string {
	return map[string]string{
		"caep": "https://schemas.openid.net/secevent/caep/event-type/",
		"risc": "https://schemas.openid.net/secevent/risc/event-type/",
		"ssf":  "https://schemas.openid.net/secevent/ssf/event-type/",
	}
}

// ExpandEvent turns "caep.session-revoked" into the CAEP type URI; URIs
// pass unchanged.
func ExpandEvent(e string) (string, error) {
	if strings.Contains(e, ":") {
		return e, nil
	}
	family, name, ok := strings.Cut(e, ".")
	if base, known := EventFamilies()[family]; ok && known && name != "" {
		return base + name, nil
	}
	return "", fmt.Errorf("send: --event %q: want an event type URI or caep.<event>, risc.<event>, ssf.<event>", e)
}

// DefaultPayload is the payload signed for eventType when none is given:
// the smallest one a strict issuer accepts (CAEP 1.0 §3, RISC 1.0 §2,
// SSF 1.0 §8.1.4 and §8.1.5), {} for the types not listed. needsEmail
// reports whether the event's subject must be an email address or a
// telephone number (RISC 1.0 §2.5, §2.6).
func DefaultPayload(eventType string) (payload string, needsEmail bool) {
	caep, risc, ssf := EventFamilies()["caep"], EventFamilies()["risc"], EventFamilies()["ssf"]
	payloads := map[string]string{
		caep + "token-claims-change":      `{"claims":{"role":"user"}}`,
		caep + "credential-change":        `{"credential_type":"password","change_type":"update"}`,
		caep + "assurance-level-change":   `{"namespace":"NIST-AAL","current_level":"nist-aal2","previous_level":"nist-aal1","change_direction":"increase"}`,
		caep + "device-compliance-change": `{"previous_status":"compliant","current_status":"not-compliant"}`,
		caep + "risk-level-change":        `{"principal":"USER","current_level":"HIGH","previous_level":"LOW"}`,
		risc + "account-disabled":         `{"reason":"hijacking"}`,
		risc + "credential-compromise":    `{"credential_type":"password"}`,
		ssf + "stream-updated":            `{"status":"enabled"}`,
		// verification: {} (no state: a receiver accepts it as the
		// transmitter's own; a state it did not request is invalid_state).
	}
	payload, ok := payloads[eventType]
	if !ok {
		payload = "{}"
	}
	return payload, eventType == risc+"identifier-changed" || eventType == risc+"identifier-recycled"
}

// OneSET is one SET signed with an operator's key: the claims iss, jti,
// iat, events (one event) and, when set, aud and an email sub_id.
type OneSET struct {
	// Key signs the SET with Alg; KID is the kid header.
	Key      crypto.Signer
	Alg, KID string
	// Issuer is iss; Audience, when set, is aud.
	Issuer, Audience string
	// JTI is jti; empty: a random one.
	JTI string
	// Email, when set, is the subject: sub_id {format: email}.
	Email string
	// EventType and Payload are the one event.
	EventType string
	Payload   json.RawMessage
}

// Sign returns the compact SET (typ secevent+jwt) and its jti.
func (o OneSET) Sign() (token, jti string, err error) {
	jti = o.JTI
	if jti == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		jti = hex.EncodeToString(b)
	}
	claims := jwt.MapClaims{
		"iss":    o.Issuer,
		"jti":    jti,
		"iat":    time.Now().Unix(),
		"events": map[string]json.RawMessage{o.EventType: o.Payload},
	}
	if o.Audience != "" {
		claims["aud"] = o.Audience
	}
	if o.Email != "" {
		claims["sub_id"] = map[string]string{"format": "email", "email": o.Email}
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(o.Alg), claims)
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = o.KID
	token, err = tok.SignedString(o.Key)
	if err != nil {
		return "", "", fmt.Errorf("send: sign: %w", err)
	}
	return token, jti, nil
}

// PushOnce POSTs token to url as RFC 8935 §2 requires, with the bearer
// credential when not empty. A push is answered, never redirected: a
// redirect is returned as the answer, not followed.
func PushOnce(ctx context.Context, url, bearer, token string) (Response, error) {
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return push(ctx, client, url, bearer, token)
}

// push POSTs token to url with client. A Response with Proto set was
// answered, even when reading its body failed.
func push(ctx context.Context, client *http.Client, url, bearer, token string) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(token))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Proto: resp.Proto, StatusLine: resp.Status}
	if err != nil {
		return r, fmt.Errorf("read the answer: %w", err)
	}
	return r, nil
}
