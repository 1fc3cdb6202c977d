// The setgate binary receives Security Event Tokens (RFC 8417) by HTTP push
// (RFC 8935), by HTTP poll (RFC 8936) and over OpenID Shared Signals (SSF
// 1.0) streams it sets up at the transmitter, verifies each against its
// issuer's JWKS and publishes every accepted event to NATS JetStream on a
// subject named after its type.
//
// Usage:
//
//	setgate [serve]     run the gateway (configured by SETGATE_* variables)
//	setgate demo        gateway + embedded NATS + built-in push, poll and SSF transmitters
//	setgate verify      run the gateway's verification of one SET
//	setgate send        sign a SET with a key file and push it
//	setgate tail        print the events arriving on the stream
//	setgate bench       measure throughput and latency, check the stream
//	setgate stream      manage an issuer's SSF stream (get|create|update|replace|status|delete|verify)
//	setgate subject     add or remove a subject of an issuer's SSF stream
//	setgate version     print the version
//
// Run "setgate --help" for every variable and its default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], environ(os.Environ()), os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "setgate:", err)
			os.Exit(1)
		}
	}
}

// environ turns KEY=value pairs into a map.
func environ(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// run is the whole program: main only adds signals and the exit code.
func run(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		usage(stdout)
		return nil
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		fs := newFlagSet("serve", stdout, "Run the gateway. Configuration comes from these environment variables:")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole process (go tool pprof) to this file until it exits (README \"Performance\")")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *cpuProfile != "" {
			stop, err := startCPUProfile(*cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		s, err := config.Load(vars)
		if err != nil {
			return err
		}
		log := newLogger(s, stderr)
		return serve(ctx, s, vars, log, nil)
	case "demo":
		return demo(ctx, args, vars, stdout, stderr)
	case "verify":
		return verifyVerb(ctx, args, vars, os.Stdin, stdout, stderr)
	case "send":
		return sendVerb(ctx, args, stdout, stderr)
	case "tail":
		return tailVerb(ctx, args, vars, stdout, stderr)
	case "bench":
		return benchVerb(ctx, args, vars, stdout, stderr)
	case "stream":
		return streamVerb(ctx, args, vars, stdout, stderr)
	case "subject":
		return subjectVerb(ctx, args, vars, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "setgate", version)
		return nil
	case "help":
		usage(stdout)
		return nil
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newFlagSet(name string, out io.Writer, intro string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: setgate %s [flags]\n\n%s\n\n", name, intro)
		config.PrintSettings(out)
		if hasFlags(fs) {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `setgate receives Security Event Tokens (RFC 8417) by HTTP push (RFC 8935), by HTTP
poll (RFC 8936) and over OpenID Shared Signals (SSF 1.0) push or poll streams it sets up
at the transmitter, verifies them against each issuer's JWKS and publishes every event
to NATS JetStream.

Usage:
  setgate [serve]    run the gateway (the default)
  setgate demo       gateway + embedded NATS + built-in push, poll and SSF transmitters, events printed
  setgate verify     run the gateway's verification of one SET and print the verdict
  setgate send       sign a SET with a key file and push it (a small transmitter)
  setgate tail       print the events arriving on the stream, one line each
  setgate bench      measure push and poll throughput and latency, check the stream
  setgate stream     get|create|update|replace|status|delete|verify an issuer's SSF stream at its transmitter
  setgate subject    add|remove a subject of an issuer's SSF stream at its transmitter
  setgate version    print the version
  setgate <command> --help

Environment (serve and demo):
`)
	config.PrintSettings(w)
}

func newLogger(s config.Settings, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if s.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(gateway.LogHandler(h))
}
