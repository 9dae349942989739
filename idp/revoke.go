package idp

import (
	"context"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// RevocationStorage revokes tokens. Each group revocation returns the
// hashes it revoked (for cache invalidation), including already-expired
// ones only while they are still stored.
type RevocationStorage interface {
	RevokeToken(ctx context.Context, hash string, now time.Time) error
	RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]string, error)
	RevokeUser(ctx context.Context, userID string, now time.Time) ([]string, error)
	// RevokeClient revokes every token issued to a client.
	RevokeClient(ctx context.Context, clientID string, now time.Time) ([]string, error)
}

// Revoke revokes a token of the calling client (RFC 7009). A refresh token
// takes its whole family with it. Unknown tokens, and tokens of other
// clients, are answered as success without effect.
func (p *Provider) Revoke(ctx context.Context, caller *store.Client, raw, ip string) error {
	if raw == "" {
		return ErrInvalidRequest.WithDescription("token is required")
	}
	tok, err := p.st.GetToken(ctx, tokenhash.Sum(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return ErrUnavailable.WithCause(err)
	}
	if tok.ClientID != caller.ID {
		return nil
	}
	now := p.now()
	var hashes []string
	if tok.Kind == store.KindRefresh && tok.FamilyID != "" {
		hashes, err = p.st.RevokeFamily(ctx, tok.FamilyID, now)
	} else {
		err = p.st.RevokeToken(ctx, tok.Hash, now)
		hashes = []string{tok.Hash}
	}
	if err != nil {
		return ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_revoked", caller.ID, tok.UserID, "", ip)
	p.revoked(hashes)
	return nil
}
