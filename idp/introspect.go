package idp

import (
	"context"
	"errors"
	"slices"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// PermissionIntrospect, among a client's grants, lets it call the
// introspection endpoint.
const PermissionIntrospect = "introspection"

// Introspection is an RFC 7662 answer.
type Introspection struct {
	Active         bool   `json:"active"`
	Scope          string `json:"scope,omitempty"`
	ClientID       string `json:"client_id,omitempty"`
	Username       string `json:"username,omitempty"`
	TokenType      string `json:"token_type,omitempty"`
	Exp            int64  `json:"exp,omitempty"`
	Iat            int64  `json:"iat,omitempty"`
	Sub            string `json:"sub,omitempty"`
	Iss            string `json:"iss,omitempty"`
	Level          string `json:"level,omitempty"`
	CustomerNumber string `json:"customer_number,omitempty"`
	DeviceID       string `json:"device_id,omitempty"`
}

// Introspect answers RFC 7662 for an authenticated caller allowed to
// introspect.
func (p *Provider) Introspect(ctx context.Context, caller *store.Client, raw string) (*Introspection, error) {
	if !slices.Contains(caller.Grants, PermissionIntrospect) {
		return nil, ErrUnauthorizedClient.WithDescription("this client may not introspect tokens")
	}
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("token is required")
	}
	v, err := p.lookup(ctx, tokenhash.Sum(raw))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInactive) {
		return &Introspection{Active: false}, nil
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	tok := v.tok
	in := &Introspection{Active: true, Scope: tok.Scope, ClientID: tok.ClientID, Exp: tok.ExpiresAt.Unix(), Iat: tok.IssuedAt.Unix(),
		Sub: tok.ClientID, Iss: p.cfg.Issuer, Level: tok.Level, TokenType: "Bearer", DeviceID: tok.Extra["device_id"]}
	if tok.Kind == store.KindRefresh {
		in.TokenType = "refresh_token"
	}
	if u := v.user; u != nil {
		in.Sub, in.Username, in.CustomerNumber = u.ID, u.Username, u.CustomerNumber
	}
	return in, nil
}

// IntrospectionJWT signs an introspection answer for caller (RFC 9701).
func (p *Provider) IntrospectionJWT(caller *store.Client, in *Introspection) (string, error) {
	now := p.now()
	claims := jwt.MapClaims{
		"iss": p.cfg.Issuer, "aud": caller.ID, "iat": now.Unix(), "jti": uuid.NewString(),
		"token_introspection": in,
	}
	return p.keys.Sign(claims, "token-introspection+jwt")
}
