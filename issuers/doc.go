// Package issuers is the live set of issuers a gateway runs: for each
// entry of the issuers file, its verifier (JWKS cache), the
// [intake.Source] push and poll hand its SETs with, its poll loop
// (RFC 8936) and its SSF stream manager.
//
// # Applying a configuration
//
// [Set.Apply] makes a list of [config.Issuer] the running configuration
// (README "Hot reload"):
//
//  1. Every new or changed issuer is built — SSF discovery, the first
//     JWKS fetch, the poll lease — in parallel and outside any lock a
//     push, a poll loop or /issuers takes. Unchanged issuers (equal
//     configuration) keep running untouched.
//  2. When every build has finished, the new set is swapped in with one
//     atomic pointer store and registered with the gateway
//     ([Options.Register]). A build that failed leaves the whole
//     previous configuration in force; a cancelled context abandons the
//     builds and changes nothing.
//  3. Replaced and removed issuers are retired in the background: a poll
//     loop finishes its batch and sends its acknowledge-only request
//     before its successor starts polling; the stream manager, the
//     metadata refresh and the JWKS refresh stop.
//
// [Set.Get] and [Set.State] read the running set without a lock, so the
// request path and /issuers never wait for a build.
//
// # Discovery
//
// An issuer with discovery reads its SSF metadata
// (/.well-known/ssf-configuration) before it is built. When that fails,
// the issuer runs pending: its pushes are answered 503 (the transmitter
// retries; nothing is lost), /issuers shows the error, and discovery is
// retried after 1 s, 2 s, 4 s … up to 5 min between tries; once it
// succeeds, the issuer is built in full (outside any lock) and swapped in.
// A running issuer reads its metadata again every hour: a failure is
// shown on /issuers while the cached metadata keeps working; changed
// metadata (a new jwks_uri or endpoints) rebuilds the issuer.
//
// Every SSF and JWKS call goes through the outbound policy (no
// redirects, a timeout, answers capped) over [Options.Transport].
package issuers
