package idp

import (
	"net/url"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/labstack/echo/v4"
)

// Authenticated is a user whose authentication is done, by whatever means
// (the password form, an upstream identity provider), with how (AMR,
// RFC 8176 values) and when.
type Authenticated struct {
	User *store.User
	AMR  []string
	At   time.Time
}

// CompleteLogin ends a pending authorization request for an authenticated
// user: a single-use code that lives at most CodeTTL, sent to the
// client's redirect URI with the request's state.
func (p *Provider) CompleteLogin(c echo.Context, ar *AuthorizeRequest, a Authenticated) error {
	ctx := c.Request().Context()
	ip := p.clientAddr.Addr(c.Request()).String()
	if a.User == nil || !a.User.Enabled {
		return redirectTo(c, ar.RedirectURI, ErrAccessDenied.WithDescription("the user may not sign in").RedirectQuery(ar.State))
	}
	raw := newOpaque(CodePrefix)
	if err := p.st.CreateCode(ctx, &store.AuthCode{Hash: tokenhash.Sum(raw), ClientID: ar.Client.ID, UserID: a.User.ID, RedirectURI: ar.RedirectURI,
		Scope: ar.Scope, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: "S256", ExpiresAt: p.now().Add(p.cfg.CodeTTL)}); err != nil {
		return redirectTo(c, ar.RedirectURI, ErrUnavailable.WithCause(err).RedirectQuery(ar.State))
	}
	p.auditOK(ctx, "code_issued", ar.Client.ID, a.User.ID, GrantAuthorizationCode, ip)
	v := url.Values{"code": {raw}}
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	return redirectTo(c, ar.RedirectURI, v)
}
