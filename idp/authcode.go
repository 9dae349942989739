package idp

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// OpenID is set when the scope has openid: the token response then
	// carries an ID token.
	OpenID bool
	// Nonce is the OpenID Connect nonce, repeated in the ID token.
	Nonce string
	// Prompt holds the prompt values (none, login, consent,
	// select_account); empty when there was none.
	Prompt []string
	// MaxAge is the max_age parameter: the user must have authenticated
	// at most this long ago; negative when there was none.
	MaxAge time.Duration
	// IDTokenHint is the id_token_hint parameter, as sent ("" if none).
	IDTokenHint string
	// Params are the request's parameters that a form of the sign-in page
	// carries back (AuthorizeParams), as sent.
	Params url.Values
}

// prompts reports whether the request's prompt has v.
func (ar *AuthorizeRequest) prompts(v string) bool { return slices.Contains(ar.Prompt, v) }

// AuthorizeParams are the parameters of an authorization request that the
// sign-in page's forms carry back to the authorization endpoint.
var AuthorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
	"nonce", "prompt", "max_age", "id_token_hint", "login_hint"}

var pkceRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// maxNonceLen bounds the nonce (it is stored with the code and signed).
const maxNonceLen = 512

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

// ValidateAuthorize checks an authorization request (RFC 6749 4.1.1 with
// PKCE, and the OpenID Connect parameters nonce, prompt, max_age and
// id_token_hint). An error that matches ErrUntrustedRedirect (errors.Is)
// comes with a nil request: show it, never redirect. Any other error is an
// *Error (errors.As) for the client, at the returned request's
// RedirectURI.
func (p *Provider) ValidateAuthorize(ctx context.Context, q map[string][]string) (*AuthorizeRequest, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	c, err := p.getClient(ctx, get("client_id"))
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
	ar := &AuthorizeRequest{Client: c, RedirectURI: redirect, State: get("state"), MaxAge: -1, Params: url.Values{}}
	for _, k := range AuthorizeParams {
		if v := get(k); v != "" {
			ar.Params.Set(k, v)
		}
	}
	for k, v := range q {
		if len(v) > 1 && slices.Contains(AuthorizeParams, k) {
			return ar, ErrInvalidRequest.WithDescription("parameter %s is repeated", k)
		}
	}
	if get("response_type") != "code" {
		return ar, ErrInvalidRequest.WithDescription("response_type must be code").withCode("unsupported_response_type")
	}
	if get("code_challenge_method") != "S256" || !pkceRE.MatchString(get("code_challenge")) {
		return ar, ErrInvalidRequest.WithDescription("PKCE with code_challenge_method S256 is required")
	}
	ar.CodeChallenge = get("code_challenge")
	if get("request") != "" || get("request_uri") != "" {
		return ar, ErrInvalidRequest.WithDescription("request objects are not supported").withCode("request_not_supported")
	}
	scope, err := grantScope(get("scope"), c.Scopes)
	if err != nil {
		return ar, err
	}
	ar.Scope = scope
	ar.OpenID = slices.Contains(strings.Fields(scope), ScopeOpenID)
	if ar.Nonce = get("nonce"); len(ar.Nonce) > maxNonceLen {
		return ar, ErrInvalidRequest.WithDescription("the nonce is longer than %d bytes", maxNonceLen)
	}
	for _, v := range strings.Fields(get("prompt")) {
		if !slices.Contains(promptValues, v) {
			return ar, ErrInvalidRequest.WithDescription("unknown prompt value %q", v)
		}
		if !slices.Contains(ar.Prompt, v) {
			ar.Prompt = append(ar.Prompt, v)
		}
	}
	if ar.prompts("none") && len(ar.Prompt) > 1 {
		return ar, ErrInvalidRequest.WithDescription("prompt none cannot be combined with other values")
	}
	if v := get("max_age"); v != "" {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return ar, ErrInvalidRequest.WithDescription("max_age must be a number of seconds")
		}
		ar.MaxAge = time.Duration(n) * time.Second
	}
	ar.IDTokenHint = get("id_token_hint")
	return ar, nil
}

// promptValues are the prompt values ficus knows (OpenID Connect Core
// 3.1.2.1); select_account is treated like login.
var promptValues = []string{"none", "login", "consent", "select_account"}

func (e *Error) withCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// issueCode stores a single-use code for user userID, living at most
// CodeTTL, and returns it. auth is the authentication behind it (nil:
// none known).
func (p *Provider) issueCode(ctx context.Context, ar *AuthorizeRequest, userID string, auth *store.Authentication, ip string) (string, error) {
	raw := newOpaque(CodePrefix)
	code := &store.AuthCode{Hash: tokenhash.Sum(raw), ClientID: ar.Client.ID, UserID: userID, RedirectURI: ar.RedirectURI,
		Scope: ar.Scope, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: "S256", ExpiresAt: p.now().Add(p.cfg.CodeTTL)}
	if ar.OpenID {
		code.Nonce, code.Auth = ar.Nonce, auth
	}
	if err := p.st.CreateCode(ctx, code); err != nil {
		return "", ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "code_issued", ar.Client.ID, userID, GrantAuthorizationCode, ip)
	return raw, nil
}
