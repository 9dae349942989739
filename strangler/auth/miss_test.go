package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/auth"
)

// Issue 15: a token the gateway has not seen is looked up with one query
// (the token with its user) and no other read; a token it has seen costs
// none; a token not shaped like an access token costs no look-up at all;
// and a flood of unknown well-formed tokens costs one look-up each, once
// (the negative cache, bounded by CacheSize, answers repeats).
func TestCacheMissIsOneLookUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &idptest.CountingStore{Storage: memory.New()}
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := idp.New(idp.Options{Config: idp.Config{Issuer: "https://login.example", Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}},
		Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	secret, err := p.CreateClient(ctx, idp.NewClient{ID: "c", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	stage, err := auth.New(auth.Options{Issuer: auth.Local{P: p}, NegativeTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	route := &routes.Route{Name: "r", Auth: &routes.Auth{Policy: "oauth2"}}
	call := func(tok string) int {
		req := httptest.NewRequest("GET", "http://gw/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		g, ok := stage.Authorize(w, req, route)
		if !ok {
			return w.Code
		}
		if _, err := g.Credential(ctx, "orders-svc"); err != nil {
			t.Fatal(err)
		}
		return 200
	}
	reads := func() [3]int64 {
		r := [3]int64{st.Tokens.Load(), st.Users.Load(), st.Joined.Load()}
		st.Reset()
		return r
	}
	resp, err := p.Token(ctx, &idp.Request{Form: map[string][]string{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {secret}},
		RemoteIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	reads()
	if code := call(resp.AccessToken); code != 200 {
		t.Fatalf("a new token: %d", code)
	}
	if r := reads(); r != [3]int64{0, 0, 1} {
		t.Fatalf("reads (GetToken, GetUser, GetTokenWithUser) for a new token: %v, want [0 0 1]", r)
	}
	if code := call(resp.AccessToken); code != 200 {
		t.Fatalf("a seen token: %d", code)
	}
	if r := reads(); r != [3]int64{} {
		t.Fatalf("reads for a seen token: %v, want none", r)
	}

	for _, bad := range []string{"x", "ficus_at_short", "ficus_rt_" + resp.AccessToken[len("ficus_at_"):], resp.AccessToken + "x",
		"eyJhbGciOiJub25lIn0.e30.", resp.AccessToken[:len(resp.AccessToken)-1] + "."} {
		if code := call(bad); code != 401 {
			t.Fatalf("%q: %d, want 401", bad, code)
		}
	}
	if r := reads(); r != [3]int64{} {
		t.Fatalf("reads for malformed tokens: %v, want none", r)
	}

	const n = 200
	flood := make([]string, n)
	for i := range flood {
		var b [32]byte
		rand.Read(b[:])
		flood[i] = idp.AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	}
	for round := range 2 {
		for _, tok := range flood {
			if code := call(tok); code != 401 {
				t.Fatalf("unknown token: %d, want 401", code)
			}
		}
		want := [3]int64{0, 0, n}
		if round == 1 {
			want = [3]int64{}
		}
		if r := reads(); r != want {
			t.Fatalf("round %d of %d unknown tokens: reads %v, want %v", round, n, r, want)
		}
	}
}
