package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// authorizationCodeGrant exchanges an authorization code with its PKCE
// verifier for a logged-on login (RFC 6749 4.1.3, RFC 7636 4.5); a code used
// twice revokes what its first use produced.
type authorizationCodeGrant struct{ grant }

var _ GrantHandler = authorizationCodeGrant{}

// Handle implements GrantHandler.
func (g authorizationCodeGrant) Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error) {
	p := g.p
	raw, verifier := r.get("code"), r.get("code_verifier")
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("code is required")
	}
	hash := tokenhash.Sum(raw)
	code, err := p.st.ConsumeCode(ctx, hash, p.now())
	family := "code:" + hash[:32]
	switch {
	case errors.Is(err, store.ErrInactive):
		// A code used twice: what the first use produced is revoked too
		// (RFC 6749 4.1.2).
		if code.UsedAt.IsZero() {
			return nil, ErrInvalidGrant.WithDescription("authorization code expired")
		}
		hashes, _ := p.st.RevokeFamily(ctx, family, p.now())
		p.revoked(hashes)
		p.auditFail(ctx, c.ID, code.UserID, r.RemoteIP, "authorization code reused: its tokens revoked")
		return nil, ErrInvalidGrant.WithDescription("authorization code is invalid")
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidGrant.WithDescription("authorization code is invalid")
	case err != nil:
		return nil, ErrUnavailable.WithCause(err)
	}
	if code.ClientID != c.ID {
		return nil, ErrInvalidGrant.WithDescription("authorization code was issued to another client")
	}
	if r.get("redirect_uri") != code.RedirectURI {
		return nil, ErrInvalidGrant.WithDescription("redirect_uri does not match the authorization request")
	}
	if !pkceRE.MatchString(verifier) {
		return nil, ErrInvalidGrant.WithDescription("a valid code_verifier is required")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.CodeChallenge)) != 1 {
		p.auditFail(ctx, c.ID, code.UserID, r.RemoteIP, "PKCE verifier mismatch")
		return nil, ErrInvalidGrant.WithDescription("code_verifier does not match the code_challenge")
	}
	u, err := p.st.GetUser(ctx, code.UserID)
	if err != nil || !u.Enabled {
		return nil, ErrInvalidGrant.WithDescription("the user can no longer sign in")
	}
	var auth *store.Authentication
	if hasOpenID(code.Scope) {
		auth = code.Auth
		if auth == nil {
			auth = &store.Authentication{}
		}
	}
	resp, err := p.issueLogin(ctx, c, u, code.Scope, store.LevelLoggedOn, family, GrantAuthorizationCode, r.RemoteIP, auth)
	if err != nil || auth == nil {
		return resp, err
	}
	// OpenID Connect Core 3.1.3.3: the ID token, with the nonce of the
	// request.
	if err := p.addIDToken(resp, c, u, store.LevelLoggedOn, auth, code.Nonce); err != nil {
		return nil, err
	}
	return resp, nil
}
