package auth

import (
	"context"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/golang-jwt/jwt/v5"
)

// Local is the Issuer of the IDP in the same process: look-ups go to its
// store (through its own short cache) and JWTs are signed with its keys.
// With Sessions it is a JPTIssuer too.
type Local struct {
	P *idp.Provider
	// Sessions, if set, verifies the JPTs of web sessions; nil refuses
	// them.
	Sessions *session.Manager
	// SessionScope is the scope of the JWTs minted for a JPT's session.
	// Empty: none.
	SessionScope string
}

// SessionClientID is the client_id of the JWTs minted for a JPT's session
// (a browser session is no OAuth2 client; services see this name).
const SessionClientID = "ficus-session"

var (
	_ JPTIssuer    = Local{}
	_ HashResolver = Local{}
)

func principal(r *idp.Resolved) *Principal {
	t := r.Token
	p := &Principal{ClientID: t.ClientID, Subject: t.ClientID, Scope: t.Scope, Level: t.Level, Expires: t.ExpiresAt, Ref: r,
		Claims: map[string]string{}}
	for k, v := range t.Extra {
		p.Claims[k] = v
	}
	if u := r.User; u != nil {
		p.Subject = u.ID
		if u.CustomerNumber != "" {
			p.Claims["customer_number"] = u.CustomerNumber
		}
	}
	return p
}

func notActive(err error) error {
	if errors.Is(err, idp.ErrNotActive) {
		return ErrInvalidToken
	}
	return err
}

// Resolve implements Issuer.
func (l Local) Resolve(ctx context.Context, token string) (*Principal, error) {
	r, err := l.P.ResolveToken(ctx, token)
	if err != nil {
		return nil, notActive(err)
	}
	return principal(r), nil
}

// ResolveHash implements HashResolver: the stage's hash of the token is
// the provider's key, so the token is hashed once per request.
func (l Local) ResolveHash(ctx context.Context, token, hash string) (*Principal, error) {
	if !idp.AccessTokenShaped(token) {
		return nil, ErrInvalidToken
	}
	r, err := l.P.ResolveTokenHash(ctx, hash)
	if err != nil {
		return nil, notActive(err)
	}
	return principal(r), nil
}

// Anonymous implements Issuer.
func (l Local) Anonymous(ctx context.Context, clientID string) (*Principal, error) {
	r, err := l.P.AnonymousToken(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return principal(r), nil
}

// VerifyJWT implements Issuer.
func (l Local) VerifyJWT(ctx context.Context, token, audience string) (*Principal, error) {
	r, err := l.P.ResolveJWT(ctx, token, audience)
	if err != nil {
		return nil, notActive(err)
	}
	return principal(r), nil
}

// Mint implements Issuer.
func (l Local) Mint(_ context.Context, p *Principal, audience string) (string, time.Time, error) {
	r, ok := p.Ref.(*idp.Resolved)
	if !ok {
		return "", time.Time{}, errors.New("auth: principal not from this issuer")
	}
	return l.P.MintResolved(r, audience)
}

// ResolveJPT implements JPTIssuer: the JPT is verified by the session
// layer (signature, typ, iss, aud, exp, and a live session), and its
// session becomes a principal of client ficus-session at the session's
// level, for its user (none while anonymous), valid no longer than the JPT.
func (l Local) ResolveJPT(ctx context.Context, raw string) (*Principal, string, error) {
	if l.Sessions == nil {
		return nil, "", ErrInvalidToken
	}
	s, err := l.Sessions.VerifyJPT(ctx, raw)
	if errors.Is(err, session.ErrInvalidJPT) || errors.Is(err, session.ErrNoSession) {
		return nil, "", ErrInvalidToken
	}
	if err != nil {
		return nil, "", err
	}
	var rc jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &rc); err != nil || rc.ExpiresAt == nil {
		return nil, "", ErrInvalidToken // verified above: cannot happen
	}
	tok := &store.Token{Kind: store.KindAccess, ClientID: SessionClientID, Scope: l.SessionScope, Level: s.Level,
		UserID: s.UserID, ExpiresAt: rc.ExpiresAt.Time}
	r := &idp.Resolved{Token: tok}
	if s.UserID != "" {
		u, err := l.P.GetUser(ctx, s.UserID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !u.Enabled {
			return nil, "", ErrInvalidToken
		}
		if err != nil {
			return nil, "", err
		}
		r.User = u
	}
	return principal(r), s.ID, nil
}
