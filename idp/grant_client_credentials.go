package idp

import (
	"context"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// clientCredentialsGrant issues application tokens to a confidential client
// on its own behalf (RFC 6749 4.4), at the anonymous level, with an optional
// device_id.
type clientCredentialsGrant struct{ grant }

var _ GrantHandler = clientCredentialsGrant{}

// Handle implements GrantHandler.
func (g clientCredentialsGrant) Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error) {
	p := g.p
	scope, err := grantScope(r.get("scope"), c.Scopes)
	if err != nil {
		return nil, err
	}
	now := p.now()
	raw := newOpaque(AccessTokenPrefix)
	t := &store.Token{Hash: tokenhash.Sum(raw), Kind: store.KindAccess, ClientID: c.ID, Scope: scope, Level: store.LevelAnonymous,
		IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
	if dev := r.get("device_id"); dev != "" && len(dev) <= 128 {
		t.Extra = map[string]string{"device_id": dev}
	}
	if err := p.st.InsertTokens(ctx, t); err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_issued", c.ID, "", GrantClientCredentials, r.RemoteIP)
	return &TokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresAt.Sub(now).Seconds()), Scope: scope}, nil
}
