package idp

import (
	"context"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/maypok86/otter/v2"
)

// tokenView is a token with its user, as introspection and minting need them.
type tokenView struct {
	tok  *store.Token
	user *store.User // nil for application tokens
}

// tokenCache keeps recently looked-up live tokens for TokenCacheTTL
// (bounded in size, keyed by the token's hash, never the token). A
// revocation made through this provider removes the entries at once;
// revocations made elsewhere are seen within the TTL.
type tokenCache struct {
	c *otter.Cache[string, tokenView]
}

func newTokenCache(ttl time.Duration, size int) *tokenCache {
	if ttl <= 0 {
		return nil
	}
	return &tokenCache{c: otter.Must(&otter.Options[string, tokenView]{
		MaximumSize:      size,
		ExpiryCalculator: otter.ExpiryWriting[string, tokenView](ttl),
	})}
}

func (tc *tokenCache) invalidate(hashes []string) {
	if tc == nil {
		return
	}
	for _, h := range hashes {
		tc.c.Invalidate(h)
	}
}

// lookup returns a token by hash with its user, from the cache when it is
// there, else from the store in one round trip (the token joined with its
// user), keeping it in the cache; concurrent misses of one hash share that
// round trip. Inactive tokens, and tokens of disabled or deleted users,
// come back with store.ErrInactive and are never cached.
func (p *Provider) lookup(ctx context.Context, hash string) (*tokenView, error) {
	if v, err, ok := p.cached(hash); ok {
		return v, err
	}
	v, err, _ := p.looking.Do(hash, func() (any, error) {
		v, err := p.load(ctx, hash)
		if err == nil && p.tokens != nil {
			p.tokens.c.Set(hash, *v)
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*tokenView), nil
}

// cached returns the cached token of hash, if the cache holds it.
func (p *Provider) cached(hash string) (*tokenView, error, bool) {
	if p.tokens == nil {
		return nil, nil, false
	}
	v, ok := p.tokens.c.GetIfPresent(hash)
	if !ok {
		return nil, nil, false
	}
	if !v.tok.Active(p.now()) {
		return nil, store.ErrInactive, true
	}
	return &v, nil, true
}

// load reads a token and its user from the store (one query) and checks
// that both are live.
func (p *Provider) load(ctx context.Context, hash string) (*tokenView, error) {
	tok, u, err := p.st.GetTokenWithUser(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !tok.Active(p.now()) {
		return nil, store.ErrInactive
	}
	if tok.UserID != "" && (u == nil || !u.Enabled) {
		return nil, store.ErrInactive
	}
	if tok.UserID == "" {
		u = nil
	}
	return &tokenView{tok: tok, user: u}, nil
}

// getClient returns a client, from a short-lived cache (ClientCacheTTL)
// that this provider clears when it deletes a client or rotates its
// secret.
func (p *Provider) getClient(ctx context.Context, id string) (*store.Client, error) {
	if p.clients != nil {
		if c, ok := p.clients.GetIfPresent(id); ok {
			return c, nil
		}
	}
	c, err := p.st.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.clients != nil {
		p.clients.Set(id, c)
	}
	return c, nil
}

func (p *Provider) forgetClient(id string) {
	p.secretCache.Delete(id)
	if p.clients != nil {
		p.clients.Invalidate(id)
	}
}

// ForgetTokens drops cached token records by hash (revocations heard from
// other instances).
func (p *Provider) ForgetTokens(hashes []string) { p.tokens.invalidate(hashes) }

// ForgetAll drops every cached token and client record.
func (p *Provider) ForgetAll() {
	if p.tokens != nil {
		p.tokens.c.InvalidateAll()
	}
	if p.clients != nil {
		p.clients.InvalidateAll()
	}
}
