// Package config reads setgate's two inputs: the process settings from the
// environment and the issuers from the issuers file. It decides what is
// valid and resolves secrets; it starts nothing and talks to no network.
//
// # Environment
//
// [Settings] holds every SETGATE_* variable (README "Environment"). [Load]
// reads them from the environment as a map with caarlos0/env; the struct
// tags name each variable, its default and its --help line
// ([PrintSettings]). [DefaultSettings] is the same defaults as a value, so
// code that starts a gateway (demo, bench, tests) changes the fields it
// needs instead of writing variables; [Settings.Validate] checks such a
// value as [Load] checks the environment.
//
// # Issuers file
//
// [LoadIssuers] reads the YAML file named by SETGATE_ISSUERS_FILE (README
// "The issuers file") and [ParseIssuers] turns its content into
// [Issuer] values: decoding is strict (an unknown or duplicate key is an
// error naming its line, issuer and key path), names are unique, two
// entries may not accept the same issuer and audience, and every secret
// (*_file: a file; *_env: a variable) is resolved, trimmed and kept out of
// errors and logs. [LoadedIssuers] carries the file's Hash (shown on
// /issuers) and a Fingerprint over the file and its secret files: a
// reload with the same Fingerprint changes nothing (README "Hot reload").
// Two Issuers that are reflect.DeepEqual configure the same issuer.
//
// # Bounded reads
//
// The issuers file, secret files and certificates must be regular files
// of bounded size ([ReadFile], [ReadSecretFile]; README "Trust
// boundaries"): a FIFO or a device is refused without blocking, and an
// error names the file, never its content.
package config
