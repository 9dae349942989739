package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/auth"
	"golang.org/x/oauth2/clientcredentials"
)

// BenchmarkCacheHitExchange is what the auth stage adds to a request whose
// token is cached: find the principal, check the route policy, put the
// reused JWT in the header. Compare with passthrough (nothing to do).
func BenchmarkCacheHitExchange(b *testing.B) {
	ctx := context.Background()
	is := idptest.Start(b)
	p := is.P
	secret := is.Client(b, idp.NewClient{ID: "c", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}})
	tok, err := (&clientcredentials.Config{ClientID: "c", ClientSecret: secret, TokenURL: is.TokenURL()}).Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	stage, _ := auth.New(auth.Options{Issuer: auth.Local{P: p}, MaxCacheTTL: time.Hour})
	route := &routes.Route{Name: "r", Auth: &routes.Auth{Policy: "oauth2", ScopesAll: []string{"orders.read"}}}
	req := httptest.NewRequest("GET", "http://gw/orders", nil)
	w := httptest.NewRecorder()
	run := func(b *testing.B) {
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		g, ok := stage.Authorize(w, req, route)
		if !ok {
			b.Fatal("refused")
		}
		if _, err := g.Credential(req.Context(), "orders-svc"); err != nil {
			b.Fatal(err)
		}
	}
	run(b) // warm the cache and mint once
	b.Run("cache-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(b)
		}
	})
	b.Run("passthrough-baseline", func(b *testing.B) {
		b.ReportAllocs()
		pass := &routes.Route{Name: "p"}
		for b.Loop() {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			stage.Authorize(w, req, pass)
		}
	})
	_ = http.StatusOK
}

// BenchmarkCacheMissExchange is what the auth stage costs for a token it
// has never seen (issue 15): hash it once, look it up in the provider's
// store (the in-memory one here: no round trip; one joined query on
// PostgreSQL), keep the principal, mint and sign a JWT. Every iteration
// carries a different token, issued before the timer starts.
func BenchmarkCacheMissExchange(b *testing.B) {
	ctx := context.Background()
	is := idptest.Start(b, func(o *idptest.Options) { o.Config.ClientRate = -1 })
	p := is.P
	secret := is.Client(b, idp.NewClient{ID: "c", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}})
	stage, _ := auth.New(auth.Options{Issuer: auth.Local{P: p}, MaxCacheTTL: time.Hour, CacheSize: max(b.N, 1000)})
	route := &routes.Route{Name: "r", Auth: &routes.Auth{Policy: "oauth2", ScopesAll: []string{"orders.read"}}}
	toks := make([]string, b.N)
	for i := range toks {
		r, err := p.Token(ctx, &idp.Request{Form: map[string][]string{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {secret}},
			RemoteIP: "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = r.AccessToken
	}
	req := httptest.NewRequest("GET", "http://gw/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Header.Set("Authorization", "Bearer "+toks[i])
		g, ok := stage.Authorize(w, req, route)
		if !ok {
			b.Fatal("refused")
		}
		if _, err := g.Credential(req.Context(), "orders-svc"); err != nil {
			b.Fatal(err)
		}
	}
}
