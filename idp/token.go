package idp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// Grant types (grant_type values).
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// TokenResponse is the token endpoint's success answer (RFC 6749 5.1,
// RFC 8693 2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
	// IDToken is the OpenID Connect ID token of an openid login.
	IDToken string `json:"id_token,omitempty"`
}

// Request is what a token-endpoint call carries, parsed by the HTTP layer.
type Request struct {
	Form     map[string][]string
	BasicID  string
	BasicPW  string
	HasBasic bool
	// RemoteIP is the client's address (through trusted proxies only).
	RemoteIP string
}

func (r *Request) get(k string) string {
	if v := r.Form[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// GrantHandler issues tokens for one kind of token-endpoint request (as
// fosite's TokenEndpointHandler does); the provider composes one per grant
// type in New and asks each in turn.
type GrantHandler interface {
	// CanHandle reports whether the handler serves grant_type grantType.
	CanHandle(grantType string) bool
	// Handle answers a request of client c, which authenticated and may
	// use the grant. Its errors are *Error values (errors.As).
	Handle(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, error)
}

// grant is what every grant handler embeds: the provider it issues for
// and the one grant type it serves.
type grant struct {
	p   *Provider
	typ string
}

// CanHandle implements GrantHandler.
func (g grant) CanHandle(grantType string) bool { return grantType == g.typ }

// grantHandler returns the handler of grantType, nil if none serves it.
func (p *Provider) grantHandler(grantType string) GrantHandler {
	for _, h := range p.grants {
		if h.CanHandle(grantType) {
			return h
		}
	}
	return nil
}

// Token handles a token-endpoint request. Its errors are *Error values,
// reachable with errors.As. With tracing on, each call is a span.
func (p *Provider) Token(ctx context.Context, r *Request) (*TokenResponse, error) {
	if p.tracer == nil {
		resp, _, err := p.token(ctx, r)
		return resp, err
	}
	ctx, sp := p.tracer.Start(ctx, "oauth2.token")
	resp, c, err := p.token(ctx, r)
	p.endTokenSpan(sp, r.get("grant_type"), c, err)
	return resp, err
}

// token is Token; c is the client once it authenticated.
func (p *Provider) token(ctx context.Context, r *Request) (resp *TokenResponse, c *store.Client, err error) {
	gt := r.get("grant_type")
	if gt == "" {
		return nil, nil, ErrInvalidRequest.WithDescription("grant_type is required")
	}
	c, err = p.AuthenticateClient(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	h := p.grantHandler(gt)
	if h == nil {
		return nil, c, ErrUnsupportedGrantType.WithDescription("grant_type %q is not supported", gt)
	}
	if !slices.Contains(c.Grants, gt) {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "grant not allowed: "+gt)
		return nil, c, ErrUnauthorizedClient.WithDescription("this client may not use %s", gt)
	}
	if c.Public() && gt != GrantAuthorizationCode && gt != GrantRefreshToken {
		return nil, c, ErrUnauthorizedClient.WithDescription("public clients may only use authorization_code with PKCE")
	}
	resp, err = h.Handle(ctx, c, r)
	if err != nil {
		var oe *Error
		if (!errors.As(err, &oe) || oe.Status >= 500) && !errors.Is(err, errHashBusy) {
			p.log.Error("token endpoint failed", "client_id", c.ID, "grant", gt, "error", err.Error())
		}
		return nil, c, err
	}
	return resp, c, nil
}

// grantScope checks a requested scope against what may be granted; an
// empty request grants all of allowed.
func grantScope(requested string, allowed []string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	var out []string
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(allowed, s) {
			return "", ErrInvalidScope.WithDescription("scope %q is not allowed", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

func ttl(clientTTL, def time.Duration) time.Duration {
	if clientTTL > 0 {
		return clientTTL
	}
	return def
}
