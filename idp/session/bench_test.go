package session_test

import (
	"context"
	"testing"
)

// BenchmarkLookupAndJPT is the session layer's share of a request on a
// session route: the look-up of a cached session and its reused JPT.
func BenchmarkLookupAndJPT(b *testing.B) {
	in := newMemInstance(b)
	ctx := context.Background()
	in.user(b, "ann", "C-1")
	s, _, _ := in.start(b, "")
	_, cookie := in.login(b, s, "ann")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := in.m.Lookup(ctx, cookie)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := in.m.JPT(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
