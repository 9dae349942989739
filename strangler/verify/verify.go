// Package verify checks ficus JWTs offline, for services and the ficus
// sidecar: signatures against the IDP's JWKS (cached by package jwks:
// refetched on an unknown kid at most once per RefetchInterval, and still
// served from the cache when the IDP cannot be reached or is slow: no lock
// is held across a fetch), algorithms pinned per key, issuer, audience and
// expiry. It offers net/http and echo middleware that put the
// claims in the request context.
package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/claims"

	"github.com/ficus-gw/ficus/strangler/bearer"
	"github.com/ficus-gw/ficus/strangler/verify/jwks"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/maypok86/otter/v2"
)

// Options configure a Verifier.
type Options struct {
	// JWKSURL is the IDP's key set, e.g. https://login.example.com/.well-known/jwks.json.
	JWKSURL string
	// Issuer, if set, must equal the iss claim.
	Issuer string
	// Audience must be in the aud claim.
	Audience string
	// Algorithms accepted; default EdDSA, ES256, RS256. Never none or HS*.
	Algorithms []string
	// RefetchInterval is the least time between two JWKS fetches caused by
	// unknown kids. Default 10s (jwks.DefaultRefetchInterval).
	RefetchInterval time.Duration
	// Leeway for exp/iat. Default 5s.
	Leeway time.Duration
	// Client fetches the JWKS. Default http.DefaultClient; a fetch is
	// bounded by Timeout anyway.
	Client *http.Client
	// Timeout bounds one JWKS fetch, whatever Client's own timeout.
	// Default 5s (jwks.DefaultTimeout).
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Claims are the claims of a ficus access JWT; their one home is
// idp/claims, shared with the IDP that mints them.
type Claims = claims.Access

// Verifier verifies JWTs. Safe for concurrent use.
type Verifier struct {
	o Options
	// verified remembers tokens that verified, by SHA-256, until they
	// expire: a service sees the same JWT many times (ficus reuses it).
	verified *otter.Cache[[32]byte, *Claims]
	// keys are the IDP's, by kid, each pinned to one of Options.Algorithms.
	keys *jwks.Set
}

// New returns a Verifier and fetches the key set once; a failure here is
// returned but the Verifier still works, fetching again on first use.
func New(ctx context.Context, o Options) (*Verifier, error) {
	if o.JWKSURL == "" || o.Audience == "" {
		return nil, errors.New("verify: the JWKS URL and the audience are required")
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{"EdDSA", "ES256", "RS256"}
	}
	for _, a := range o.Algorithms {
		if a == "none" || strings.HasPrefix(a, "HS") {
			return nil, fmt.Errorf("verify: algorithm %s is not allowed", a)
		}
	}
	if o.Leeway == 0 {
		o.Leeway = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{o: o, keys: &jwks.Set{URL: o.JWKSURL, Client: o.Client, Timeout: o.Timeout,
		RefetchInterval: o.RefetchInterval, Accept: jwks.SigningKeys(o.Algorithms...), Now: o.Now}}
	v.verified = otter.Must(&otter.Options[[32]byte, *Claims]{MaximumSize: 10000, ExpiryCalculator: otter.ExpiryWriting[[32]byte, *Claims](time.Minute)})
	return v, v.keys.Fetch(ctx)
}

// Verify checks a JWT and returns its claims. The claims are shared: do not
// modify them.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	h := sha256.Sum256([]byte(raw))
	if c, ok := v.verified.GetIfPresent(h); ok {
		if c.ExpiresAt != nil && v.o.Now().Before(c.ExpiresAt.Time.Add(v.o.Leeway)) {
			return c, nil
		}
		v.verified.Invalidate(h)
	}
	c, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	v.verified.Set(h, c)
	return c, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	var c Claims
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.o.Algorithms), jwt.WithAudience(v.o.Audience), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(v.o.Leeway), jwt.WithTimeFunc(v.o.Now)}
	if v.o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.o.Issuer))
	}
	t, err := jwt.ParseWithClaims(raw, &c, v.Keyfunc(ctx), opts...)
	if err != nil {
		return nil, err
	}
	// A session's JPT is never an access token, whoever signed it (its
	// keys are not in the JWKS either). Other typ values stay accepted: a
	// remote IDP may not set at+jwt.
	if typ, _ := t.Header["typ"].(string); strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), claims.SessionTokenType) {
		return nil, fmt.Errorf("verify: a %s is not an access token", claims.SessionTokenType)
	}
	return &c, nil
}

// Keyfunc resolves a token's kid to a JWKS key and refuses a token whose
// alg is not that key's, for callers parsing other JWTs from the same IDP
// (such as RFC 9701 introspection answers).
func (v *Verifier) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := v.keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != k.Alg {
			return nil, fmt.Errorf("alg %s does not match the key's %s", t.Method.Alg(), k.Alg)
		}
		return k.Public, nil
	}
}

// Algorithms lists the accepted algorithms.
func (v *Verifier) Algorithms() []string { return v.o.Algorithms }

type ctxKey struct{}

// ClaimsFrom returns the verified claims the middleware put in ctx.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// Check verifies the request's Bearer token (from header, "Authorization"
// when empty) and the scopes it must all carry. It returns the claims, or
// the status (401 or 403) and the WWW-Authenticate value to answer with.
func (v *Verifier) Check(r *http.Request, header string, scopes []string) (*Claims, int, string) {
	raw := r.Header.Get(header)
	if header == "" || header == "Authorization" {
		raw = r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(raw, "Bearer ")
		if !ok {
			if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
				tok, ok = raw[7:], true
			}
		}
		if !ok {
			return nil, http.StatusUnauthorized, bearer.Challenge("", "", "")
		}
		raw = tok
	}
	if raw == "" {
		return nil, http.StatusUnauthorized, bearer.Challenge("", "", "")
	}
	c, err := v.Verify(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		return nil, http.StatusUnauthorized, bearer.Challenge("invalid_token", "", "")
	}
	for _, s := range scopes {
		if !c.HasScope(s) {
			return nil, http.StatusForbidden, bearer.Challenge("insufficient_scope", "", strings.Join(scopes, " "))
		}
	}
	return c, 0, ""
}

// refuse answers a request that Check refused, in plain text.
func refuse(w http.ResponseWriter, status int, challenge string) {
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, http.StatusText(status), status)
}

// Middleware admits requests with a valid JWT carrying every scope, and
// puts the claims in the request context (ClaimsFrom). Others get 401 or
// 403, never a 500.
func (v *Verifier) Middleware(next http.Handler, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, status, challenge := v.Check(r, "", scopes)
		if c == nil {
			refuse(w, status, challenge)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

// Echo is the same check as echo middleware; handlers read the claims with
// ClaimsFrom(c.Request().Context()) or c.Get("ficus.claims").
func (v *Verifier) Echo(scopes ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			claims, status, challenge := v.Check(c.Request(), "", scopes)
			if claims == nil {
				c.Response().Header().Set("WWW-Authenticate", challenge)
				return echo.NewHTTPError(status, http.StatusText(status))
			}
			c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), ctxKey{}, claims)))
			c.Set("ficus.claims", claims)
			return next(c)
		}
	}
}
