package idp

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// CodeStorage keeps authorization codes, by hash; each is single-use.
type CodeStorage interface {
	CreateCode(ctx context.Context, c *store.AuthCode) error
	// ConsumeCode marks a code used and returns it; a used or expired code
	// yields store.ErrInactive with the record (so the caller can revoke
	// what it produced), an unknown one store.ErrNotFound.
	ConsumeCode(ctx context.Context, hash string, now time.Time) (*store.AuthCode, error)
}

// AuthorizeRequest is a validated authorization request.
type AuthorizeRequest struct {
	Client        *store.Client
	RedirectURI   string
	Scope         string
	State         string
	CodeChallenge string
}

var pkceRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// ErrUntrustedRedirect is wrapped by the errors of ValidateAuthorize after
// which the redirect URI cannot be trusted (an unknown client, or a
// redirect_uri it did not register): such an error must be shown to the
// user, never redirected to.
var ErrUntrustedRedirect = errors.New("the redirect URI cannot be trusted")

// untrustedError is an error that ErrUntrustedRedirect matches; its text
// is shown on the sign-in page as it is.
type untrustedError string

func (e untrustedError) Error() string { return string(e) }
func (e untrustedError) Unwrap() error { return ErrUntrustedRedirect }

// ValidateAuthorize checks an authorization request. An error that
// matches ErrUntrustedRedirect (errors.Is) comes with a nil request: show
// it, never redirect. Any other error is an *Error (errors.As) for the
// client, at the returned request's RedirectURI.
func (p *Provider) ValidateAuthorize(ctx context.Context, q map[string][]string) (*AuthorizeRequest, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	c, err := p.st.GetClient(ctx, get("client_id"))
	if err != nil || !slices.Contains(c.Grants, GrantAuthorizationCode) {
		return nil, untrustedError("unknown client, or a client that may not use this flow")
	}
	redirect := get("redirect_uri")
	if redirect == "" && len(c.RedirectURIs) == 1 {
		redirect = c.RedirectURIs[0]
	}
	if !slices.Contains(c.RedirectURIs, redirect) { // exact match only
		return nil, untrustedError("the redirect_uri is not registered for this client")
	}
	ar := &AuthorizeRequest{Client: c, RedirectURI: redirect, State: get("state")}
	if get("response_type") != "code" {
		return ar, ErrInvalidRequest.WithDescription("response_type must be code").withCode("unsupported_response_type")
	}
	if get("code_challenge_method") != "S256" || !pkceRE.MatchString(get("code_challenge")) {
		return ar, ErrInvalidRequest.WithDescription("PKCE with code_challenge_method S256 is required")
	}
	ar.CodeChallenge = get("code_challenge")
	scope, err := grantScope(get("scope"), c.Scopes)
	if err != nil {
		return ar, err
	}
	ar.Scope = scope
	return ar, nil
}

func (e *Error) withCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// IssueCode authenticates the user and returns a single-use code that
// lives at most CodeTTL.
func (p *Provider) IssueCode(ctx context.Context, ar *AuthorizeRequest, username, password, ip string) (string, error) {
	now := p.now()
	if ok, wait := p.loginLimit.allow("login:"+username+"|"+ip, now); !ok {
		return "", ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	u, err := p.checkUser(ctx, username, password, ip)
	if err != nil {
		p.auditFail(ctx, ar.Client.ID, "", ip, "bad user credentials (login page)")
		return "", err
	}
	raw := newOpaque(CodePrefix)
	if err := p.st.CreateCode(ctx, &store.AuthCode{Hash: tokenhash.Sum(raw), ClientID: ar.Client.ID, UserID: u.ID, RedirectURI: ar.RedirectURI,
		Scope: ar.Scope, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: "S256", ExpiresAt: now.Add(p.cfg.CodeTTL)}); err != nil {
		return "", ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "code_issued", ar.Client.ID, u.ID, GrantAuthorizationCode, ip)
	return raw, nil
}
