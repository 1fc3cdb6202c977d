package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/setgate/setgate/internal/transmitter"
)

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
	event := fs.String("event", transmitter.SessionRevoked, "event type URI, or caep.<event>, risc.<event>, ssf.<event>")
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
		return transmitter.WriteKey(*genKey, a, *kid, stdout)
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
	key, err := transmitter.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	algName, err := transmitter.AlgFor(key, *alg)
	if err != nil {
		return err
	}
	keyID := *kid
	if keyID == "" {
		if _, keyID, err = transmitter.PublicJWK(key.Public(), algName, ""); err != nil {
			return err
		}
	}
	eventType, err := transmitter.ExpandEvent(*event)
	if err != nil {
		return err
	}
	if *payload == "" {
		var needsEmail bool
		*payload, needsEmail = transmitter.DefaultPayload(eventType)
		if needsEmail && *email == "" {
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

	set, id, err := transmitter.OneSET{
		Key: key, Alg: algName, KID: keyID, Issuer: *iss, Audience: *aud, JTI: *jti, Email: *email,
		EventType: eventType, Payload: json.RawMessage(*payload),
	}.Sign()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	fmt.Fprintf(stderr, "setgate send: POST %s jti=%s event=%s alg=%s kid=%s\n", target.Redacted(), id, eventType, algName, keyID)
	resp, err := transmitter.PushOnce(ctx, target.String(), bearer, set)
	if resp.Proto == "" {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.StatusLine)
	if len(resp.Body) > 0 {
		fmt.Fprintf(stdout, "%s\n", bytes.TrimRight(resp.Body, "\n"))
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if resp.Status != http.StatusAccepted {
		var e struct{ Err, Description string }
		if json.Unmarshal(resp.Body, &e) == nil && e.Err != "" {
			return fmt.Errorf("send: %s answered %s: %s: %s", target.Redacted(), resp.StatusLine, e.Err, e.Description)
		}
		return fmt.Errorf("send: %s answered %s", target.Redacted(), resp.StatusLine)
	}
	return nil
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
