package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/labstack/echo/v4"
)

// Authenticated is a user who has just proved who they are to the sign-in
// page: with a password (CheckPassword), or at an upstream identity
// provider (federated login).
type Authenticated struct {
	// User is the ficus user. Required.
	User *store.User
	// AMR are the authentication methods (the ID token's amr): "pwd" for
	// a password, what the upstream provider said for a federated login.
	AMR []string
	// At is when the user authenticated (auth_time; the IDP session ends
	// sessions.logged_on_max after it); zero means now. A time in the
	// future is taken as now.
	At time.Time
	// Consented is set when the user approved the client's request on the
	// same page (the password form's "Sign in and allow"); otherwise
	// CompleteLogin asks for consent where the client needs it.
	Consented bool
}

// BrowserSessions are the IDP's browser sessions: the single sign-on
// cookie that makes prompt=none, max_age and auth_time real. The web
// session layer's Manager provides them (idp/session, Manager.Browser),
// so IDP sessions live in the same store, end with the user's other
// sessions on a password change, and expire by the same rules.
type BrowserSessions interface {
	// Find returns the live session of a cookie value; nil and no error
	// when there is none (malformed, unknown, expired or ended).
	Find(ctx context.Context, cookie string) (*store.Session, error)
	// Login replaces old (nil: none) with a new logged-on session for u,
	// authenticated at with amr, under a new cookie value. The session's
	// LoginAt is at: max_age and auth_time count from it.
	Login(ctx context.Context, old *store.Session, u *store.User, amr []string, at time.Time, remoteIP string) (*store.Session, string, error)
	// End ends a session on every instance.
	End(ctx context.Context, s *store.Session) error
	// SetAttrs sets attributes of a session (an empty value removes one).
	SetAttrs(ctx context.Context, s *store.Session, attrs map[string]string) error
}

// UseBrowserSessions gives the provider its browser sessions. Call it
// before the handler serves. Without them every authorization request
// signs in anew: prompt=none always answers login_required.
func (p *Provider) UseBrowserSessions(b BrowserSessions) { p.browser = b }

// SessionCookie is the name of the IDP's session cookie for issuer:
// __Host-ficus_idp over https (Secure, Path=/, no Domain: only this host
// gets it), ficus_idp over plain http. The gateway must strip it from
// every request it forwards (strangler.Options.OwnedCookies).
func SessionCookie(issuer string) string {
	if strings.HasPrefix(issuer, "https://") {
		return "__Host-ficus_idp"
	}
	return "ficus_idp"
}

// consentKey names the session attribute that records the scopes the
// user granted a client in an IDP session. It names the user: a session
// replaced by another user's sign-in carries the attributes over, never
// the consent.
func consentKey(userID, clientID string) string { return "ficus.consent." + userID + "." + clientID }

// CompleteLogin continues the authorization request ar for a user who has
// just authenticated: it starts a new IDP browser session (rotating the
// cookie), then, unless the client still needs the user's consent (which
// it asks for with the consent page), redirects to the client with a
// code. Both the password form and federated login end here. The user
// must be enabled; the caller has authenticated a.User.
func (p *Provider) CompleteLogin(c echo.Context, ar *AuthorizeRequest, a Authenticated) error {
	ctx := c.Request().Context()
	ip := p.clientAddr.Addr(c.Request()).String()
	if a.User == nil || !a.User.Enabled {
		return p.authorizeError(c, "this account cannot sign in")
	}
	now := p.now()
	if a.At.IsZero() || a.At.After(now) {
		a.At = now
	}
	auth := &store.Authentication{Time: a.At.Truncate(time.Second), AMR: slices.Clone(a.AMR)}
	var s *store.Session
	if p.browser != nil {
		old, err := p.findSession(c)
		if err != nil {
			return p.authorizeUnavailable(c, err)
		}
		var cookie string
		s, cookie, err = p.browser.Login(ctx, old, a.User, auth.AMR, auth.Time, ip)
		if err != nil {
			return p.authorizeUnavailable(c, err)
		}
		p.setSessionCookie(c, cookie)
		auth = authFromSession(s)
	}
	if !a.Consented && p.needsConsent(ar, s) {
		if s == nil {
			return redirectTo(c, ar.RedirectURI, ErrConsentRequired.RedirectQuery(ar.State))
		}
		return p.renderConsent(c, ar, a.User, http.StatusOK, "")
	}
	if a.Consented && s != nil {
		if err := p.recordConsent(ctx, ar, s); err != nil {
			p.log.Warn("recording consent in the IDP session", "client_id", ar.Client.ID, "error", err.Error())
		}
	}
	return p.redirectWithCode(c, ar, a.User.ID, auth, ip)
}

// redirectWithCode issues a code for the user and sends the browser back
// to the client with it.
func (p *Provider) redirectWithCode(c echo.Context, ar *AuthorizeRequest, userID string, auth *store.Authentication, ip string) error {
	code, err := p.issueCode(c.Request().Context(), ar, userID, auth, ip)
	if err != nil {
		return p.authorizeUnavailable(c, err)
	}
	v := map[string][]string{"code": {code}}
	if ar.State != "" {
		v["state"] = []string{ar.State}
	}
	return redirectTo(c, ar.RedirectURI, v)
}

// findSession returns the IDP session of the request's cookie, nil when
// there is none (or no browser sessions).
func (p *Provider) findSession(c echo.Context) (*store.Session, error) {
	if p.browser == nil {
		return nil, nil
	}
	ck, err := c.Cookie(SessionCookie(p.cfg.Issuer))
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	s, err := p.browser.Find(c.Request().Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Level != store.LevelLoggedOn || s.UserID == "" {
		return nil, nil
	}
	return s, nil
}

// ssoUser returns the user of the request's IDP session if that session
// can answer ar without a new sign-in: logged on, its user enabled, no
// prompt=login, within max_age, and the user an id_token_hint names.
func (p *Provider) ssoUser(c echo.Context, ar *AuthorizeRequest) (*store.Session, *store.User, error) {
	if ar.prompts("login") || ar.prompts("select_account") || ar.MaxAge == 0 {
		return nil, nil, nil
	}
	s, err := p.findSession(c)
	if err != nil || s == nil {
		return nil, nil, err
	}
	if ar.MaxAge > 0 && p.now().Sub(s.LoginAt) > ar.MaxAge {
		return nil, nil, nil
	}
	u, err := p.st.GetUser(c.Request().Context(), s.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	case !u.Enabled:
		return nil, nil, nil
	}
	if ar.IDTokenHint != "" {
		hint, err := p.verifyIDTokenHint(ar.IDTokenHint)
		if err != nil || !slices.Contains(hint.Audience, ar.Client.ID) || hint.Subject != p.subject(ar.Client, u.ID) {
			return nil, nil, nil
		}
	}
	return s, u, nil
}

// needsConsent reports whether the user must approve ar: always with
// prompt=consent, never for a first-party client, otherwise unless the
// IDP session s already holds the user's consent to these scopes for
// this client.
func (p *Provider) needsConsent(ar *AuthorizeRequest, s *store.Session) bool {
	switch {
	case ar.prompts("consent"):
		return true
	case ar.Client.FirstParty:
		return false
	case s == nil:
		return true
	}
	granted := strings.Fields(s.Attrs[consentKey(s.UserID, ar.Client.ID)])
	for _, sc := range strings.Fields(ar.Scope) {
		if !slices.Contains(granted, sc) {
			return true
		}
	}
	return false
}

// recordConsent adds ar's scopes to what the session's user granted the
// client.
func (p *Provider) recordConsent(ctx context.Context, ar *AuthorizeRequest, s *store.Session) error {
	if ar.Client.FirstParty {
		return nil
	}
	granted := strings.Fields(s.Attrs[consentKey(s.UserID, ar.Client.ID)])
	for _, sc := range strings.Fields(ar.Scope) {
		if !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	return p.browser.SetAttrs(ctx, s, map[string]string{consentKey(s.UserID, ar.Client.ID): strings.Join(granted, " ")})
}

// authFromSession is the authentication an IDP session stands for.
func authFromSession(s *store.Session) *store.Authentication {
	return &store.Authentication{Time: s.LoginAt.Truncate(time.Second), AMR: slices.Clone(s.AMR), SessionID: sessionSID(s)}
}

// sessionSID is the sid of an IDP session: derived from the session's id
// (itself a hash of the cookie), so that it names the session without
// being a way to it.
func sessionSID(s *store.Session) string {
	sum := sha256.Sum256([]byte("ficus-sid\x00" + s.ID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (p *Provider) setSessionCookie(c echo.Context, value string) {
	c.SetCookie(&http.Cookie{Name: SessionCookie(p.cfg.Issuer), Value: value, Path: "/", HttpOnly: true,
		Secure: strings.HasPrefix(p.cfg.Issuer, "https://"), SameSite: http.SameSiteLaxMode})
}

func (p *Provider) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: SessionCookie(p.cfg.Issuer), Value: "", Path: "/", HttpOnly: true,
		Secure: strings.HasPrefix(p.cfg.Issuer, "https://"), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// authorizeUnavailable shows that sign-in cannot go on now (a store
// failed); the cause is logged, never shown.
func (p *Provider) authorizeUnavailable(c echo.Context, err error) error {
	var oe *Error
	if !errors.As(err, &oe) || oe.Status >= 500 {
		p.log.Error("sign-in failed", "error", err.Error())
	}
	c.Response().Header().Set("Retry-After", "5")
	return c.String(http.StatusServiceUnavailable, "ficus: sign-in is unavailable right now; please try again in a moment\n")
}
