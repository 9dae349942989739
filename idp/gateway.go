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

// ResolveToken looks up an opaque access token for a gateway.
func (p *Provider) ResolveToken(ctx context.Context, raw string) (*Resolved, error) {
	v, err := p.lookup(ctx, tokenhash.Sum(raw))
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
