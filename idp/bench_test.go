package idp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
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

// BenchmarkEndpoints is the provider's own cost per request at the two
// read-heavy endpoints (issue 15), without the network: the handler on an
// httptest recorder, the in-memory store, a client whose secret is already
// verified (the cached path every machine client takes).
func BenchmarkEndpoints(b *testing.B) {
	ctx := context.Background()
	st := memory.New()
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := idp.New(idp.Options{Config: idp.Config{Issuer: "https://ficus.example", ClientRate: -1,
		Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}, Store: st, Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	secret, err := p.CreateClient(ctx, idp.NewClient{ID: "c", Grants: []string{idp.GrantClientCredentials, idp.PermissionIntrospect},
		Scopes: []string{"orders.read"}})
	if err != nil {
		b.Fatal(err)
	}
	h := p.Handler()
	call := func(b *testing.B, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("c", secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return w
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(call(b, "/oauth2/token", "grant_type=client_credentials").Body.Bytes(), &tok); err != nil {
		b.Fatal(err)
	}
	b.Run("introspect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, "/oauth2/introspect", "token="+tok.AccessToken)
		}
	})
	b.Run("client_credentials", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, "/oauth2/token", "grant_type=client_credentials")
		}
	})
}
