// Package ssfadmin is the receiver's side of OpenID Shared Signals (SSF
// 1.0 §8) stream management done by hand, for the "setgate stream" and
// "setgate subject" commands: it discovers an issuer's transmitter,
// builds the management client as serve does (the outbound policy, the
// stream block's credential), and gets, creates, updates, replaces,
// deletes and verifies streams, changes their status and adds or removes
// subjects, printing each outcome for an operator as text or JSON.
//
// # Secrets
//
// Nothing it prints or returns holds the stream block's credential or a
// stream's authorization_header: a [StreamView] says only whether the
// transmitter returned one, and a password in an endpoint URL is redacted.
package ssfadmin
