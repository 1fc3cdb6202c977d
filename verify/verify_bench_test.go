package verify_test

import (
	"context"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	srv := newJWKSServer(b, defaultJWKS(b)...)
	v := newVerifier(b, srv.URL, nil)
	r := keys()
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		k := r.keyFor(alg)
		tok := []byte(sign(b, k, baseHeader(alg, k), baseClaims()))
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatalf("%s: %v", alg, err)
		}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
