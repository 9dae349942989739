package idp

import (
	"net/url"

	"github.com/labstack/echo/v4"
)

// Upstream is an upstream identity provider the login page offers a
// button for (idp/federation).
type Upstream struct {
	// Name is the value the button posts; DisplayName its text.
	Name, DisplayName string
	// Origins are where the browser goes from the login form (the
	// upstream's issuer and authorization endpoint), which the page's
	// Content-Security-Policy form-action must allow.
	Origins []string
}

// UpstreamLogins is federated login as the login page sees it
// (idp/federation.Federation).
type UpstreamLogins interface {
	// Upstreams lists the buttons, in order.
	Upstreams() []Upstream
	// BeginAuthorize sends the browser to the upstream name to sign in
	// for the validated request ar; params are the request's parameters,
	// to validate it again when the browser comes back.
	BeginAuthorize(c echo.Context, name string, ar *AuthorizeRequest, params url.Values) error
}

// SetUpstreamLogins puts a button per upstream on the login page; call it
// before serving.
func (p *Provider) SetUpstreamLogins(u UpstreamLogins) { p.upstreams = u }
