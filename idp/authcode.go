package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"regexp"
	"slices"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// AuthorizeRequest is a validated authorization request.
type AuthorizeRequest struct {
	Client        *store.Client
	RedirectURI   string
	Scope         string
	State         string
	CodeChallenge string
}

var pkceRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// ValidateAuthorize checks an authorization request. The first error means
// the redirect URI cannot be trusted: it must be shown, never redirected
// to. The second is for the client, at its redirect URI.
func (p *Provider) ValidateAuthorize(ctx context.Context, q map[string][]string) (*AuthorizeRequest, error, *Error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	c, err := p.st.GetClient(ctx, get("client_id"))
	if err != nil || !slices.Contains(c.Grants, GrantAuthorizationCode) {
		return nil, errors.New("unknown client, or a client that may not use this flow"), nil
	}
	redirect := get("redirect_uri")
	if redirect == "" && len(c.RedirectURIs) == 1 {
		redirect = c.RedirectURIs[0]
	}
	if !slices.Contains(c.RedirectURIs, redirect) { // exact match only
		return nil, errors.New("the redirect_uri is not registered for this client"), nil
	}
	ar := &AuthorizeRequest{Client: c, RedirectURI: redirect, State: get("state")}
	if get("response_type") != "code" {
		return ar, nil, ErrInvalidRequest.WithDescription("response_type must be code").withCode("unsupported_response_type")
	}
	if get("code_challenge_method") != "S256" || !pkceRE.MatchString(get("code_challenge")) {
		return ar, nil, ErrInvalidRequest.WithDescription("PKCE with code_challenge_method S256 is required")
	}
	ar.CodeChallenge = get("code_challenge")
	scope, oerr := grantScope(get("scope"), c.Scopes)
	if oerr != nil {
		return ar, nil, oerr
	}
	ar.Scope = scope
	return ar, nil, nil
}

func (e *Error) withCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// IssueCode authenticates the user and returns a single-use code that
// lives at most CodeTTL.
func (p *Provider) IssueCode(ctx context.Context, ar *AuthorizeRequest, username, password, ip string) (string, *Error) {
	now := p.now()
	if ok, wait := p.loginLimit.allow("login:"+username+"|"+ip, now); !ok {
		return "", ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	u, oerr := p.checkUser(ctx, username, password)
	if oerr != nil {
		p.auditFail(ctx, ar.Client.ID, "", ip, "bad user credentials (login page)")
		return "", oerr
	}
	raw := newOpaque(CodePrefix)
	if err := p.st.CreateCode(ctx, &store.AuthCode{Hash: tokenhash.Sum(raw), ClientID: ar.Client.ID, UserID: u.ID, RedirectURI: ar.RedirectURI,
		Scope: ar.Scope, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: "S256", ExpiresAt: now.Add(p.cfg.CodeTTL)}); err != nil {
		return "", ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "code_issued", ar.Client.ID, u.ID, GrantAuthorizationCode, ip)
	return raw, nil
}

func (p *Provider) authorizationCode(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, *Error) {
	raw, verifier := r.get("code"), r.get("code_verifier")
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("code is required")
	}
	hash := tokenhash.Sum(raw)
	code, err := p.st.ConsumeCode(ctx, hash, p.now())
	family := "code:" + hash[:32]
	switch {
	case errors.Is(err, store.ErrInactive):
		// A code used twice: what the first use produced is revoked too
		// (RFC 6749 4.1.2).
		if code.UsedAt.IsZero() {
			return nil, ErrInvalidGrant.WithDescription("authorization code expired")
		}
		hashes, _ := p.st.RevokeFamily(ctx, family, p.now())
		p.revoked(hashes)
		p.auditFail(ctx, c.ID, code.UserID, r.RemoteIP, "authorization code reused: its tokens revoked")
		return nil, ErrInvalidGrant.WithDescription("authorization code is invalid")
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidGrant.WithDescription("authorization code is invalid")
	case err != nil:
		return nil, ErrUnavailable.WithCause(err)
	}
	if code.ClientID != c.ID {
		return nil, ErrInvalidGrant.WithDescription("authorization code was issued to another client")
	}
	if r.get("redirect_uri") != code.RedirectURI {
		return nil, ErrInvalidGrant.WithDescription("redirect_uri does not match the authorization request")
	}
	if !pkceRE.MatchString(verifier) {
		return nil, ErrInvalidGrant.WithDescription("a valid code_verifier is required")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.CodeChallenge)) != 1 {
		p.auditFail(ctx, c.ID, code.UserID, r.RemoteIP, "PKCE verifier mismatch")
		return nil, ErrInvalidGrant.WithDescription("code_verifier does not match the code_challenge")
	}
	u, err := p.st.GetUser(ctx, code.UserID)
	if err != nil || !u.Enabled {
		return nil, ErrInvalidGrant.WithDescription("the user can no longer sign in")
	}
	return p.issueLogin(ctx, c, u, code.Scope, store.LevelLoggedOn, family, GrantAuthorizationCode, r.RemoteIP)
}
