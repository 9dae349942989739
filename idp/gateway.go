package idp

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// ErrNotActive is returned for a token that is unknown, expired, revoked,
// or not an access token.
var ErrNotActive = errors.New("token not active")

// Resolved is an active access token with its user (nil for application
// tokens): what a gateway needs to enforce a policy and mint a JWT.
type Resolved struct {
	Token *store.Token
	User  *store.User
}

// ResolveToken looks up an opaque access token for a gateway. A token
// that is not shaped like the access tokens this provider issues is not
// active, and costs no look-up.
func (p *Provider) ResolveToken(ctx context.Context, raw string) (*Resolved, error) {
	if !AccessTokenShaped(raw) {
		return nil, ErrNotActive
	}
	return p.ResolveTokenHash(ctx, tokenhash.Sum(raw))
}

// ResolveTokenHash is ResolveToken for a caller that already holds the
// token's hash (tokenhash.Sum), as the gateway's exchange cache does: the
// token is hashed once per request. It reads the provider's short token
// cache but does not fill it, since such a caller caches the answer
// itself; a miss costs one query (the token joined with its user).
func (p *Provider) ResolveTokenHash(ctx context.Context, hash string) (*Resolved, error) {
	v, err, ok := p.cached(hash)
	if !ok {
		v, err = p.load(ctx, hash)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInactive) {
		return nil, ErrNotActive
	}
	if err != nil {
		return nil, err
	}
	if v.tok.Kind != store.KindAccess {
		return nil, ErrNotActive
	}
	return &Resolved{Token: v.tok, User: v.user}, nil
}

// AccessTokenShaped reports whether raw has the shape of an access token
// this provider issues: AccessTokenPrefix and 256 bits in unpadded
// base64url. It proves nothing; a token without that shape is certainly
// not one of ours, and needs no look-up.
func AccessTokenShaped(raw string) bool {
	b, ok := strings.CutPrefix(raw, AccessTokenPrefix)
	if !ok || len(b) != opaqueLen {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AnonymousToken is an application token of clientID that is never stored:
// the anonymous level, the client's scopes, living AccessTTL.
func (p *Provider) AnonymousToken(ctx context.Context, clientID string) (*Resolved, error) {
	c, err := p.getClient(ctx, clientID)
	if err != nil {
		return nil, err
	}
	now := p.now()
	return &Resolved{Token: &store.Token{Kind: store.KindAccess, ClientID: c.ID, Scope: strings.Join(c.Scopes, " "),
		Level: store.LevelAnonymous, IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}}, nil
}

// ResolveJWT verifies a ficus JWT for audience and returns what it grants,
// so that it can be re-minted for an upstream.
func (p *Provider) ResolveJWT(ctx context.Context, raw, audience string) (*Resolved, error) {
	c, err := p.VerifyJWT(raw, audience)
	if err != nil {
		return nil, ErrNotActive
	}
	tok := &store.Token{Kind: store.KindAccess, ClientID: c.ClientID, Scope: c.Scope, Level: c.Level, IssuedAt: p.now()}
	if c.ExpiresAt != nil {
		tok.ExpiresAt = c.ExpiresAt.Time
	}
	if c.DeviceID != "" {
		tok.Extra = map[string]string{"device_id": c.DeviceID}
	}
	res := &Resolved{Token: tok}
	if c.Subject != "" && c.Subject != c.ClientID {
		u, err := p.st.GetUser(ctx, c.Subject)
		if err != nil || !u.Enabled {
			return nil, ErrNotActive
		}
		tok.UserID, res.User = u.ID, u
	}
	return res, nil
}

// MintResolved signs a JWT for audience (see MintJWT).
func (p *Provider) MintResolved(r *Resolved, audience string) (string, time.Time, error) {
	return p.mint(r.Token, r.User, audience)
}
