package idp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/claims"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MintJWT signs an RFC 9068 access token for an active opaque token: iss,
// sub, aud, exp, iat, jti, client_id, scope, the user level, and for users
// the customer number and profile claims. It expires after JWTTTL, never
// after the opaque token.
func (p *Provider) MintJWT(ctx context.Context, tok *store.Token, audience string) (string, time.Time, error) {
	var u *store.User
	if tok.UserID != "" {
		var err error
		if u, err = p.st.GetUser(ctx, tok.UserID); err != nil {
			return "", time.Time{}, err
		}
	}
	return p.mint(tok, u, audience)
}

func (p *Provider) mint(tok *store.Token, u *store.User, audience string) (string, time.Time, error) {
	now := p.now()
	exp := now.Add(p.cfg.JWTTTL)
	if tok.ExpiresAt.Before(exp) {
		exp = tok.ExpiresAt
	}
	m := jwt.MapClaims{}
	sub := tok.ClientID
	if u != nil {
		for k, v := range u.Claims {
			m[k] = v
		}
		sub = u.ID
		if u.CustomerNumber != "" {
			m["customer_number"] = u.CustomerNumber
		}
	}
	for k, v := range tok.Extra {
		m[k] = v
	}
	// Registered and ficus claims last: a profile claim never overrides them.
	ac := claims.Access{RegisteredClaims: jwt.RegisteredClaims{Issuer: p.cfg.Issuer, Subject: sub, Audience: jwt.ClaimStrings{audience},
		ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: uuid.NewString()}, ClientID: tok.ClientID, Level: tok.Level, Scope: tok.Scope}
	ac.Put(m)
	s, err := p.keys.Sign(m, claims.AccessTokenType)
	return s, exp, err
}

// VerifyJWT verifies a ficus access JWT for audience: signature by a
// published key with that key's algorithm only, typ at+jwt, iss, aud, exp.
func (p *Provider) VerifyJWT(tokenString, audience string) (*claims.Access, error) {
	var c claims.Access
	t, err := jwt.ParseWithClaims(tokenString, &c, p.keys.Keyfunc,
		jwt.WithValidMethods(p.keys.Algorithms()), jwt.WithIssuer(p.cfg.Issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second), jwt.WithTimeFunc(p.now))
	if err != nil {
		return nil, err
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, claims.AccessTokenType) {
		return nil, fmt.Errorf("typ %q is not %s", typ, claims.AccessTokenType)
	}
	return &c, nil
}
