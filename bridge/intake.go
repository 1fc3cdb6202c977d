package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/setgate/setgate/verify"
)

// Verifier checks raw SETs for one issuer; *verify.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, raw []byte) (*verify.SET, error)
}

// Source is one configured issuer as a delivery source sees it: its name
// (path segment, subject token), its verifier and its subject overrides.
type Source struct {
	Name      string
	Verifier  Verifier
	Overrides map[string]string
}

// Accept is the single verify→publish path of setgate, shared by push and
// poll: it verifies raw for src and publishes every event, returning only
// after JetStream acknowledged all of them.
//
// A rejected SET returns its *verify.Error (logged once at info and
// announced best-effort on setgate.rejected.<issuer>); a SET that could
// not be persisted returns an error wrapping ErrUnavailable. A duplicate
// (same iss, jti) is not an error: Result.Duplicate is set.
func (b *Bridge) Accept(ctx context.Context, src *Source, raw []byte, d Delivery) (Result, error) {
	at := time.Now().UTC()
	set, err := src.Verifier.Verify(ctx, raw)
	if err != nil {
		var ve *verify.Error
		if errors.As(err, &ve) {
			b.reject(ctx, src, ve, d, at)
		}
		return Result{}, err
	}
	res, err := b.PublishSET(ctx, src.Name, src.Overrides, set, d, at)
	if err != nil {
		return res, err
	}
	b.log.DebugContext(ctx, "set accepted", "issuer", src.Name, "delivery", d, "jti", set.JTI,
		"subjects", res.Subjects, "duplicate", res.Duplicate)
	return res, nil
}

// Reject records a SET that a source refused before verification (a poll
// map key that is not the SET's jti, a value that is not a string): it is
// logged and announced exactly like a SET that failed verification.
func (b *Bridge) Reject(ctx context.Context, src *Source, e *verify.Error, d Delivery) {
	b.reject(ctx, src, e, d, time.Now().UTC())
}

// reject logs a rejection once at info (never the token) and announces it
// on setgate.rejected.<issuer>.
func (b *Bridge) reject(ctx context.Context, src *Source, e *verify.Error, d Delivery, at time.Time) {
	b.log.InfoContext(ctx, "set rejected", "issuer", src.Name, "delivery", d, "code", e.Code,
		"description", e.Description, "jti", e.JTI, "cause", e.Err)
	b.PublishRejection(src.Name, string(e.Code), e.Description, e.JTI, d, at)
}
