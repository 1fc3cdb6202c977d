package bridge

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func BenchmarkPublishSET(b *testing.B) {
	cfg := testConfig("")
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.DataDir = b.TempDir()
	br := openBridge(b, cfg)
	ctx := context.Background()
	set := testSET("", sessionRevoked)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		set.JTI = "bench-" + strconv.Itoa(i)
		if _, err := br.PublishSET(ctx, "acme", nil, set, DeliveryPush, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubjectsFor(b *testing.B) {
	s, err := NewSubjects("secevent")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("known", func(b *testing.B) {
		for b.Loop() {
			s.For("acme", sessionRevoked, nil)
		}
	})
	b.Run("unknown", func(b *testing.B) {
		for b.Loop() {
			s.For("acme", "https://example.com/events/user-locked", nil)
		}
	})
}

// BenchmarkMessage is the per-event cost of building a message: the
// envelope's JSON, the subject and the headers, without NATS; "new" as a
// multi-event SET's messages are built, "reused" as PublishSET builds a
// single-event message, in a released message's storage.
func BenchmarkMessage(b *testing.B) {
	subjects, err := NewSubjects("secevent")
	if err != nil {
		b.Fatal(err)
	}
	br := &Bridge{subjects: subjects}
	set := testSET("bench-1", sessionRevoked)
	now := time.Now()
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := br.message("acme", nil, set, set.Events[0], DeliveryPush, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := br.getMsg()
			if err := br.build(m, "acme", nil, set, set.Events[0], DeliveryPush, now); err != nil {
				b.Fatal(err)
			}
			br.putMsg(m)
		}
	})
}
