package idp

import (
	"context"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// TokenStorage keeps issued tokens, by hash.
type TokenStorage interface {
	// InsertTokens stores tokens atomically (all or none).
	InsertTokens(ctx context.Context, ts ...*store.Token) error
	// GetToken returns a token by hash, active or not; store.ErrNotFound if
	// there is none.
	GetToken(ctx context.Context, hash string) (*store.Token, error)
	// GetTokenWithUser returns a token by hash, active or not, with its
	// user in the same round trip, without the user's password hash: nil
	// for an application token, and nil too when the token's user no
	// longer exists. store.ErrNotFound if there is no token.
	GetTokenWithUser(ctx context.Context, hash string) (*store.Token, *store.User, error)
	// EvictOldest revokes a user's oldest live refresh families beyond
	// keep and returns the hashes it revoked.
	EvictOldest(ctx context.Context, userID string, keep int, now time.Time) ([]string, error)
}

// issueLogin issues an access token and a refresh token for a new login
// family, then enforces the per-user token limit. auth, for an OpenID
// Connect login, is kept with the refresh token for the ID tokens of
// later refreshes.
func (p *Provider) issueLogin(ctx context.Context, c *store.Client, u *store.User, scope, refreshLevel, family, grant, ip string,
	auth *store.Authentication) (*TokenResponse, error) {
	now := p.now()
	rawAT, rawRT := newOpaque(AccessTokenPrefix), newOpaque(RefreshTokenPrefix)
	at := &store.Token{Hash: tokenhash.Sum(rawAT), Kind: store.KindAccess, ClientID: c.ID, UserID: u.ID, Scope: scope,
		Level: store.LevelLoggedOn, FamilyID: family, IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
	rt := &store.Token{Hash: tokenhash.Sum(rawRT), Kind: store.KindRefresh, ClientID: c.ID, UserID: u.ID, Scope: scope,
		Level: refreshLevel, FamilyID: family, IssuedAt: now, Auth: auth}
	if refreshLevel == store.LevelReturning {
		rt.ExpiresAt = now.Add(ttl(c.ReturningRefreshTTL, p.cfg.ReturningRefreshTTL))
		rt.AbsoluteExpiresAt = now.Add(p.cfg.ReturningRefreshCap)
	} else {
		rt.ExpiresAt = now.Add(ttl(c.LoggedOnRefreshTTL, p.cfg.LoggedOnRefreshTTL))
		rt.AbsoluteExpiresAt = rt.ExpiresAt
		if at.ExpiresAt.After(rt.ExpiresAt) { // never beyond the session
			at.ExpiresAt = rt.ExpiresAt
		}
	}
	if err := p.st.InsertTokens(ctx, at, rt); err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_issued", c.ID, u.ID, grant, ip)
	if evicted, err := p.st.EvictOldest(ctx, u.ID, p.cfg.MaxFamiliesPerUser, now); err != nil {
		p.log.Error("token limit eviction failed", "user_id", u.ID, "error", err.Error())
	} else if len(evicted) > 0 {
		p.auditOK(ctx, "tokens_evicted", c.ID, u.ID, grant, ip)
		p.revoked(evicted)
	}
	return &TokenResponse{AccessToken: rawAT, TokenType: "Bearer", ExpiresIn: int64(at.ExpiresAt.Sub(now).Seconds()),
		RefreshToken: rawRT, Scope: scope}, nil
}
