package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/setgate/setgate/poller"
)

// TestParseIssuersOAuth2: the oauth2 blocks of poll and stream take a
// client secret sent as auth_style says, or private_key_jwt, exactly one;
// every error names the issuer and the key path.
func TestParseIssuersOAuth2(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	files := map[string]string{
		"/secrets/acme":    "s3cret\n",
		"/secrets/client":  "client-s3cret\n",
		"/keys/client.pem": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		"/keys/public.pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
	vars := map[string]string{"ACME_TOKEN": "from-env"}
	poll := func(oauth2 string) string {
		return "issuers:" + goodIssuer + "    poll:\n      endpoint: https://x.example/poll\n      oauth2:\n" + oauth2
	}
	stream := func(oauth2 string) string {
		return strings.Replace(ssfIssuer("poll", ""), "      bearer_token_env: ACME_TOKEN\n", "      oauth2:\n"+oauth2, 1)
	}
	const base = "        token_url: https://as.example/token\n        client_id: setgate\n"
	tests := []struct {
		name      string
		yaml      string
		wantErr   string
		wantStyle poller.AuthStyle
	}{
		{name: "poll default basic", yaml: poll(base + "        client_secret_file: /secrets/client\n"), wantStyle: poller.AuthBasic},
		{name: "poll basic", yaml: poll(base + "        auth_style: basic\n        client_secret_file: /secrets/client\n"), wantStyle: poller.AuthBasic},
		{name: "poll post", yaml: poll(base + "        auth_style: post\n        client_secret_env: ACME_TOKEN\n"), wantStyle: poller.AuthPost},
		{name: "poll private_key_jwt", yaml: poll(base + "        private_key_jwt:\n          key_file: /keys/client.pem\n          kid: k1\n"), wantStyle: poller.AuthPrivateKeyJWT},
		{name: "stream private_key_jwt", yaml: stream(base + "        private_key_jwt: {key_file: /keys/client.pem}\n"), wantStyle: poller.AuthPrivateKeyJWT},
		{name: "stream post", yaml: stream(base + "        auth_style: post\n        client_secret_file: /secrets/client\n"), wantStyle: poller.AuthPost},
		{name: "unknown style", yaml: poll(base + "        auth_style: auto\n        client_secret_file: /secrets/client\n"),
			wantErr: `issuer "acme": poll.oauth2.auth_style: "auto" is not basic or post`},
		{name: "secret and key", yaml: poll(base + "        client_secret_file: /secrets/client\n        private_key_jwt: {key_file: /keys/client.pem}\n"),
			wantErr: `issuer "acme": poll.oauth2: set one of client_secret_file, client_secret_env or private_key_jwt`},
		{name: "file and env", yaml: poll(base + "        client_secret_file: /secrets/client\n        client_secret_env: ACME_TOKEN\n"),
			wantErr: `issuer "acme": poll.oauth2.client_secret: set poll.oauth2.client_secret_file or poll.oauth2.client_secret_env, not both`},
		{name: "nothing", yaml: poll(base), wantErr: `issuer "acme": poll.oauth2: client_secret_file, client_secret_env or private_key_jwt is required`},
		{name: "style with key", yaml: stream(base + "        auth_style: post\n        private_key_jwt: {key_file: /keys/client.pem}\n"),
			wantErr: `issuer "sgnl": stream.oauth2.auth_style: is for a client secret`},
		{name: "key file missing", yaml: stream(base + "        private_key_jwt: {key_file: /keys/nope.pem}\n"),
			wantErr: `issuer "sgnl": stream.oauth2.private_key_jwt.key_file:`},
		{name: "no key file", yaml: stream(base + "        private_key_jwt: {kid: k1}\n"),
			wantErr: `issuer "sgnl": stream.oauth2.private_key_jwt.key_file: is required`},
		{name: "public key", yaml: poll(base + "        private_key_jwt: {key_file: /keys/public.pem}\n"),
			wantErr: `issuer "acme": poll.oauth2.private_key_jwt.key_file: /keys/public.pem: PEM block "PUBLIC KEY" is not a private key`},
		{name: "unknown key in private_key_jwt", yaml: poll(base + "        private_key_jwt: {key_file: /keys/client.pem, alg: RS256}\n"),
			wantErr: `issuer "acme": poll.oauth2.private_key_jwt.alg: unknown key`},
		{name: "unknown key in oauth2", yaml: poll(base + "        client_secret_file: /secrets/client\n        audience: x\n"),
			wantErr: `issuer "acme": poll.oauth2.audience: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			specs, err := ParseIssuers([]byte(tt.yaml), vars, readFake(files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				if strings.Contains(err.Error(), "client-s3cret") || strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Fatalf("error leaks the credential: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := specs[0].Poll.OAuth2
			if specs[0].Stream != nil {
				o = specs[0].Stream.OAuth2
			}
			if o == nil || o.AuthStyle != tt.wantStyle {
				t.Fatalf("want auth_style %q, got %+v", tt.wantStyle, o)
			}
			if _, err := poller.NewOAuth2(*o, poller.OAuth2Options{}); err != nil {
				t.Fatalf("the parsed config does not build: %v", err)
			}
		})
	}
}

func TestParseIssuersAllowedOrigins(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ACME_TOKEN": "from-env"}
	tests := []struct {
		name    string
		extra   string
		want    []string
		wantErr string
	}{
		{name: "none"},
		{name: "two", extra: "      allowed_origins: [https://keys.sgnl.example, \"https://api.sgnl.example:8443/\"]\n",
			want: []string{"https://keys.sgnl.example:443", "https://api.sgnl.example:8443"}},
		{name: "with a path", extra: "      allowed_origins: [https://keys.sgnl.example/jwks]\n",
			wantErr: `issuer "sgnl": stream.allowed_origins[0]: "https://keys.sgnl.example/jwks" is not an origin`},
		{name: "plain http", extra: "      allowed_origins: [https://a.example, http://keys.sgnl.example]\n",
			wantErr: `issuer "sgnl": stream.allowed_origins[1]: "http://keys.sgnl.example" must use https`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := strings.Replace(ssfIssuer("poll", ""), "      bearer_token_env: ACME_TOKEN\n", "      bearer_token_env: ACME_TOKEN\n"+tt.extra, 1)
			specs, err := ParseIssuers([]byte(yaml), vars, readFake(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := specs[0].AllowedOrigins(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("want %q, got %q", tt.want, got)
			}
		})
	}
}
