package federation

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// identity is what an upstream said about the user, verified.
type identity struct {
	issuer, subject string
	claims          map[string]any
	amr             []string
	authTime        time.Time
	token           *oauth2.Token // kept only with keep_upstream_tokens
}

// finish exchanges the code (with the PKCE verifier) and verifies the ID
// token: signature by a key of the upstream's JWKS with an algorithm it
// announces, issuer, audience (and azp with several), expiry, and the
// nonce of this login; then reads userinfo when configured.
func (f *Federation) finish(ctx context.Context, u *upstream, cb *callback, code string) (*identity, error) {
	if code == "" {
		return nil, refusal(http.StatusBadRequest, u, "%s sent no authorization code. Start again.", errors.New("no code"))
	}
	d, err := u.discover(ctx, f.o.Now())
	if err != nil {
		return nil, refusal(http.StatusBadGateway, u, "%s cannot be reached right now. Try again later, or sign in another way.", err)
	}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, u.client), u.timeout)
	defer cancel()
	tok, err := d.oauth.Exchange(cctx, code, oauth2.VerifierOption(derive(cb.handle, "pkce")))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return nil, refusal(http.StatusUnauthorized, u, "%s refused to complete the sign-in (the answer was used already, or is not valid). Start again.", err)
		}
		return nil, refusal(http.StatusBadGateway, u, "%s cannot be reached right now. Try again later, or sign in another way.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refusal(http.StatusBadGateway, u, "%s did not send an ID token.", errors.New("no id_token in the token response"))
	}
	invalid := func(cause error) error {
		return refusal(http.StatusUnauthorized, u, "%s sent an identity ficus cannot accept.", cause)
	}
	it, err := d.verifier.Verify(cctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, refusal(http.StatusUnauthorized, u, "%s sent an identity that has expired. Start again.", err)
		}
		return nil, invalid(err)
	}
	if subtle.ConstantTimeCompare([]byte(it.Nonce), []byte(derive(cb.handle, "nonce"))) != 1 {
		return nil, invalid(errors.New("the ID token's nonce is not this login's"))
	}
	if it.Subject == "" {
		return nil, invalid(errors.New("the ID token has no subject"))
	}
	claims := map[string]any{}
	if err := it.Claims(&claims); err != nil {
		return nil, invalid(err)
	}
	if len(it.Audience) > 1 {
		if azp, _ := claims["azp"].(string); azp != u.cfg.ClientID {
			return nil, invalid(fmt.Errorf("an ID token for several audiences whose azp is %q, not this client", azp))
		}
	}
	if it.AccessTokenHash != "" && tok.AccessToken != "" {
		if err := it.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, invalid(err)
		}
	}
	id := &identity{issuer: it.Issuer, subject: it.Subject, claims: claims, token: tok}
	if ts, ok := claims["auth_time"].(float64); ok && ts > 0 {
		id.authTime = time.Unix(int64(ts), 0)
	} else {
		id.authTime = f.o.Now()
	}
	if list, ok := claims["amr"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok && s != "" && len(id.amr) < 8 {
				id.amr = append(id.amr, s)
			}
		}
	}
	if u.cfg.UserInfo {
		ui, err := d.provider.UserInfo(oidc.ClientContext(cctx, u.client), oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, refusal(http.StatusBadGateway, u, "%s did not answer who you are. Try again later.", err)
		}
		if ui.Subject != it.Subject {
			return nil, invalid(fmt.Errorf("userinfo is about %q, the ID token about %q", ui.Subject, it.Subject))
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return nil, invalid(err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return id, nil
}
