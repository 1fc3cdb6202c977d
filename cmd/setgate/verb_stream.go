package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/setgate/setgate/bridge"
	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/internal/ssfadmin"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// streamActions are the sub-commands of "setgate stream".
var streamActions = []string{"get", "create", "update", "replace", "status", "delete", "verify"}

// streamVerb runs "setgate stream get|create|update|replace|status|delete|verify":
// the SSF stream management serve does for an issuer's stream block, by
// hand, and the receiver's side of SSF 1.0 §8 serve does not do on its
// own (replace, status change). It discovers the transmitter, builds the
// client and the stream configuration exactly as serve does (create and
// update run the same Manager.Ensure), and calls the transmitter's
// configuration, status and verification endpoints with the stream
// block's credential.
func streamVerb(ctx context.Context, args []string, vars map[string]string, stdout, stderr io.Writer) error {
	fs := newVerbFlagSet("stream", "get|create|update|delete|verify|replace|status [flags]", stdout,
		"Manage an issuer's SSF stream at its transmitter by hand, with the issuers file's stream block\n"+
			"(discovery, credential, delivery, events_requested, description) as serve uses it:\n"+
			"  get      the stream (--stream-id or stream.stream_id), or every stream listed at the\n"+
			"           configuration endpoint, each with its status\n"+
			"  create   set up the stream serve would (reuse, update when different, or create)\n"+
			"  update   the same as create; with --stream-id, that stream\n"+
			"  replace  PUT the whole configuration (events_requested, description, delivery) to the stream\n"+
			"  status   enabled|paused|disabled [--reason TEXT]: ask the transmitter to change the status\n"+
			"  delete   delete --stream-id ID, or --all-mine: the streams pushing to this setgate\n"+
			"           (SETGATE_PUBLIC_URL/events/<issuer>) and every poll stream\n"+
			"  verify   ask the transmitter for a verification event (without state, so a running\n"+
			"           setgate accepts it as the transmitter's own)\n"+
			"Without --stream-id, replace, status and verify use stream.stream_id, else the only (or own)\n"+
			"stream listed. The issuers file is loaded as serve loads it, so the secrets it names must be readable.",
		"ISSUERS_FILE", "PUBLIC_URL", "SUBJECT_PREFIX", "LOG_LEVEL", "LOG_FORMAT")
	issuersPath := fs.String("issuers", "", "issuers file (default $SETGATE_ISSUERS_FILE)")
	name := fs.String("issuer", "", "name of the issuer in the file (may be left out when one issuer has a stream block)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	streamID := fs.String("stream-id", "", "the stream (delete: required unless --all-mine; others: default stream.stream_id, else the only or own stream)")
	allMine := fs.Bool("all-mine", false, "delete: every stream pushing to this setgate's endpoint and every poll stream")
	reason := fs.String("reason", "", "status: the reason given to the transmitter")
	timeout := fs.Duration("timeout", time.Minute, "bound on the whole command")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || !slices.Contains(streamActions, pos[0]) {
		fs.Usage()
		if len(pos) == 0 {
			return errors.New("stream: name an action: " + strings.Join(streamActions, ", "))
		}
		return fmt.Errorf("stream: unknown action %q (want %s)", pos[0], strings.Join(streamActions, ", "))
	}
	action := pos[0]
	fail := func(err error) error { return fmt.Errorf("stream %s: %w", action, err) }
	var newStatus string
	switch {
	case action == "status" && len(pos) != 2:
		return fail(errors.New("name the new status: enabled, paused or disabled"))
	case action == "status":
		newStatus = pos[1]
		if !slices.Contains([]string{ssf.StatusEnabled, ssf.StatusPaused, ssf.StatusDisabled}, newStatus) {
			return fail(fmt.Errorf("%q is not enabled, paused or disabled", newStatus))
		}
	case len(pos) > 1:
		return fmt.Errorf("stream: want one action, got %q", pos)
	}
	switch {
	case action != "delete" && *allMine:
		return fail(errors.New("--all-mine is only for delete"))
	case action == "delete" && *allMine && *streamID != "":
		return fail(errors.New("--stream-id and --all-mine exclude each other"))
	case action == "delete" && !*allMine && *streamID == "":
		return fail(errors.New("name the stream with --stream-id ID (see stream get), or use --all-mine"))
	case action == "create" && *streamID != "":
		return fail(fmt.Errorf("--stream-id is not for create (update uses the stream it names)"))
	case action != "status" && *reason != "":
		return fail(errors.New("--reason is only for status"))
	}

	ctx, cancel := withTimeout(ctx, *timeout)
	defer cancel()
	admin, s, err := openStreamAdmin(ctx, vars, *issuersPath, *name, *streamID, *asJSON, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	fail = func(err error) error { return fmt.Errorf("stream %s: issuer %q: %w", action, admin.Issuer().Name, err) }
	switch action {
	case "get":
		err = admin.Get(ctx)
	case "create", "update":
		err = admin.Ensure(ctx)
	case "replace":
		err = admin.Replace(ctx)
	case "status":
		err = admin.SetStatus(ctx, newStatus, *reason)
	case "delete":
		err = admin.Delete(ctx, *streamID, *allMine)
	case "verify":
		subjects, serr := bridge.NewSubjects(s.SubjectPrefix)
		if serr != nil {
			return serr
		}
		spec := admin.Issuer()
		err = admin.Verify(ctx, subjects.For(spec.Name, verify.EventVerification, spec.Overrides))
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// openStreamAdmin loads the issuers file as serve loads it, picks the
// issuer and opens its stream administration (discovery, client).
func openStreamAdmin(ctx context.Context, vars map[string]string, issuersPath, name, streamID string, asJSON bool, stdout, stderr io.Writer) (*ssfadmin.Admin, config.Settings, error) {
	s, err := config.Load(vars)
	if err != nil {
		return nil, s, err
	}
	if issuersPath == "" {
		issuersPath = s.IssuersFile
	}
	if issuersPath == "" {
		return nil, s, errors.New("name the issuers file with --issuers or SETGATE_ISSUERS_FILE")
	}
	loaded, err := config.LoadIssuers(issuersPath, vars)
	if err != nil {
		return nil, s, err
	}
	spec, err := ssfadmin.PickIssuer(loaded.Issuers, name)
	if err != nil {
		return nil, s, err
	}
	admin, err := ssfadmin.Open(ctx, ssfadmin.Options{
		Issuer: spec, PublicURL: s.PublicURL, StreamID: streamID,
		Logger: newLogger(s, stderr).With("issuer", spec.Name), Out: stdout, JSON: asJSON,
	})
	return admin, s, err
}

// withTimeout bounds ctx by d when d > 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}
