package bridge

import (
	"context"
	"testing"
)

// TestStreamRecord: a stream_id remembered through one connection is
// recalled through another (another replica), survives a new record
// handle (a restart), is per issuer, and can be forgotten.
func TestStreamRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b1, b2 := leaseBridges(t)
	open := func(b *Bridge, issuer string) *StreamRecord {
		t.Helper()
		r, err := b.StreamRecord(ctx, issuer)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	recall := func(r *StreamRecord) string {
		t.Helper()
		id, err := r.Recall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if id := recall(open(b1, "okta")); id != "" {
		t.Fatalf("fresh record: want none, got %q", id)
	}
	if err := open(b1, "okta").Remember(ctx, "stream-1"); err != nil {
		t.Fatal(err)
	}
	if id := recall(open(b2, "okta")); id != "stream-1" {
		t.Fatalf("other replica: want stream-1, got %q", id)
	}
	if id := recall(open(b2, "acme")); id != "" {
		t.Fatalf("another issuer: want none, got %q", id)
	}
	if err := open(b2, "okta").Remember(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if id := recall(open(b1, "okta")); id != "" {
		t.Fatalf("forgotten: want none, got %q", id)
	}
	if _, err := b1.StreamRecord(ctx, "bad..name"); err == nil {
		t.Fatal("want an invalid issuer name refused")
	}
}
