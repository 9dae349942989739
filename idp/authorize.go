package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/labstack/echo/v4"
)

// The sign-in and consent pages of the authorization endpoint.

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — ficus</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
.scopes{background:#f4f4f4;padding:.5rem 1rem}.err{color:#a00}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}</style></head>`

var loginPage = template.Must(template.New("login").Parse(pageHead + `
<body><h1>Sign in</h1>
<p><strong>{{.ClientName}}</strong> asks to act on your behalf{{if .Scopes}} with:{{end}}</p>
{{if .Scopes}}<ul class="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required value="{{.Username}}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="consent" value="allow">Sign in and allow</button>
<button type="submit" name="consent" value="deny" formnovalidate>Deny</button>
{{range .Upstreams}}<p><button type="submit" name="upstream" value="{{.Name}}" formnovalidate>Sign in with {{.DisplayName}} and allow</button></p>{{end}}
</form></body></html>`))

var consentPage = template.Must(template.New("consent").Parse(pageHead + `
<body><h1>Allow access</h1>
<p>You are signed in as <strong>{{.Username}}</strong>.</p>
<p><strong>{{.ClientName}}</strong> asks to act on your behalf{{if .Scopes}} with:{{end}}</p>
{{if .Scopes}}<ul class="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="consent" value="allow">Allow</button>
<button type="submit" name="consent" value="deny">Deny</button>
</form>
<p><a href="{{.SwitchURL}}">Sign in as someone else</a></p></body></html>`))

const csrfCookie = "ficus_csrf"

// pageHeaders are the headers of every page the IDP renders; formAction
// lists the origins the page's form may post to besides its own (the
// upstream identity providers the browser is sent on to).
func pageHeaders(c echo.Context, formAction ...string) {
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+
		strings.Join(append([]string{"'self'"}, formAction...), " ")+"; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
}

// newCSRF sets a fresh CSRF cookie for the IDP's forms and returns its
// value, which the form carries back (double submit).
func (p *Provider) newCSRF(c echo.Context) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	c.SetCookie(&http.Cookie{Name: csrfCookie, Value: token, Path: "/oauth2/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(p.cfg.Issuer, "https://"), MaxAge: 600})
	return token
}

// csrfOK reports whether a form carries the CSRF cookie's value.
func csrfOK(c echo.Context, f url.Values) bool {
	ck, err := c.Cookie(csrfCookie)
	return err == nil && ck.Value != "" && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(f.Get("csrf"))) == 1
}

// pageData is what both pages show of a request.
func (p *Provider) pageData(c echo.Context, ar *AuthorizeRequest, msg string) map[string]any {
	params := map[string]string{}
	for _, k := range AuthorizeParams {
		if v := ar.Params.Get(k); v != "" {
			params[k] = v
		}
	}
	name := ar.Client.Name
	if name == "" {
		name = ar.Client.ID
	}
	return map[string]any{"ClientName": name, "Scopes": strings.Fields(ar.Scope), "Params": params, "CSRF": p.newCSRF(c), "Error": msg}
}

func (p *Provider) renderLogin(c echo.Context, ar *AuthorizeRequest, status int, msg, username string) error {
	d := p.pageData(c, ar, msg)
	d["Username"] = username
	var origins []string
	if p.upstreams != nil {
		ups := p.upstreams.Upstreams()
		for _, u := range ups {
			origins = append(origins, u.Origins...)
		}
		d["Upstreams"] = ups
	}
	pageHeaders(c, origins...)
	c.Response().WriteHeader(status)
	return loginPage.Execute(c.Response(), d)
}

// renderConsent asks the signed-in user u to approve ar.
func (p *Provider) renderConsent(c echo.Context, ar *AuthorizeRequest, u *store.User, status int, msg string) error {
	d := p.pageData(c, ar, msg)
	d["Username"] = u.Username
	again := url.Values{}
	for k, v := range ar.Params {
		again[k] = v
	}
	again.Set("prompt", "login")
	d["SwitchURL"] = "authorize?" + again.Encode()
	pageHeaders(c)
	c.Response().WriteHeader(status)
	return consentPage.Execute(c.Response(), d)
}

func (p *Provider) authorizeError(c echo.Context, msg string) error {
	c.Response().Header().Set("Content-Type", "text/plain; charset=utf-8")
	return c.String(http.StatusBadRequest, "ficus: this sign-in request is invalid: "+msg+"\n")
}

func redirectTo(c echo.Context, target string, v url.Values) error {
	u, _ := url.Parse(target)
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return c.Redirect(http.StatusSeeOther, u.String())
}

// handleAuthorize starts an authorization request: with an IDP session
// that can answer it, straight back to the client with a code (or to the
// consent page); otherwise the sign-in page. prompt=none never shows a
// page: login_required or consent_required go back to the client.
func (p *Provider) handleAuthorize(c echo.Context) error {
	ar, err := p.ValidateAuthorize(c.Request().Context(), c.QueryParams())
	if errors.Is(err, ErrUntrustedRedirect) {
		return p.authorizeError(c, err.Error())
	}
	if err != nil {
		return redirectTo(c, ar.RedirectURI, asError(err).RedirectQuery(ar.State))
	}
	s, u, err := p.ssoUser(c, ar)
	if err != nil {
		return p.authorizeUnavailable(c, err)
	}
	ip := p.clientAddr.Addr(c.Request()).String()
	switch {
	case u != nil && !p.needsConsent(ar, s):
		return p.redirectWithCode(c, ar, u.ID, authFromSession(s), ip)
	case ar.prompts("none") && u == nil:
		return redirectTo(c, ar.RedirectURI, ErrLoginRequired.RedirectQuery(ar.State))
	case ar.prompts("none"):
		return redirectTo(c, ar.RedirectURI, ErrConsentRequired.RedirectQuery(ar.State))
	case u != nil:
		return p.renderConsent(c, ar, u, http.StatusOK, "")
	}
	return p.renderLogin(c, ar, http.StatusOK, "", "")
}

// handleLogin takes the sign-in form (username and password: the user
// authenticates, then CompleteLogin) or the consent form (the IDP
// session's user approves).
func (p *Provider) handleLogin(c echo.Context) error {
	ctx := c.Request().Context()
	f, err := form(c)
	if err != nil {
		return p.authorizeError(c, asError(err).Description)
	}
	ar, err := p.ValidateAuthorize(ctx, f)
	if errors.Is(err, ErrUntrustedRedirect) {
		return p.authorizeError(c, err.Error())
	}
	if err != nil {
		return redirectTo(c, ar.RedirectURI, asError(err).RedirectQuery(ar.State))
	}
	if !csrfOK(c, f) {
		return p.renderLogin(c, ar, http.StatusForbidden, "Your sign-in form expired. Please try again.", "")
	}
	if name := f.Get("upstream"); name != "" && p.upstreams != nil {
		// Signing in with an upstream provider is consenting, like
		// "Sign in and allow".
		return p.upstreams.BeginAuthorize(c, name, ar, ar.Params)
	}
	if f.Get("consent") != "allow" {
		return redirectTo(c, ar.RedirectURI, ErrAccessDenied.WithDescription("the user denied the request").RedirectQuery(ar.State))
	}
	ip := p.clientAddr.Addr(c.Request()).String()
	if !f.Has("username") && !f.Has("password") {
		s, u, err := p.ssoUser(c, ar)
		if err != nil {
			return p.authorizeUnavailable(c, err)
		}
		if u == nil {
			return p.renderLogin(c, ar, http.StatusUnauthorized, "Please sign in.", "")
		}
		if err := p.recordConsent(ctx, ar, s); err != nil {
			return p.authorizeUnavailable(c, err)
		}
		return p.redirectWithCode(c, ar, u.ID, authFromSession(s), ip)
	}
	u, err := p.CheckPassword(ctx, f.Get("username"), f.Get("password"), ip)
	if err != nil {
		oerr := asError(err)
		status := http.StatusUnauthorized
		if oerr.Status == http.StatusTooManyRequests || oerr.Status >= 500 {
			status = oerr.Status
			if oerr.RetryAfter > 0 {
				c.Response().Header().Set("Retry-After", strconv.Itoa(oerr.RetryAfter))
			}
		}
		return p.renderLogin(c, ar, status, oerr.Description, f.Get("username"))
	}
	return p.CompleteLogin(c, ar, Authenticated{User: u, AMR: []string{AMRPassword}, Consented: true})
}
