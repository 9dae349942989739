package idp

import (
	"errors"
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
//	GET|POST /oauth2/authorize                   login and consent page, authorization code with PKCE, OpenID Connect
//	GET|POST /oauth2/userinfo                    OpenID Connect UserInfo
//	GET|POST /oauth2/logout                      OpenID Connect RP-initiated logout (end_session_endpoint)
//	GET  /.well-known/oauth-authorization-server RFC 8414
//	GET  /.well-known/openid-configuration       OpenID Connect Discovery (the same document)
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
	e.GET("/oauth2/userinfo", p.handleUserinfo)
	e.POST("/oauth2/userinfo", p.handleUserinfo)
	e.GET("/oauth2/logout", p.handleEndSession)
	e.POST("/oauth2/logout", p.handleEndSession)
	e.GET("/.well-known/oauth-authorization-server", p.handleMetadata)
	e.GET("/.well-known/openid-configuration", p.handleDiscovery)
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
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, p.Discovery())
}

// metadata is the RFC 8414 document; Discovery adds OpenID Connect's.
func (p *Provider) metadata() map[string]any {
	iss := p.cfg.Issuer
	grants := []string{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken, GrantTokenExchange}
	if p.cfg.AllowPassword {
		grants = append(grants, GrantPassword)
	}
	return map[string]any{
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
		"scopes_supported":                                 []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopePhone, ScopeAddress},
	}
}

func (p *Provider) handleJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.Blob(http.StatusOK, "application/jwk-set+json", p.keys.JWKS())
}
