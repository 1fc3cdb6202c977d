package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// defaultSendEvent is the event "setgate send" signs when --event is not
// given: a CAEP session revocation, whose payload may be empty.
const defaultSendEvent = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

// eventFamilies expands the "family.event" short form of --event.
var eventFamilies = map[string]string{
	"caep": "https://schemas.openid.net/secevent/caep/event-type/",
	"risc": "https://schemas.openid.net/secevent/risc/event-type/",
	"ssf":  "https://schemas.openid.net/secevent/ssf/event-type/",
}

// defaultPayloads is the payload "setgate send" signs for each event type
// setgate knows when --payload is not given: the smallest one a strict
// issuer accepts (CAEP 1.0 §3, RISC 1.0 §2, SSF 1.0 §8.1.4 and §8.1.5).
// Types not listed get {}.
var defaultPayloads = map[string]string{
	eventFamilies["caep"] + "token-claims-change":      `{"claims":{"role":"user"}}`,
	eventFamilies["caep"] + "credential-change":        `{"credential_type":"password","change_type":"update"}`,
	eventFamilies["caep"] + "assurance-level-change":   `{"namespace":"NIST-AAL","current_level":"nist-aal2","previous_level":"nist-aal1","change_direction":"increase"}`,
	eventFamilies["caep"] + "device-compliance-change": `{"previous_status":"compliant","current_status":"not-compliant"}`,
	eventFamilies["caep"] + "risk-level-change":        `{"principal":"USER","current_level":"HIGH","previous_level":"LOW"}`,
	eventFamilies["risc"] + "account-disabled":         `{"reason":"hijacking"}`,
	eventFamilies["risc"] + "credential-compromise":    `{"credential_type":"password"}`,
	eventFamilies["ssf"] + "stream-updated":            `{"status":"enabled"}`,
	// verification: {} (no state: a receiver accepts it as the
	// transmitter's own; a state it did not request is invalid_state).
}

// needsEmail lists the event types whose subject must be an email address
// or a telephone number (RISC 1.0 §2.5, §2.6).
var needsEmail = map[string]bool{
	eventFamilies["risc"] + "identifier-changed":  true,
	eventFamilies["risc"] + "identifier-recycled": true,
}

// sendVerb runs "setgate send": a small transmitter that signs one SET
// with a private key from a file and pushes it (RFC 8935), or, with
// --gen-key, writes a new key and prints its public JWKS.
func sendVerb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("send", "--to URL --key FILE --iss ISS [flags]\n       setgate send --gen-key FILE [--alg ALG] [--kid KID]", stdout,
		"Sign one SET with the private key in --key (PEM: PKCS#8, EC or PKCS#1) and push it to --to\n"+
			"(e.g. https://setgate.example.com/events/acme) with the bearer token read from --token-file.\n"+
			"Prints the HTTP status line and body; exit status 1 unless the answer is 202.\n"+
			"--gen-key writes a new private key (mode 0600) and prints its public JWKS to publish.")
	to := fs.String("to", "", "push endpoint URL")
	keyFile := fs.String("key", "", "PEM private key file to sign with")
	genKey := fs.String("gen-key", "", "write a new private key to this file, print its JWKS and exit")
	alg := fs.String("alg", "", "ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512 or EdDSA (default: from the key; ES256 for --gen-key)")
	kid := fs.String("kid", "", "key id in the JWS header and JWKS (default: the key's RFC 7638 thumbprint)")
	iss := fs.String("iss", "", "iss claim: the issuer as configured in setgate's issuers file")
	aud := fs.String("aud", "", "aud claim (left out when empty)")
	event := fs.String("event", defaultSendEvent, "event type URI, or caep.<event>, risc.<event>, ssf.<event>")
	email := fs.String("email", "", "subject: sub_id {format: email} (left out when empty; the ssf profile requires one)")
	payload := fs.String("payload", "", "event payload, a JSON object (default: a valid one for each event type setgate knows, else {})")
	tokenFile := fs.String("token-file", "", "file holding the push bearer token (no token: no Authorization header)")
	jti := fs.String("jti", "", "jti claim (default: random; repeat one to try de-duplication)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole request")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("send: unexpected argument %q", pos[0])
	}

	if *genKey != "" {
		if *to != "" || *keyFile != "" {
			return errors.New("send: --gen-key only writes a key; run send again with --key to push")
		}
		a := *alg
		if a == "" {
			a = "ES256"
		}
		return generateKey(*genKey, a, *kid, stdout)
	}

	switch {
	case *to == "":
		return errors.New("send: --to is required (the push endpoint, e.g. https://setgate.example.com/events/acme)")
	case *keyFile == "":
		return errors.New("send: --key is required (a PEM private key; --gen-key makes one)")
	case *iss == "":
		return errors.New("send: --iss is required (the issuer's iss as configured in setgate)")
	}
	target, err := url.Parse(*to)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fmt.Errorf("send: --to %q is not an http(s) URL", *to)
	}
	key, err := loadSigningKey(*keyFile)
	if err != nil {
		return err
	}
	algName, err := algFor(key, *alg)
	if err != nil {
		return err
	}
	keyID := *kid
	if keyID == "" {
		if _, keyID, err = publicJWK(key.Public(), algName, ""); err != nil {
			return err
		}
	}
	eventType, err := expandEvent(*event)
	if err != nil {
		return err
	}
	if *payload == "" {
		*payload = "{}"
		if p, ok := defaultPayloads[eventType]; ok {
			*payload = p
		}
		if needsEmail[eventType] && *email == "" {
			return fmt.Errorf("send: --event %s: its subject must be an email address: add --email", eventType)
		}
	}
	if !json.Valid([]byte(*payload)) || !strings.HasPrefix(strings.TrimSpace(*payload), "{") {
		return fmt.Errorf("send: --payload must be a JSON object, got %q", *payload)
	}
	bearer := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("send: --token-file: %w", err)
		}
		if bearer = strings.TrimSpace(string(b)); bearer == "" {
			return fmt.Errorf("send: --token-file %s is empty", *tokenFile)
		}
	} else {
		fmt.Fprintln(stderr, "setgate send: no --token-file: pushing without an Authorization header")
	}
	if bearer != "" && target.Scheme == "http" && !loopbackHost(target.Hostname()) {
		fmt.Fprintln(stderr, "setgate send: warning: the bearer token goes over plain http")
	}

	id := *jti
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	claims := jwt.MapClaims{
		"iss":    *iss,
		"jti":    id,
		"iat":    time.Now().Unix(),
		"events": map[string]json.RawMessage{eventType: json.RawMessage(*payload)},
	}
	if *aud != "" {
		claims["aud"] = *aud
	}
	if *email != "" {
		claims["sub_id"] = map[string]string{"format": "email", "email": *email}
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(algName), claims)
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = keyID
	set, err := tok.SignedString(key)
	if err != nil {
		return fmt.Errorf("send: sign: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(set))
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	client := &http.Client{
		// A push is answered, never redirected: show a redirect as is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	fmt.Fprintf(stderr, "setgate send: POST %s jti=%s event=%s alg=%s kid=%s\n", target.Redacted(), id, eventType, algName, keyID)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
	if len(body) > 0 {
		fmt.Fprintf(stdout, "%s\n", bytes.TrimRight(body, "\n"))
	}
	if err != nil {
		return fmt.Errorf("send: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		var e struct{ Err, Description string }
		if json.Unmarshal(body, &e) == nil && e.Err != "" {
			return fmt.Errorf("send: %s answered %s: %s: %s", target.Redacted(), resp.Status, e.Err, e.Description)
		}
		return fmt.Errorf("send: %s answered %s", target.Redacted(), resp.Status)
	}
	return nil
}

// expandEvent turns "caep.session-revoked" into the CAEP type URI; URIs
// pass unchanged.
func expandEvent(e string) (string, error) {
	if strings.Contains(e, ":") {
		return e, nil
	}
	family, name, ok := strings.Cut(e, ".")
	if base, known := eventFamilies[family]; ok && known && name != "" {
		return base + name, nil
	}
	return "", fmt.Errorf("send: --event %q: want an event type URI or caep.<event>, risc.<event>, ssf.<event>", e)
}

// loadSigningKey reads the first private key of a PEM file: PKCS#8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
func loadSigningKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("send: --key: %w", err)
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("send: --key %s: no PEM private key (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", path)
		}
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, fmt.Errorf("send: --key %s: the key is encrypted; decrypt it first (openssl pkcs8 -nocrypt)", path)
		}
		var k any
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue // EC PARAMETERS, certificates, public keys
		}
		if err != nil {
			return nil, fmt.Errorf("send: --key %s: %s: %w", path, block.Type, err)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("send: --key %s: unsupported key type %T", path, k)
		}
	}
}

// algFor returns the JWS algorithm for key: want if it fits the key, or
// the key's natural one when want is empty.
func algFor(key crypto.Signer, want string) (string, error) {
	var fits []string
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			fits = []string{"ES256"}
		case elliptic.P384():
			fits = []string{"ES384"}
		case elliptic.P521():
			fits = []string{"ES512"}
		default:
			return "", fmt.Errorf("send: unsupported EC curve %s", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case ed25519.PublicKey:
		fits = []string{"EdDSA"}
	default:
		return "", fmt.Errorf("send: unsupported key type %T", k)
	}
	if want == "" {
		return fits[0], nil
	}
	for _, a := range fits {
		if a == want {
			return a, nil
		}
	}
	return "", fmt.Errorf("send: --alg %s does not fit this key (it fits %s)", want, strings.Join(fits, ", "))
}

// newKeyFor generates a private key for alg.
func newKeyFor(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("send: --alg %q is not one of ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA", alg)
	}
}

// generateKey writes a new PKCS#8 private key for alg to path (which must
// not exist; mode 0600) and prints the public JWKS.
func generateKey(path, alg, kid string, stdout io.Writer) error {
	key, err := newKeyFor(alg)
	if err != nil {
		return err
	}
	jwk, _, err := publicJWK(key.Public(), alg, kid)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("send: --gen-key: %w", err)
	}
	out, err := json.MarshalIndent(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk}}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// publicJWK returns the public JWK of pub for alg with kid (the RFC 7638
// thumbprint when kid is empty), and that kid.
func publicJWK(pub crypto.PublicKey, alg, kid string) (jwkset.JWKMarshal, string, error) {
	bare, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return jwkset.JWKMarshal{}, "", fmt.Errorf("send: jwk: %w", err)
	}
	if kid == "" {
		if kid, err = thumbprint(bare.Marshal()); err != nil {
			return jwkset.JWKMarshal{}, "", err
		}
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(alg), USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, "", fmt.Errorf("send: jwk: %w", err)
	}
	return jwk.Marshal(), kid, nil
}

// thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url: the hash
// of the required members in lexicographic order, without whitespace.
func thumbprint(m jwkset.JWKMarshal) (string, error) {
	var v any
	switch m.KTY {
	case jwkset.KtyEC:
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{string(m.CRV), string(m.KTY), m.X, m.Y}
	case jwkset.KtyRSA:
		v = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{m.E, string(m.KTY), m.N}
	case jwkset.KtyOKP:
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{string(m.CRV), string(m.KTY), m.X}
	default:
		return "", fmt.Errorf("send: no thumbprint for key type %q", m.KTY)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
