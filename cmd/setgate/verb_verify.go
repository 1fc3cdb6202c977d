package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/present"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// verifyVerb runs "setgate verify": the gateway's verification of one SET
// for one issuer of the issuers file (the same config.LoadIssuers, the same
// verify.Options from the SETGATE_* variables), without NATS, and prints
// the verdict. An accepted SET returns nil; a rejected one an error, so the
// exit status is 0 or 1.
func verifyVerb(ctx context.Context, args []string, vars map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("verify", "[flags] [file|-|token]", stdout,
		"Run the gateway's verification of one SET and print the verdict: the RFC 8935 code and\n"+
			"description, the decoded header and claims, and each event with the subject it would be\n"+
			"published on. The argument is a file holding the SET, - (or nothing) for stdin, or the\n"+
			"compact JWS itself. Exit status 0: accepted, 1: not.\n"+
			"The issuers file is loaded as serve loads it, so the issuer's push secret must be readable.",
		"ISSUERS_FILE", "SUBJECT_PREFIX", "MAX_BODY_BYTES", "JWKS_FETCH_TIMEOUT", "JWKS_REFRESH_INTERVAL",
		"JWKS_MIN_REFRESH_INTERVAL", "LOG_LEVEL", "LOG_FORMAT")
	issuersPath := fs.String("issuers", "", "issuers file (default $SETGATE_ISSUERS_FILE)")
	name := fs.String("issuer", "", "name of the issuer in the file (may be left out when the file has one issuer)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fs.Usage()
		return fmt.Errorf("verify: want at most one token argument, got %d", len(pos))
	}
	s, err := config.Load(vars)
	if err != nil {
		return err
	}
	path := *issuersPath
	if path == "" {
		path = s.IssuersFile
	}
	if path == "" {
		return errors.New("verify: name the issuers file with --issuers or SETGATE_ISSUERS_FILE")
	}
	loaded, err := config.LoadIssuers(path, vars)
	if err != nil {
		return err
	}
	spec, err := pickIssuer(loaded.Issuers, *name)
	if err != nil {
		return err
	}
	subjects, err := bridge.NewSubjects(s.SubjectPrefix)
	if err != nil {
		return err
	}
	raw, err := readToken(pos, stdin, s.MaxBodyBytes)
	if err != nil {
		return err
	}

	vd := present.Verdict{Issuer: spec.Name, Events: []present.VerdictEvent{}}
	switch {
	case len(raw) == 0: // as the gateway answers an empty push body
		vd.Code, vd.Description = verify.CodeInvalidRequest, "The request body is empty; it must be the SET."
	case int64(len(raw)) > s.MaxBodyBytes: // as the gateway answers 413
		vd.Code, vd.Description = verify.CodeInvalidRequest, "The SET is larger than this receiver accepts."
	default:
		cfg := spec.Verify
		if spec.Discovery && cfg.JWKSURI == "" {
			// As serve does: the jwks_uri comes from the transmitter's SSF
			// metadata (README "Shared Signals streams").
			m, err := ssf.Discover(ctx, nil, cfg.Issuer, spec.DiscoverOptions())
			if err != nil {
				return fmt.Errorf("verify: issuer %q: %w", spec.Name, err)
			}
			cfg.JWKSURI = m.JWKSURI
		}
		v, err := verify.New(ctx, cfg, verify.Options{
			FetchTimeout:       s.JWKSFetchTimeout,
			RefreshInterval:    s.JWKSRefresh,
			MinRefreshInterval: s.JWKSMinRefresh,
			Logger:             newLogger(s, stderr).With("issuer", spec.Name),
		})
		if err != nil {
			return err
		}
		set, err := v.Verify(ctx, raw)
		ks := v.KeyStatus(ctx)
		v.Close()
		vd.Fill(spec, subjects, raw, set, err)
		vd.JWKS = &ks
	}

	if err := vd.Print(stdout, *asJSON); err != nil {
		return err
	}
	if !vd.Accepted {
		return fmt.Errorf("verify: SET rejected: %s: %s", vd.Code, vd.Description)
	}
	return nil
}

// pickIssuer returns the issuer called name, or the only one when name is
// empty.
func pickIssuer(specs []config.Issuer, name string) (config.Issuer, error) {
	names := make([]string, len(specs))
	for i, sp := range specs {
		if sp.Name == name || name == "" && len(specs) == 1 {
			return sp, nil
		}
		names[i] = sp.Name
	}
	if name == "" {
		return config.Issuer{}, fmt.Errorf("verify: --issuer is required; the file has %s", strings.Join(names, ", "))
	}
	return config.Issuer{}, fmt.Errorf("verify: no issuer %q in the file (it has %s)", name, strings.Join(names, ", "))
}

// readToken returns the SET named by the single argument: "-" (or no
// argument) reads stdin, an existing file is read, and any other value
// must itself look like a compact JWS (RFC 7515 §7.1). At most limit+1
// bytes are read, so an oversized SET can be reported as the gateway
// would.
func readToken(pos []string, stdin io.Reader, limit int64) ([]byte, error) {
	if len(pos) == 0 || pos[0] == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, limit+1))
		if err != nil {
			return nil, fmt.Errorf("verify: read the SET from stdin: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	arg := pos[0]
	fi, statErr := os.Stat(arg)
	switch {
	case statErr == nil && fi.IsDir():
		return nil, fmt.Errorf("verify: %s is a directory, not a file holding a SET", shortArg(arg))
	case statErr == nil:
		f, err := os.Open(arg)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			return nil, fmt.Errorf("verify: read %s: %w", arg, err)
		}
		return bytes.TrimSpace(b), nil
	case looksLikeJWS(strings.TrimSpace(arg)):
		// A token is usually longer than a file name may be, so Stat
		// fails with ENAMETOOLONG rather than "not exist".
		return []byte(strings.TrimSpace(arg)), nil
	case errors.Is(statErr, os.ErrNotExist):
		return nil, fmt.Errorf("verify: %s: no such file, and not a compact JWS (header.payload.signature) either", shortArg(arg))
	default:
		return nil, fmt.Errorf("verify: %s: %w", shortArg(arg), errors.Unwrap(statErr))
	}
}

// compactJWS is the shape of a compact JWS: three base64url parts (the
// payload and signature may be empty, padding is left to the verifier to
// refuse).
var compactJWS = regexp.MustCompile(`^[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*$`)

// looksLikeJWS reports whether s has the shape of a compact JWS.
func looksLikeJWS(s string) bool { return compactJWS.MatchString(s) }

// shortArg quotes an argument for an error message, cut to a readable
// length.
func shortArg(s string) string {
	const max = 120
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// newVerbFlagSet is newFlagSet for the operator verbs: a synopsis, the
// flags, and only the SETGATE_* variables (by suffix) the verb reads.
func newVerbFlagSet(name, synopsis string, out io.Writer, intro string, envs ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: setgate %s %s\n\n%s\n\nFlags:\n", name, synopsis, intro)
		fs.PrintDefaults()
		if len(envs) > 0 {
			fmt.Fprintln(out, "\nEnvironment:")
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			t := reflect.TypeOf(config.Settings{})
			for i := range t.NumField() {
				f := t.Field(i)
				if !slices.Contains(envs, f.Tag.Get("env")) {
					continue
				}
				def := f.Tag.Get("envDefault")
				if def == "" {
					def = "(empty)"
				}
				fmt.Fprintf(tw, "  %s%s\t%s\t%s\n", config.EnvPrefix, f.Tag.Get("env"), def, f.Tag.Get("help"))
			}
			_ = tw.Flush()
		}
	}
	return fs
}

// parseInterspersed parses flags before and after positional arguments
// ("verify TOKEN --json" as well as "verify --json TOKEN") and returns the
// positional ones; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
