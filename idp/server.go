package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/labstack/echo/v4"
)

// Handler serves the provider's endpoints:
//
//	POST /oauth2/token                           grants (RFC 6749, 7636, 8693)
//	POST /oauth2/introspect                      RFC 7662; RFC 9701 with Accept: application/token-introspection+jwt
//	POST /oauth2/revoke                          RFC 7009
//	GET|POST /oauth2/authorize                   login and consent page, authorization code with PKCE
//	GET  /.well-known/oauth-authorization-server RFC 8414
//	GET  /.well-known/jwks.json                  the signing keys
func (p *Provider) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = p.errorHandler
	e.POST("/oauth2/token", p.handleToken)
	e.POST("/oauth2/introspect", p.handleIntrospect)
	e.POST("/oauth2/revoke", p.handleRevoke)
	e.GET("/oauth2/authorize", p.handleAuthorize)
	e.POST("/oauth2/authorize", p.handleLogin)
	e.GET("/.well-known/oauth-authorization-server", p.handleMetadata)
	e.GET("/.well-known/jwks.json", p.handleJWKS)
	return e
}

// errorHandler renders every error once: OAuth errors in RFC 6749 form,
// echo's own (404, 405) as JSON, anything else as a 500 without details.
func (p *Provider) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var oe *Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &oe):
	case errors.As(err, &he):
		oe = &Error{Code: "invalid_request", Status: he.Code, Description: strings.ToLower(http.StatusText(he.Code))}
	default:
		oe = ErrServer
		p.log.Error("idp handler failed", "path", c.Path(), "error", err.Error())
	}
	if oe.Status >= 500 && oe.Cause != nil && !errors.Is(oe, errHashBusy) {
		p.log.Error("idp request failed", "path", c.Path(), "error", oe.Error())
	}
	oe.WriteJSON(c.Response())
}

// form parses an application/x-www-form-urlencoded body.
func form(c echo.Context) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, ErrInvalidRequest.WithDescription("the body must be application/x-www-form-urlencoded")
	}
	c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10)
	f, err := c.FormParams()
	if err != nil {
		return nil, ErrInvalidRequest.WithDescription("cannot parse the form")
	}
	for k, v := range f {
		if len(v) > 1 {
			return nil, ErrInvalidRequest.WithDescription("parameter %s is repeated", k)
		}
	}
	return f, nil
}

func (p *Provider) request(c echo.Context) (*Request, error) {
	f, err := form(c)
	if err != nil {
		return nil, err
	}
	r := &Request{Form: f, RemoteIP: p.clientAddr.Addr(c.Request()).String()}
	if id, pw, ok := c.Request().BasicAuth(); ok {
		// RFC 6749 2.3.1: the credentials are form-encoded before Basic.
		uid, err1 := url.QueryUnescape(id)
		upw, err2 := url.QueryUnescape(pw)
		if err1 != nil || err2 != nil {
			return nil, ErrInvalidClient.WithDescription("malformed client credentials")
		}
		r.BasicID, r.BasicPW, r.HasBasic = uid, upw, true
	}
	return r, nil
}

func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}

func (p *Provider) handleToken(c echo.Context) error {
	r, err := p.request(c)
	if err != nil {
		return err
	}
	resp, err := p.Token(c.Request().Context(), r)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, resp)
}

// caller parses the form and authenticates the calling client; with
// confidential, a public client is refused.
func (p *Provider) caller(c echo.Context, confidential bool) (*Request, *store.Client, error) {
	r, err := p.request(c)
	if err != nil {
		return nil, nil, err
	}
	client, err := p.AuthenticateClient(c.Request().Context(), r)
	if err != nil {
		return nil, nil, err
	}
	if confidential && client.Public() {
		return nil, nil, ErrInvalidClient.WithDescription("client authentication required")
	}
	return r, client, nil
}

func (p *Provider) handleIntrospect(c echo.Context) error {
	r, caller, err := p.caller(c, true)
	if err != nil {
		return err
	}
	in, err := p.Introspect(c.Request().Context(), caller, r.get("token"))
	if err != nil {
		return err
	}
	noStore(c)
	if strings.Contains(c.Request().Header.Get("Accept"), "application/token-introspection+jwt") {
		s, err := p.IntrospectionJWT(caller, in)
		if err != nil {
			return ErrServer.WithCause(err)
		}
		return c.Blob(http.StatusOK, "application/token-introspection+jwt", []byte(s))
	}
	return c.JSON(http.StatusOK, in)
}

func (p *Provider) handleRevoke(c echo.Context) error {
	// Public clients may revoke their own tokens (RFC 7009 section 2.1).
	r, caller, err := p.caller(c, false)
	if err != nil {
		return err
	}
	if err := p.Revoke(c.Request().Context(), caller, r.get("token"), r.RemoteIP); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (p *Provider) handleMetadata(c echo.Context) error {
	iss := p.cfg.Issuer
	grants := []string{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken, GrantTokenExchange}
	if p.cfg.AllowPassword {
		grants = append(grants, GrantPassword)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/oauth2/authorize",
		"token_endpoint":                                   iss + "/oauth2/token",
		"introspection_endpoint":                           iss + "/oauth2/introspect",
		"revocation_endpoint":                              iss + "/oauth2/revoke",
		"jwks_uri":                                         iss + "/.well-known/jwks.json",
		"grant_types_supported":                            grants,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":       []string{"client_secret_basic", "client_secret_post"},
		"introspection_signing_alg_values_supported":       p.keys.Algorithms(),
		"token_endpoint_auth_signing_alg_values_supported": []string{},
	})
}

func (p *Provider) handleJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.Blob(http.StatusOK, "application/jwk-set+json", p.keys.JWKS())
}

// The login and consent page.

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — ficus</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
.scopes{background:#f4f4f4;padding:.5rem 1rem}.err{color:#a00}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}</style></head>
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

var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}

const csrfCookie = "ficus_csrf"

func (p *Provider) renderLogin(c echo.Context, ar *AuthorizeRequest, q url.Values, status int, msg, username string) error {
	var b [24]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	c.SetCookie(&http.Cookie{Name: csrfCookie, Value: token, Path: "/oauth2/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(p.cfg.Issuer, "https://"), MaxAge: 600})
	params := map[string]string{}
	for _, k := range authorizeParams {
		params[k] = q.Get(k)
	}
	name := ar.Client.Name
	if name == "" {
		name = ar.Client.ID
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	formAction := "'self'"
	var upstreams []Upstream
	if p.upstreams != nil {
		upstreams = p.upstreams.Upstreams()
		for _, u := range upstreams {
			formAction += " " + strings.Join(u.Origins, " ")
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	c.Response().WriteHeader(status)
	return loginPage.Execute(c.Response(), map[string]any{
		"ClientName": name, "Scopes": strings.Fields(ar.Scope), "Params": params, "CSRF": token, "Error": msg, "Username": username,
		"Upstreams": upstreams,
	})
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

func (p *Provider) handleAuthorize(c echo.Context) error {
	q := c.QueryParams()
	ar, err := p.ValidateAuthorize(c.Request().Context(), q)
	if errors.Is(err, ErrUntrustedRedirect) {
		return p.authorizeError(c, err.Error())
	}
	if err != nil {
		return redirectTo(c, ar.RedirectURI, asError(err).RedirectQuery(ar.State))
	}
	return p.renderLogin(c, ar, q, http.StatusOK, "", "")
}

func (p *Provider) handleLogin(c echo.Context) error {
	f, err := form(c)
	if err != nil {
		return p.authorizeError(c, asError(err).Description)
	}
	ar, err := p.ValidateAuthorize(c.Request().Context(), f)
	if errors.Is(err, ErrUntrustedRedirect) {
		return p.authorizeError(c, err.Error())
	}
	if err != nil {
		return redirectTo(c, ar.RedirectURI, asError(err).RedirectQuery(ar.State))
	}
	ck, err := c.Cookie(csrfCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(f.Get("csrf"))) != 1 {
		return p.renderLogin(c, ar, f, http.StatusForbidden, "Your sign-in form expired. Please try again.", "")
	}
	if name := f.Get("upstream"); name != "" && p.upstreams != nil {
		// Signing in with an upstream provider is consenting, like
		// "Sign in and allow".
		return p.upstreams.BeginAuthorize(c, name, ar, f)
	}
	if f.Get("consent") != "allow" {
		return redirectTo(c, ar.RedirectURI, ErrAccessDenied.WithDescription("the user denied the request").RedirectQuery(ar.State))
	}
	code, err := p.IssueCode(c.Request().Context(), ar, f.Get("username"), f.Get("password"), p.clientAddr.Addr(c.Request()).String())
	if err != nil {
		oerr := asError(err)
		status := http.StatusUnauthorized
		if oerr.Status == http.StatusTooManyRequests || oerr.Status >= 500 {
			status = oerr.Status
		}
		return p.renderLogin(c, ar, f, status, oerr.Description, f.Get("username"))
	}
	v := url.Values{"code": {code}}
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	return redirectTo(c, ar.RedirectURI, v)
}
