package idp

import (
	"context"
	"errors"
	"slices"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// Token type URIs (RFC 8693).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// tokenExchangeGrant swaps an active opaque access token for a JWT for one
// of the client's audiences (RFC 8693).
type tokenExchangeGrant struct{ grant }

var _ GrantHandler = tokenExchangeGrant{}

// Handle implements GrantHandler.
func (g tokenExchangeGrant) Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error) {
	p := g.p
	subject, typ := r.get("subject_token"), r.get("subject_token_type")
	if subject == "" || typ == "" {
		return nil, ErrInvalidRequest.WithDescription("subject_token and subject_token_type are required")
	}
	if typ != TokenTypeAccessToken {
		return nil, ErrInvalidRequest.WithDescription("subject_token_type must be %s", TokenTypeAccessToken)
	}
	if rt := r.get("requested_token_type"); rt != "" && rt != TokenTypeJWT && rt != TokenTypeAccessToken {
		return nil, ErrInvalidRequest.WithDescription("requested_token_type must be %s", TokenTypeJWT)
	}
	aud := r.get("audience")
	if aud == "" && len(c.Audiences) == 1 {
		aud = c.Audiences[0]
	}
	if aud == "" || !slices.Contains(c.Audiences, aud) {
		return nil, ErrInvalidTarget.WithDescription("audience %q is not allowed for this client", aud)
	}
	v, err := p.lookup(ctx, tokenhash.Sum(subject))
	now := p.now()
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInactive) || (err == nil && v.tok.Kind != store.KindAccess) {
		return nil, ErrInvalidGrant.WithDescription("subject_token is not active")
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	tok := v.tok
	jwtStr, exp, err := p.mint(tok, v.user, aud)
	if err != nil {
		return nil, ErrServer.WithCause(err)
	}
	return &TokenResponse{AccessToken: jwtStr, IssuedTokenType: TokenTypeJWT, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(now).Seconds()), Scope: tok.Scope}, nil
}
