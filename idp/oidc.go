package idp

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	_ "crypto/sha512" // at_hash of SHA-384 and SHA-512 algorithms
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/ficus-gw/ficus/strangler/bearer"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
)

// OpenID Connect scopes.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeEmail   = "email"
	ScopePhone   = "phone"
	ScopeAddress = "address"
)

// IDTokenType is the typ header of ID tokens.
const IDTokenType = "JWT"

// AMRPassword is the amr of a sign-in with a password (RFC 8176).
const AMRPassword = "pwd"

// scopeClaims are the user claims each scope releases (OpenID Connect
// Core 5.4), taken from the user record's claims.
var scopeClaims = map[string][]string{
	ScopeProfile: {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile", "picture",
		"website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	ScopeEmail:   {"email", "email_verified"},
	ScopePhone:   {"phone_number", "phone_number_verified"},
	ScopeAddress: {"address"},
}

// userClaims returns the claims of u that scope releases; profile also
// gives preferred_username, the username, unless the record has one.
func userClaims(u *store.User, scope string) map[string]any {
	out := map[string]any{}
	for _, sc := range strings.Fields(scope) {
		for _, name := range scopeClaims[sc] {
			if v, ok := u.Claims[name]; ok {
				out[name] = v
			}
		}
		if sc == ScopeProfile && out["preferred_username"] == nil {
			out["preferred_username"] = u.Username
		}
	}
	return out
}

// claimsSupported lists the claims discovery names.
func claimsSupported() []string {
	out := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "acr", "amr", "azp", "sid"}
	for _, sc := range []string{ScopeProfile, ScopeEmail, ScopePhone, ScopeAddress} {
		out = append(out, scopeClaims[sc]...)
	}
	return out
}

// subject is the sub a client sees for a user: the user id, or for a
// pairwise client the HMAC-SHA256 of its sector and the user id under
// PairwiseSecret (base64url). Gateway JWTs, introspection and token
// exchange keep the user id: services need the real one.
func (p *Provider) subject(c *store.Client, userID string) string {
	if c.SubjectType != store.SubjectPairwise {
		return userID
	}
	m := hmac.New(sha256.New, p.cfg.PairwiseSecret)
	m.Write([]byte(sectorOf(c)))
	m.Write([]byte{0})
	m.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sectorOf is a pairwise client's sector: its sector identifier, else the
// host of its redirect URIs (checked to be one at registration).
func sectorOf(c *store.Client) string {
	if c.SectorIdentifier != "" {
		return c.SectorIdentifier
	}
	for _, r := range c.RedirectURIs {
		if u, err := url.Parse(r); err == nil {
			return u.Hostname()
		}
	}
	return c.ID
}

// idTokenInput is what an ID token states.
type idTokenInput struct {
	client      *store.Client
	user        *store.User
	scope       string
	level       string
	auth        *store.Authentication
	nonce       string
	accessToken string
}

// idToken signs an ID token (OpenID Connect Core 2, 3.1.3.6): iss, sub,
// aud and azp the client, exp, iat, auth_time, nonce, at_hash, acr (the
// user level), amr, sid, and the user claims its scope releases. typ JWT,
// signed with the key that signs access JWTs (the JWKS).
func (p *Provider) idToken(in idTokenInput) (string, error) {
	now := p.now()
	m := jwt.MapClaims{}
	for k, v := range userClaims(in.user, in.scope) {
		m[k] = v
	}
	m["iss"] = p.cfg.Issuer
	m["sub"] = p.subject(in.client, in.user.ID)
	m["aud"] = in.client.ID
	m["azp"] = in.client.ID
	m["iat"] = now.Unix()
	m["exp"] = now.Add(p.cfg.IDTokenTTL).Unix()
	m["acr"] = in.level
	if in.auth != nil {
		if !in.auth.Time.IsZero() {
			m["auth_time"] = in.auth.Time.Unix()
		}
		if len(in.auth.AMR) > 0 {
			m["amr"] = in.auth.AMR
		}
		if in.auth.SessionID != "" {
			m["sid"] = in.auth.SessionID
		}
	}
	if in.nonce != "" {
		m["nonce"] = in.nonce
	}
	return p.keys.SignWith(func(alg string) jwt.Claims {
		if in.accessToken != "" {
			if h := hashFor(alg); h != 0 {
				sum := h.New()
				sum.Write([]byte(in.accessToken))
				b := sum.Sum(nil)
				m["at_hash"] = base64.RawURLEncoding.EncodeToString(b[:len(b)/2])
			}
		}
		return m
	}, IDTokenType)
}

// hashFor is the hash of at_hash for a JWS algorithm (OpenID Connect Core
// 3.1.3.6; Ed25519 takes SHA-512).
func hashFor(alg string) crypto.Hash {
	switch alg {
	case "RS256", "ES256", "PS256":
		return crypto.SHA256
	case "RS384", "ES384", "PS384":
		return crypto.SHA384
	case "RS512", "ES512", "PS512", "EdDSA":
		return crypto.SHA512
	}
	return 0
}

// idTokenClaims are the claims of an ID token this provider signed.
type idTokenClaims struct {
	jwt.RegisteredClaims
	SID string `json:"sid,omitempty"`
}

// verifyIDTokenHint verifies an ID token this provider issued, expired or
// not (a hint may be old, OpenID Connect RP-Initiated Logout 2): signed
// by a published key with that key's algorithm, typ JWT, iss this issuer.
func (p *Provider) verifyIDTokenHint(raw string) (*idTokenClaims, error) {
	var c idTokenClaims
	t, err := jwt.ParseWithClaims(raw, &c, p.keys.Keyfunc, jwt.WithValidMethods(p.keys.Algorithms()), jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, IDTokenType) {
		return nil, fmt.Errorf("typ %q is not %s", typ, IDTokenType)
	}
	if c.Issuer != p.cfg.Issuer || c.Subject == "" || len(c.Audience) == 0 {
		return nil, errors.New("not an ID token of this issuer")
	}
	return &c, nil
}

// addIDToken adds the ID token to a token response of an openid login:
// the authentication auth, the nonce of the code ("" on refresh).
func (p *Provider) addIDToken(resp *TokenResponse, c *store.Client, u *store.User, level string, auth *store.Authentication, nonce string) error {
	id, err := p.idToken(idTokenInput{client: c, user: u, scope: resp.Scope, level: level, auth: auth, nonce: nonce, accessToken: resp.AccessToken})
	if err != nil {
		return ErrServer.WithCause(err)
	}
	resp.IDToken = id
	return nil
}

// hasOpenID reports whether scope has openid.
func hasOpenID(scope string) bool { return slices.Contains(strings.Fields(scope), ScopeOpenID) }

// Discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0
// section 3), a superset of the RFC 8414 document.
func (p *Provider) Discovery() map[string]any {
	m := p.metadata()
	iss := p.cfg.Issuer
	scopes := []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopePhone, ScopeAddress}
	subjects := []string{store.SubjectPublic}
	if len(p.cfg.PairwiseSecret) > 0 {
		subjects = append(subjects, store.SubjectPairwise)
	}
	m["userinfo_endpoint"] = iss + "/oauth2/userinfo"
	m["end_session_endpoint"] = iss + "/oauth2/logout"
	m["scopes_supported"] = scopes
	m["subject_types_supported"] = subjects
	m["id_token_signing_alg_values_supported"] = p.keys.Algorithms()
	m["userinfo_signing_alg_values_supported"] = []string{}
	m["claims_supported"] = claimsSupported()
	m["claims_parameter_supported"] = false
	m["request_parameter_supported"] = false
	m["request_uri_parameter_supported"] = false
	m["prompt_values_supported"] = promptValues
	m["acr_values_supported"] = []string{store.LevelLoggedOn}
	m["claim_types_supported"] = []string{"normal"}
	m["frontchannel_logout_supported"] = false
	m["backchannel_logout_supported"] = false
	return m
}

func (p *Provider) handleDiscovery(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, p.Discovery())
}

// handleUserinfo is the UserInfo endpoint (OpenID Connect Core 5.3): GET or
// POST with the access token in the Authorization header only (never in
// the query or the body), the claims its scope releases, sub as the
// client sees it. Errors are RFC 6750 challenges.
func (p *Provider) handleUserinfo(c echo.Context) error {
	h := c.Response().Header()
	refuse := func(status int, code, desc string) error {
		h.Set("WWW-Authenticate", bearer.Challenge(code, desc, ""))
		if code == "" {
			return c.NoContent(status)
		}
		return c.JSON(status, map[string]string{"error": code, "error_description": desc})
	}
	r := c.Request()
	if r.URL.Query().Has("access_token") {
		return refuse(http.StatusBadRequest, "invalid_request", "the access token must be sent in the Authorization header")
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return refuse(http.StatusUnauthorized, "", "")
	}
	raw, ok := bearer.Token(auth)
	if !ok || len(r.Header.Values("Authorization")) > 1 {
		return refuse(http.StatusBadRequest, "invalid_request", "malformed Authorization header")
	}
	v, err := p.lookup(r.Context(), tokenhash.Sum(raw))
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInactive):
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token is not active")
	case err != nil:
		p.log.Error("userinfo: token look-up failed", "error", err.Error())
		h.Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	case v.tok.Kind != store.KindAccess || v.user == nil:
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token is not a user's")
	case !hasOpenID(v.tok.Scope):
		h.Set("WWW-Authenticate", bearer.Challenge("insufficient_scope", "the openid scope is required", ScopeOpenID))
		return c.JSON(http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "the openid scope is required"})
	}
	client, err := p.getClient(r.Context(), v.tok.ClientID)
	if err != nil {
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token's client is gone")
	}
	out := userClaims(v.user, v.tok.Scope)
	out["sub"] = p.subject(client, v.user.ID)
	h.Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// checkPairwise checks a client's subject type when it is registered.
func (p *Provider) checkPairwise(n *NewClient) error {
	switch n.SubjectType {
	case "", store.SubjectPublic:
		n.SubjectType = ""
		if n.SectorIdentifier != "" {
			return errors.New("a sector identifier needs subject type pairwise")
		}
		return nil
	case store.SubjectPairwise:
	default:
		return fmt.Errorf("subject type %q: use public or pairwise", n.SubjectType)
	}
	if len(p.cfg.PairwiseSecret) == 0 {
		return errors.New("pairwise subjects need the provider's pairwise secret (idp.oidc.pairwise_secret)")
	}
	if slices.Contains(n.Grants, GrantTokenExchange) || slices.Contains(n.Grants, PermissionIntrospect) {
		return errors.New("a pairwise client may not use token exchange or introspection: those answer with the user's own id")
	}
	if n.SectorIdentifier != "" {
		if strings.ContainsAny(n.SectorIdentifier, "/:@ ") || len(n.SectorIdentifier) > 253 {
			return fmt.Errorf("sector identifier %q must be a host name", n.SectorIdentifier)
		}
		return nil
	}
	hosts := map[string]bool{}
	for _, r := range n.RedirectURIs {
		if u, err := url.Parse(r); err == nil {
			hosts[u.Hostname()] = true
		}
	}
	if len(hosts) != 1 {
		return errors.New("a pairwise client whose redirect URIs are not on one host needs a sector identifier")
	}
	return nil
}
