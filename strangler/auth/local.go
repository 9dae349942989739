package auth

import (
	"context"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp"
)

// Local is the Issuer of the IDP in the same process: look-ups go to its
// store (through its own short cache) and JWTs are signed with its keys.
type Local struct{ P *idp.Provider }

var _ Issuer = Local{}

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
