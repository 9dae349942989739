package idp

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// RefreshStorage rotates refresh tokens.
type RefreshStorage interface {
	// RotateRefresh exchanges the refresh token with hash atomically: it
	// marks it used and stores what issue returns, in one step, so that of
	// two concurrent calls exactly one succeeds. A token already used
	// yields store.ErrTokenUsed with its record; a revoked or expired one
	// store.ErrInactive; an unknown one store.ErrNotFound. issue runs
	// inside the atomic step: it must not call the store. It gets the
	// token's user as the store has it (nil for a token of no user, or of
	// a user deleted since), read with the token.
	RotateRefresh(ctx context.Context, hash string, now time.Time, issue func(old *store.Token, user *store.User) ([]*store.Token, error)) (*store.Token, error)
	// RevokeFamily revokes a login's tokens and returns their hashes.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]string, error)
}

// refreshTokenGrant rotates a refresh token (RFC 6749 6): each is single-
// use, a reused one revokes its family after RefreshReuseGrace, and a
// logged-on session is never extended.
type refreshTokenGrant struct{ grant }

var _ GrantHandler = refreshTokenGrant{}

// Handle implements GrantHandler.
func (g refreshTokenGrant) Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error) {
	p := g.p
	raw := r.get("refresh_token")
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("refresh_token is required")
	}
	now := p.now()
	hash := tokenhash.Sum(raw)
	// The user comes with the token, read in the store's atomic step
	// (no separate look-up per request): a disabled or deleted user's
	// token is not rotated.
	var user *store.User // the refresh token's user, for the ID token
	var rawAT, rawRT string
	var at *store.Token
	old, err := p.st.RotateRefresh(ctx, hash, now, func(old *store.Token, u *store.User) ([]*store.Token, error) {
		if old.ClientID != c.ID {
			return nil, errWrongClient
		}
		if old.UserID != "" && (u == nil || !u.Enabled) {
			return nil, errUserDisabled{old.UserID}
		}
		user = u
		scope := old.Scope
		if req := r.get("scope"); req != "" {
			s, err := grantScope(req, strings.Fields(old.Scope))
			if err != nil {
				return nil, err
			}
			scope = s
		}
		rawAT, rawRT = newOpaque(AccessTokenPrefix), newOpaque(RefreshTokenPrefix)
		at = &store.Token{Hash: tokenhash.Sum(rawAT), Kind: store.KindAccess, ClientID: c.ID, UserID: old.UserID, Scope: scope,
			Level: old.Level, FamilyID: old.FamilyID, IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
		rt := &store.Token{Hash: tokenhash.Sum(rawRT), Kind: store.KindRefresh, ClientID: c.ID, UserID: old.UserID, Scope: scope,
			Level: old.Level, FamilyID: old.FamilyID, IssuedAt: now, AbsoluteExpiresAt: old.AbsoluteExpiresAt, Extra: old.Extra, Auth: old.Auth}
		if old.Level == store.LevelReturning {
			rt.ExpiresAt = now.Add(ttl(c.ReturningRefreshTTL, p.cfg.ReturningRefreshTTL))
			if rt.ExpiresAt.After(old.AbsoluteExpiresAt) {
				rt.ExpiresAt = old.AbsoluteExpiresAt
			}
		} else {
			rt.ExpiresAt = old.ExpiresAt // a logged-on session is never extended
		}
		if at.ExpiresAt.After(rt.AbsoluteExpiresAt) && !rt.AbsoluteExpiresAt.IsZero() {
			at.ExpiresAt = rt.AbsoluteExpiresAt
		}
		return []*store.Token{at, rt}, nil
	})
	var oerr *Error
	switch {
	case err == nil:
		p.tokens.invalidate([]string{hash})
		p.auditOK(ctx, "token_refreshed", c.ID, old.UserID, GrantRefreshToken, r.RemoteIP)
		resp := &TokenResponse{AccessToken: rawAT, TokenType: "Bearer", ExpiresIn: int64(at.ExpiresAt.Sub(now).Seconds()),
			RefreshToken: rawRT, Scope: at.Scope}
		// OpenID Connect Core 12.2: a new ID token for an openid login,
		// with the original auth_time, amr and sid, and no nonce.
		if old.Auth != nil && user != nil && user.ID == old.UserID && hasOpenID(at.Scope) {
			if err := p.addIDToken(resp, c, user, old.Level, old.Auth, ""); err != nil {
				return nil, err
			}
		}
		return resp, nil
	case errors.Is(err, store.ErrTokenUsed):
		if old.ClientID == c.ID && now.Sub(old.UsedAt) > p.cfg.RefreshReuseGrace {
			hashes, rerr := p.st.RevokeFamily(ctx, old.FamilyID, now)
			if rerr != nil {
				return nil, ErrUnavailable.WithCause(rerr)
			}
			p.audit.add(ctx, store.AuditEvent{At: now, Event: "refresh_reuse", ClientID: c.ID, UserID: old.UserID, Grant: GrantRefreshToken,
				Outcome: "denied", Reason: "reused refresh token: family revoked", RemoteIP: r.RemoteIP})
			p.revoked(hashes)
		}
		return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
	case errors.As(err, new(errUserDisabled)):
		p.auditFail(ctx, c.ID, err.(errUserDisabled).userID, r.RemoteIP, "refresh for a disabled or deleted user")
		return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInactive), errors.Is(err, errWrongClient):
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "invalid refresh token")
		return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
	case errors.As(err, &oerr):
		return nil, oerr
	}
	return nil, ErrUnavailable.WithCause(err)
}

var errWrongClient = errors.New("token belongs to another client")

// errUserDisabled refuses a rotation for a disabled or deleted user.
type errUserDisabled struct{ userID string }

func (e errUserDisabled) Error() string { return "the refresh token's user is disabled or deleted" }
