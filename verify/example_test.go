package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/setgate/setgate/verify"
)

// A Verifier checks SETs from one issuer against its JWKS. Here the issuer
// publishes an ES256 key on a local JWKS endpoint.
func ExampleVerifier_Verify() {
	ctx := context.Background()

	// The issuer's key and JWKS endpoint.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := jwkset.NewJWKFromKey(priv.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: "2026-01", ALG: jwkset.AlgES256, USE: jwkset.UseSig},
	})
	store := jwkset.NewMemoryStorage()
	_ = store.KeyWrite(ctx, jwk)
	jwks, _ := store.JSONPublic(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	defer srv.Close()

	v, err := verify.New(ctx, verify.Config{
		Name:       "acme",
		Issuer:     "https://idp.example.com/",
		Audience:   []string{"https://setgate.example.com/"},
		JWKSURI:    srv.URL, // http is allowed for loopback hosts only
		Algorithms: []string{"ES256"},
	}, verify.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	// The transmitter signs a CAEP session-revoked SET.
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss":    "https://idp.example.com/",
		"aud":    "https://setgate.example.com/",
		"iat":    time.Now().Unix(),
		"jti":    "4d3559ec67504aaba65d40b0363faad8",
		"sub_id": map[string]any{"format": "email", "email": "user@example.com"},
		"events": map[string]any{
			"https://schemas.openid.net/secevent/caep/event-type/session-revoked": map[string]any{},
		},
	})
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = "2026-01"
	raw, _ := tok.SignedString(priv)

	set, err := v.Verify(ctx, []byte(raw))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted", set.JTI, set.Events[0].Type)

	// A SET for another audience is rejected with its RFC 8935 code.
	tok.Claims.(jwt.MapClaims)["aud"] = "https://other.example.com/"
	raw, _ = tok.SignedString(priv)
	_, err = v.Verify(ctx, []byte(raw))
	fmt.Println("rejected", verify.ErrorCode(err))

	// Output:
	// accepted 4d3559ec67504aaba65d40b0363faad8 https://schemas.openid.net/secevent/caep/event-type/session-revoked
	// rejected invalid_audience
}
