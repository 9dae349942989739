package idp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// Issue 15: a token the gateway has not seen cost two queries (the token,
// then its user). Now it costs one, the token joined with its user, on
// both stores; a token that is not shaped like ours costs none; and a
// disabled user's token is not active.
func TestTokenLookupIsOneQuery(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "memory"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			var cnt *idptest.CountingStore
			ti := newTestIDPWith(t, pg, func(o *idp.Options) {
				cnt = &idptest.CountingStore{Storage: o.Store}
				o.Store = cnt
			}, func(c *idp.Config) { c.TokenCacheTTL = -1 })
			ctx := context.Background()
			at := ti.password(t, nil)["access_token"].(string)

			cnt.Reset()
			r, err := ti.p.ResolveToken(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if r.User == nil || r.User.ID != ti.userID || r.User.CustomerNumber != "C-1001" || r.Token.UserID != ti.userID {
				t.Fatalf("resolved %+v %+v", r.Token, r.User)
			}
			if got := cnt.Reads(); got != "GetTokenWithUser×1" {
				t.Fatalf("reads for a user token: %s, want GetTokenWithUser×1", got)
			}

			cnt.Reset()
			if _, err := ti.p.ResolveTokenHash(ctx, tokenhash.Sum(at)); err != nil {
				t.Fatal(err)
			}
			if got := cnt.Reads(); got != "GetTokenWithUser×1" {
				t.Fatalf("reads by hash: %s, want GetTokenWithUser×1", got)
			}

			cnt.Reset()
			for _, bad := range []string{"", "x", "ficus_at_", at + "A", at[:len(at)-1] + "!", strings.Replace(at, "ficus_at_", "ficus_rt_", 1)} {
				if _, err := ti.p.ResolveToken(ctx, bad); !errors.Is(err, idp.ErrNotActive) {
					t.Fatalf("ResolveToken(%q): %v, want ErrNotActive", bad, err)
				}
			}
			if got := cnt.Reads(); got != "" {
				t.Fatalf("malformed tokens were looked up: %s", got)
			}

			if err := ti.p.SetUserEnabled(ctx, ti.userID, false); err != nil {
				t.Fatal(err)
			}
			if _, err := ti.p.ResolveToken(ctx, at); !errors.Is(err, idp.ErrNotActive) {
				t.Fatalf("a disabled user's token: %v, want ErrNotActive", err)
			}
		})
	}
}
