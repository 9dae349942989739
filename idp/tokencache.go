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
// there. Inactive tokens, and tokens of disabled users, come back with
// store.ErrInactive.
func (p *Provider) lookup(ctx context.Context, hash string) (*tokenView, error) {
	now := p.now()
	if p.tokens != nil {
		if v, ok := p.tokens.c.GetIfPresent(hash); ok {
			if !v.tok.Active(now) {
				return nil, store.ErrInactive
			}
			return &v, nil
		}
	}
	tok, err := p.st.GetToken(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !tok.Active(now) {
		return nil, store.ErrInactive
	}
	v := tokenView{tok: tok}
	if tok.UserID != "" {
		u, err := p.st.GetUser(ctx, tok.UserID)
		if err != nil || !u.Enabled {
			return nil, store.ErrInactive
		}
		v.user = u
	}
	if p.tokens != nil {
		p.tokens.c.Set(hash, v)
	}
	return &v, nil
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
