// Package verify checks ficus JWTs offline, for services and the ficus
// sidecar: signatures against the IDP's JWKS (cached, refetched on an
// unknown kid at most once per RefetchInterval, and still served from the
// cache when the IDP cannot be reached or is slow: no lock is held across a
// fetch), algorithms pinned per key, issuer,
// audience and expiry. It offers net/http and echo middleware that put the
// claims in the request context.
package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
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
	// unknown kids. Default 10s.
	RefetchInterval time.Duration
	// Leeway for exp/iat. Default 5s.
	Leeway time.Duration
	// Client fetches the JWKS. Default: a client with a 5s timeout.
	Client *http.Client
	// Timeout bounds one JWKS fetch, whatever Client's own timeout.
	// Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Claims are the claims of a ficus access JWT.
type Claims struct {
	jwt.RegisteredClaims
	ClientID       string `json:"client_id"`
	Scope          string `json:"scope,omitempty"`
	Level          string `json:"level,omitempty"`
	CustomerNumber string `json:"customer_number,omitempty"`
	DeviceID       string `json:"device_id,omitempty"`
}

// HasScope reports whether the token carries scope s.
func (c *Claims) HasScope(s string) bool { return slices.Contains(strings.Fields(c.Scope), s) }

// Verifier verifies JWTs. Safe for concurrent use.
type Verifier struct {
	o Options
	// verified remembers tokens that verified, by SHA-256, until they
	// expire: a service sees the same JWT many times (ficus reuses it).
	verified *otter.Cache[[32]byte, *Claims]
	// mu guards keys and lastFetch; it is never held across the network.
	mu sync.RWMutex
	// keys by kid, with the one algorithm each may be used with.
	keys      map[string]pinnedKey
	lastFetch time.Time
	// fetches lets concurrent callers share the fetch in flight.
	fetches singleflight.Group
}

type pinnedKey struct {
	key any
	alg string
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
	if o.RefetchInterval == 0 {
		o.RefetchInterval = 10 * time.Second
	}
	if o.Leeway == 0 {
		o.Leeway = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{o: o, keys: map[string]pinnedKey{}}
	v.verified = otter.Must(&otter.Options[[32]byte, *Claims]{MaximumSize: 10000, ExpiryCalculator: otter.ExpiryWriting[[32]byte, *Claims](time.Minute)})
	return v, v.refetch(ctx, true)
}

// refetch loads the key set, at most once per RefetchInterval unless
// forced; callers that ask while a fetch is in flight share it. The fetch
// runs apart from any one caller, bounded by Options.Timeout, and each
// caller waits for it only as long as its own ctx lets it. On failure the
// keys already known stay.
func (v *Verifier) refetch(ctx context.Context, force bool) error {
	ch := v.fetches.DoChan("jwks", func() (any, error) { return nil, v.fetch(force) })
	select {
	case <-ctx.Done():
		return fmt.Errorf("verify: fetching the JWKS: %w", ctx.Err())
	case r := <-ch:
		return r.Err
	}
}

func (v *Verifier) fetch(force bool) error {
	v.mu.Lock()
	now := v.o.Now()
	if !force && now.Sub(v.lastFetch) < v.o.RefetchInterval {
		v.mu.Unlock()
		return nil
	}
	v.lastFetch = now
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), v.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.o.JWKSURL, nil)
	if err != nil {
		return err
	}
	resp, err := v.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("verify: fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("verify: fetching the JWKS: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("verify: the JWKS does not parse: %w", err)
	}
	keys := map[string]pinnedKey{}
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		alg := k.Algorithm
		if alg == "" {
			switch k.Key.(type) {
			case ed25519.PublicKey:
				alg = "EdDSA"
			case *ecdsa.PublicKey:
				alg = "ES256"
			case *rsa.PublicKey:
				alg = "RS256"
			}
		}
		if slices.Contains(v.o.Algorithms, alg) {
			keys[k.KeyID] = pinnedKey{key: k.Key, alg: alg}
		}
	}
	v.mu.Lock()
	v.keys = keys
	v.mu.Unlock()
	return nil
}

// key returns the key of kid, fetching the key set when kid is unknown
// (rate limited; known keys survive a failed fetch).
func (v *Verifier) key(ctx context.Context, kid string) (pinnedKey, error) {
	v.mu.RLock()
	k, ok := v.keys[kid]
	v.mu.RUnlock()
	if ok {
		return k, nil
	}
	err := v.refetch(ctx, false)
	v.mu.RLock()
	k, ok = v.keys[kid]
	v.mu.RUnlock()
	switch {
	case ok:
		return k, nil
	case err != nil:
		return pinnedKey{}, fmt.Errorf("unknown kid %q: %w", kid, err)
	}
	return pinnedKey{}, fmt.Errorf("unknown kid %q", kid)
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
	_, err := jwt.ParseWithClaims(raw, &c, v.Keyfunc(ctx), opts...)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Keyfunc resolves a token's kid to a JWKS key and refuses a token whose
// alg is not that key's, for callers parsing other JWTs from the same IDP
// (such as RFC 9701 introspection answers).
func (v *Verifier) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("alg %s does not match the key's %s", t.Method.Alg(), k.alg)
		}
		return k.key, nil
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
			return nil, http.StatusUnauthorized, `Bearer realm="ficus"`
		}
		raw = tok
	}
	if raw == "" {
		return nil, http.StatusUnauthorized, `Bearer realm="ficus"`
	}
	c, err := v.Verify(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		return nil, http.StatusUnauthorized, `Bearer realm="ficus", error="invalid_token"`
	}
	for _, s := range scopes {
		if !c.HasScope(s) {
			return nil, http.StatusForbidden, fmt.Sprintf(`Bearer realm="ficus", error="insufficient_scope", scope=%q`, strings.Join(scopes, " "))
		}
	}
	return c, 0, ""
}

// Middleware admits requests with a valid JWT carrying every scope, and
// puts the claims in the request context (ClaimsFrom). Others get 401 or
// 403, never a 500.
func (v *Verifier) Middleware(next http.Handler, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, status, challenge := v.Check(r, "", scopes)
		if c == nil {
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, http.StatusText(status), status)
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
