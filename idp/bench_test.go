package idp_test

import (
	"context"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
)

// BenchmarkMintJWT is the cost of minting one RFC 9068 JWT per algorithm.
func BenchmarkMintJWT(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{idp.AlgEdDSA, idp.AlgES256, idp.AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			st := memory.New()
			keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Alg: alg})
			if err != nil {
				b.Fatal(err)
			}
			p, _ := idp.New(idp.Options{Config: idp.Config{Issuer: "https://ficus.example"}, Store: st, Keys: keys})
			defer p.Close()
			now := time.Now()
			tok := &store.Token{Hash: "h", Kind: store.KindAccess, ClientID: "app", Scope: "orders.read orders.write",
				Level: store.LevelAnonymous, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := p.MintJWT(ctx, tok, "orders-svc"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
