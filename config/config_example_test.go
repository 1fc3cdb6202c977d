package config_test

import (
	"fmt"

	"github.com/setgate/setgate/config"
)

// A gateway started from code takes the defaults and changes what it
// needs; no SETGATE_* variables are written.
func ExampleDefaultSettings() {
	s := config.DefaultSettings()
	s.HTTPAddr, s.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	s.EmbeddedNATSAddr = "" // no consumers' listener
	fmt.Println(s.Validate(), s.Stream, s.MaxBodyBytes)
	// Output: <nil> SECEVENTS 65536
}

// The push token comes from the variable the file names; it is trimmed.
func ExampleParseIssuers() {
	const file = `issuers:
  - name: acme
    issuer: https://idp.acme.example/
    audience: https://setgate.example/
    jwks_uri: https://idp.acme.example/jwks
    push:
      bearer_token_env: ACME_PUSH_TOKEN
`
	vars := map[string]string{"ACME_PUSH_TOKEN": " s3cret\n"}
	issuers, err := config.ParseIssuers([]byte(file), vars, config.ReadSecretFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	acme := issuers[0]
	fmt.Println(acme.Name, acme.Verify.Algorithms, acme.PushToken == "s3cret")
	// Output: acme [RS256 ES256] true
}

// Errors name the issuer and the key path, never a secret.
func ExampleParseIssuers_error() {
	const file = `issuers:
  - name: acme
    issuer: https://idp.acme.example/
    audience: https://setgate.example/
    jwks_uri: https://idp.acme.example/jwks
    algorithm: [ES256]
    push: {bearer_token_env: ACME_PUSH_TOKEN}
`
	_, err := config.ParseIssuers([]byte(file), nil, config.ReadSecretFile)
	fmt.Println(err)
	// Output: line 6: issuer "acme": algorithm: unknown key
}
