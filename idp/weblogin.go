package idp

import (
	"context"
	"errors"

	"github.com/ficus-gw/ficus/idp/store"
)

// maxPasswordLen bounds the password an anonymous caller can make the
// provider hash.
const maxPasswordLen = 1024

// CheckPassword checks a user's credentials for a login outside the token
// endpoint (the web session layer, idp/session). Failures are limited per
// username and per source address: a user's budget is charged only after
// a failed verification, so that guessing cannot be stretched by
// concurrency and a flood of wrong passwords from elsewhere costs the
// caller's address its budget first. Refused attempts are audited as
// login_failed; a success is not (the caller audits the login it makes).
//
// Errors: ErrInvalidRequest (empty or oversized input), ErrInvalidGrant
// (wrong credentials, unknown or disabled user), ErrSlowDown with
// RetryAfter (rate limited), ErrUnavailable (store or hashing busy).
func (p *Provider) CheckPassword(ctx context.Context, username, password, remoteIP string) (*store.User, error) {
	if username == "" || password == "" || len(username) > 256 || len(password) > maxPasswordLen {
		return nil, ErrInvalidRequest.WithDescription("a username and a password (at most %d bytes) are required", maxPasswordLen)
	}
	now := p.now()
	userKey, addr := "user:"+username, addrKey(remoteIP)
	doneUser, ok, wait := p.loginLimit.admit(userKey, now)
	if !ok {
		p.auditLoginFailed(ctx, "", remoteIP, "login rate limited (user)")
		return nil, ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	defer doneUser()
	doneAddr, ok, wait := p.failLimit.admit(addr, now)
	if !ok {
		p.auditLoginFailed(ctx, "", remoteIP, "login rate limited (address)")
		return nil, ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	defer doneAddr()
	u, err := p.checkUser(ctx, username, password)
	if err != nil {
		if errors.Is(err, ErrInvalidGrant) {
			p.loginLimit.charge(userKey, now)
			p.failLimit.charge(addr, now)
			p.auditLoginFailed(ctx, "", remoteIP, "bad user credentials")
		}
		return nil, err
	}
	return u, nil
}

func (p *Provider) auditLoginFailed(ctx context.Context, userID, ip, reason string) {
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "login_failed", UserID: userID, Outcome: "denied", Reason: reason, RemoteIP: ip})
}

// GetUser returns the user with this id; store.ErrNotFound if there is
// none.
func (p *Provider) GetUser(ctx context.Context, id string) (*store.User, error) {
	return p.st.GetUser(ctx, id)
}

// Audit adds an event to the audit trail (logged at once, stored in
// batches); a zero At takes the provider's clock. Never pass a token or a
// secret.
func (p *Provider) Audit(ctx context.Context, e store.AuditEvent) {
	if e.At.IsZero() {
		e.At = p.now()
	}
	p.audit.add(ctx, e)
}

// OnUserRevoked registers f to hear of every user whose access must end at
// once: a password change or a disabled user. The web session layer ends
// the user's sessions there (session.Manager.EndUser). An error from f is
// returned by the call that changed the user, after the change is made.
func (p *Provider) OnUserRevoked(f func(ctx context.Context, userID, why string) error) {
	p.onRevokeMu.Lock()
	defer p.onRevokeMu.Unlock()
	p.onUserRevoked = append(p.onUserRevoked, f)
}

// userRevoked runs the OnUserRevoked hooks, all of them whatever fails.
func (p *Provider) userRevoked(ctx context.Context, userID, why string) error {
	p.onRevokeMu.RLock()
	hooks := p.onUserRevoked
	p.onRevokeMu.RUnlock()
	var errs []error
	for _, f := range hooks {
		errs = append(errs, f(ctx, userID, why))
	}
	return errors.Join(errs...)
}
