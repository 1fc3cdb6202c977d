// Package verify decides whether a Security Event Token is acceptable.
//
// It is a pure library: bytes and an issuer's configuration go in, a
// verified [SET] or an [*Error] carrying its RFC 8935 error code comes out.
// It never talks to NATS or HTTP clients other than the issuer's JWKS
// endpoint.
//
// # Pipeline
//
// [Verifier.Verify] runs the checks of RFC 8417, RFC 8725 and the OpenID
// Shared Signals profile in this order, stopping at the first failure:
//
//  1. compact JWS shape, strict base64url, UTF-8 JSON objects without
//     duplicate member names (invalid_request);
//  2. header: typ (ssf profile), crit, alg on the issuer's allow-list
//     (invalid_request / invalid_key);
//  3. iss equals the configured issuer (invalid_issuer);
//  4. key from the issuer's JWKS by kid, one rate-limited refresh on an
//     unknown kid, key alg/use/type fit the token, signature verifies
//     (invalid_key);
//  5. aud names one of the configured audiences (invalid_audience);
//  6. claim structure, time claims (iat not in the future and nbf
//     reached, each within [Config.MaxClockSkew]; iat not older than
//     [Config.MaxAge] when set), profile rules, subject identifiers and known
//     CAEP/RISC/SSF event payloads (invalid_request);
//  7. verification event state (invalid_state).
//
// # Subjects and payloads
//
// sub_id (and a legacy payload "subject") must be a well-formed RFC 9493 or
// SSF subject identifier: account, email, phone_number, iss_sub, opaque,
// did, uri, aliases, jwt_id, saml_assertion_id, ip-addresses or complex;
// other formats are proprietary and accepted. The payload of every CAEP
// 1.0, RISC 1.0 and SSF event type must carry its required fields with
// their registered values. Under [Config.Lenient] payload faults and
// subject value faults are accepted and listed in [SET.Warnings] instead;
// nothing in steps 1 to 5, no structural fault and no state check relaxes.
//
// Keys come only from the configured jwks_uri: the jku, x5u, x5c and jwk
// headers are never followed.
//
// # Keys are public keys
//
// The JWKS is parsed key by key. A key with private members or of type
// oct, and a key that does not parse, is too weak or of an unsupported
// type, is skipped (see [SkipReason]) without discarding the keys beside
// it; [KeyStatus] lists and counts what was skipped. A response without
// a usable key counts as a failed fetch and the cached keys stay.
package verify
