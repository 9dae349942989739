package idptest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
)

// CountingStore counts the token and user reads a provider makes through
// it, for tests that hold a path to a number of look-ups.
type CountingStore struct {
	idp.Storage
	Tokens, Users, Joined atomic.Int64
}

func (c *CountingStore) GetToken(ctx context.Context, hash string) (*store.Token, error) {
	c.Tokens.Add(1)
	return c.Storage.GetToken(ctx, hash)
}

func (c *CountingStore) GetUser(ctx context.Context, id string) (*store.User, error) {
	c.Users.Add(1)
	return c.Storage.GetUser(ctx, id)
}

func (c *CountingStore) GetTokenWithUser(ctx context.Context, hash string) (*store.Token, *store.User, error) {
	c.Joined.Add(1)
	return c.Storage.GetTokenWithUser(ctx, hash)
}

// Reset sets the counts to zero.
func (c *CountingStore) Reset() { c.Tokens.Store(0); c.Users.Store(0); c.Joined.Store(0) }

// Reads names the reads made since the last Reset, e.g.
// "GetTokenWithUser×1" ("" for none).
func (c *CountingStore) Reads() string {
	var b strings.Builder
	for _, n := range []struct {
		name string
		v    *atomic.Int64
	}{{"GetToken", &c.Tokens}, {"GetUser", &c.Users}, {"GetTokenWithUser", &c.Joined}} {
		if v := n.v.Load(); v > 0 {
			fmt.Fprintf(&b, "%s×%d ", n.name, v)
		}
	}
	return strings.TrimSpace(b.String())
}
