package idp

import (
	"context"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/google/uuid"
)

// passwordGrant logs a user in with username and password (RFC 6749 4.3),
// for first-party confidential clients only and when Config.AllowPassword is
// set; logins are rate-limited per username and address.
type passwordGrant struct{ grant }

var _ GrantHandler = passwordGrant{}

// Handle implements GrantHandler.
func (g passwordGrant) Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error) {
	p := g.p
	if !p.cfg.AllowPassword || !c.FirstParty || c.Public() {
		return nil, ErrUnauthorizedClient.WithDescription("the password grant is only for first-party confidential clients")
	}
	username, pw := r.get("username"), r.get("password")
	if username == "" || pw == "" {
		return nil, ErrInvalidRequest.WithDescription("username and password are required")
	}
	now := p.now()
	if ok, wait := p.loginLimit.allow("login:"+username+"|"+r.RemoteIP, now); !ok {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "login rate limited")
		return nil, ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	u, err := p.checkUser(ctx, username, pw, r.RemoteIP)
	if err != nil {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "bad user credentials")
		return nil, err
	}
	scope, err := grantScope(r.get("scope"), c.Scopes)
	if err != nil {
		return nil, err
	}
	level := store.LevelLoggedOn
	if v := r.get("remember"); v == "true" || v == "1" {
		level = store.LevelReturning
	}
	return p.issueLogin(ctx, c, u, scope, level, uuid.NewString(), GrantPassword, r.RemoteIP, nil)
}
