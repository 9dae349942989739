// Package auth is the gateway's auth stage: it enforces a route's auth
// policy (oauth2, optional, jwt), swaps the caller's opaque token for a
// short-lived JWT for the chosen upstream (the phantom-token pattern), and
// caches the exchange by a hash of the token — never the token — so that a
// request with a known token costs a map lookup.
package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/bearer"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// ErrInvalidToken means the token is unknown, expired or revoked.
var ErrInvalidToken = errors.New("invalid token")

// Principal is what a token grants.
type Principal struct {
	ClientID string
	Subject  string
	Scope    string
	Level    string
	// Expires is when the token stops being valid; the cache never keeps a
	// principal beyond it and no JWT outlives it.
	Expires time.Time
	// Claims are further string claims (customer_number, device_id, …).
	Claims map[string]string
	// Ref is the issuer's own handle, passed back to Mint.
	Ref any
}

// Issuer resolves tokens and mints JWTs: the built-in IDP, or a remote one.
type Issuer interface {
	// Resolve returns the principal of an active opaque access token, or
	// ErrInvalidToken.
	Resolve(ctx context.Context, token string) (*Principal, error)
	// Anonymous returns the principal of an application token for clientID
	// (policy optional, callers without a token).
	Anonymous(ctx context.Context, clientID string) (*Principal, error)
	// VerifyJWT verifies a ficus JWT presented by a caller (policy jwt),
	// with pinned algorithms, issuer, audience and expiry.
	VerifyJWT(ctx context.Context, token, audience string) (*Principal, error)
	// Mint signs a JWT for audience, expiring by exp.
	Mint(ctx context.Context, p *Principal, audience string) (jwt string, exp time.Time, err error)
}

// JPTIssuer is an Issuer that also takes the JPTs of web sessions: on
// oauth2 routes a Bearer token that is a JPT (typ jpt+jwt) is swapped for
// a JWT for the upstream like an opaque token, and cached by its hash
// until its session ends. Without it, a JPT is refused (401).
type JPTIssuer interface {
	Issuer
	// ResolveJPT verifies a JPT and returns the principal of its session
	// and the session's hash, which the notices of its end name; or
	// ErrInvalidToken when the JPT is not valid or its session ended.
	ResolveJPT(ctx context.Context, jpt string) (p *Principal, sessionHash string, err error)
}

// HashResolver is an Issuer that resolves an opaque token by the hash the
// stage has already computed for its cache (tokenhash.Sum), so that a
// cache miss does not hash the token twice.
type HashResolver interface {
	Issuer
	// ResolveHash is Resolve of token, whose tokenhash.Sum is hash.
	ResolveHash(ctx context.Context, token, hash string) (*Principal, error)
}

// Options configure a Stage.
type Options struct {
	Issuer Issuer
	// CacheSize bounds the exchange cache (entries). Default 100,000.
	CacheSize int
	// MaxCacheTTL bounds how long a resolved token is trusted without asking
	// the issuer again; revocations also remove entries at once (Invalidate).
	// Default 60s.
	MaxCacheTTL time.Duration
	// NegativeTTL remembers unknown tokens this long. Default 2s.
	NegativeTTL time.Duration
	// ReuseMargin: a minted JWT is reused until this long before it expires.
	// Default 30s.
	ReuseMargin time.Duration
	// JWTAudience is the audience a caller's own JWT must carry on jwt
	// routes. Default "ficus-gateway".
	JWTAudience string
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Policies are the stages of further policies by name (session,
	// bridge): a route with one of them is authorized by that stage.
	Policies map[string]strangler.AuthStage
}

// Stage is a strangler.AuthStage. Safe for concurrent use.
type Stage struct {
	o     Options
	cache *otter.Cache[string, *entry]
	neg   *otter.Cache[string, struct{}]
	anon  *otter.Cache[string, *entry]
	// jpts finds the cached JPTs of a session by the session's hash, so
	// that the notice of its end drops them; an entry lives as long as
	// the cache keeps a JPT.
	jpts *otter.Cache[string, []string]
	sf   singleflight.Group
}

var _ strangler.AuthStage = (*Stage)(nil)

type entry struct {
	p      *Principal
	scopes []string // p.Scope, split once
	mu     sync.Mutex
	jwts   map[string]minted
}

func newEntry(p *Principal) *entry { return &entry{p: p, scopes: strings.Fields(p.Scope)} }

type minted struct {
	jwt  string
	cred http.Header // the header that carries it, built once
	exp  time.Time
}

// New returns a Stage.
func New(o Options) (*Stage, error) {
	if o.Issuer == nil {
		return nil, errors.New("auth: an issuer is required")
	}
	if o.CacheSize == 0 {
		o.CacheSize = 100000
	}
	if o.MaxCacheTTL == 0 {
		o.MaxCacheTTL = 60 * time.Second
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = 2 * time.Second
	}
	if o.ReuseMargin == 0 {
		o.ReuseMargin = 30 * time.Second
	}
	if o.JWTAudience == "" {
		o.JWTAudience = "ficus-gateway"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Stage{o: o}
	s.cache = otter.Must(&otter.Options[string, *entry]{MaximumSize: o.CacheSize, ExpiryCalculator: otter.ExpiryWriting[string, *entry](o.MaxCacheTTL)})
	s.neg = otter.Must(&otter.Options[string, struct{}]{MaximumSize: o.CacheSize, ExpiryCalculator: otter.ExpiryWriting[string, struct{}](o.NegativeTTL)})
	s.anon = otter.Must(&otter.Options[string, *entry]{MaximumSize: 10000, ExpiryCalculator: otter.ExpiryWriting[string, *entry](o.MaxCacheTTL)})
	s.jpts = otter.Must(&otter.Options[string, []string]{MaximumSize: o.CacheSize, ExpiryCalculator: otter.ExpiryWriting[string, []string](o.MaxCacheTTL)})
	return s, nil
}

// Invalidate drops cached exchanges of revoked tokens, by hash, and the
// cached JPTs of ended sessions, by the session's hash.
func (s *Stage) Invalidate(hashes []string) {
	for _, h := range hashes {
		s.cache.Invalidate(h)
		if js, ok := s.jpts.GetIfPresent(h); ok {
			for _, j := range js {
				s.cache.Invalidate(j)
			}
			s.jpts.Invalidate(h)
		}
	}
}

// Flush drops every cached exchange (when revocation notices may have been
// missed).
func (s *Stage) Flush() {
	s.cache.InvalidateAll()
	s.anon.InvalidateAll()
	s.jpts.InvalidateAll()
}

// resolve finds the principal of an opaque token or a JPT: from the
// cache, else from the issuer, with concurrent look-ups of one token
// collapsed.
func (s *Stage) resolve(ctx context.Context, tok string) (*entry, error) {
	h := tokenhash.Sum(tok) // the IDP's stored hash: revocation notices find the entry
	now := s.o.Now()
	if e, ok := s.cache.GetIfPresent(h); ok {
		if now.Before(e.p.Expires) {
			return e, nil
		}
		s.cache.Invalidate(h)
		return nil, ErrInvalidToken
	}
	if _, bad := s.neg.GetIfPresent(h); bad {
		return nil, ErrInvalidToken
	}
	v, err, _ := s.sf.Do(h, func() (any, error) {
		var p *Principal
		var sid string
		var err error
		if isJPT(tok) {
			if ji, ok := s.o.Issuer.(JPTIssuer); ok {
				p, sid, err = ji.ResolveJPT(ctx, tok)
			} else {
				err = ErrInvalidToken // no session layer here
			}
		} else if hr, ok := s.o.Issuer.(HashResolver); ok {
			p, err = hr.ResolveHash(ctx, tok, h)
		} else {
			p, err = s.o.Issuer.Resolve(ctx, tok)
		}
		if errors.Is(err, ErrInvalidToken) {
			s.neg.Set(h, struct{}{})
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		e := newEntry(p)
		s.cache.Set(h, e)
		if sid != "" {
			s.jpts.Compute(sid, func(js []string, _ bool) ([]string, otter.ComputeOp) {
				// A session's JPT is reused for minutes: a handful at most.
				return append(slices.Clip(js[max(0, len(js)-7):]), h), otter.WriteOp
			})
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

func (s *Stage) anonymous(ctx context.Context, client string) (*entry, error) {
	if e, ok := s.anon.GetIfPresent(client); ok && s.o.Now().Before(e.p.Expires) {
		return e, nil
	}
	v, err, _ := s.sf.Do("anon:"+client, func() (any, error) {
		p, err := s.o.Issuer.Anonymous(ctx, client)
		if err != nil {
			return nil, err
		}
		e := newEntry(p)
		s.anon.Set(client, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

// Authorize implements strangler.AuthStage.
func (s *Stage) Authorize(w http.ResponseWriter, r *http.Request, route *routes.Route) (strangler.Grant, bool) {
	a := route.Auth
	if a == nil {
		return nil, true
	}
	if st, ok := s.o.Policies[a.Policy]; ok {
		return st.Authorize(w, r, route)
	}
	switch a.Policy {
	case "oauth2", "optional", "jwt", "passthrough":
	default:
		// A further policy (session, bridge) whose stage this process
		// lacks: fail closed, never read it as oauth2.
		s.o.Logger.Error("route policy has no stage in this process; refusing", "route", route.Name, "policy", a.Policy)
		challenge(w, http.StatusUnauthorized, "", "authentication required", "")
		return nil, false
	}
	header := "Authorization"
	if a.Header != "" {
		header = textproto.CanonicalMIMEHeaderKey(a.Header)
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Authorization is not a list: with two, ficus would check one
		// while an upstream that reads the other sees another caller.
		challenge(w, http.StatusBadRequest, "invalid_request", "more than one Authorization header", "")
		return nil, false
	}
	raw, has := bearer.Token(r.Header.Get("Authorization"))
	ctx := r.Context()
	var e *entry
	var err error
	anonymous := false
	switch {
	case a.Policy == "optional" && r.Header.Get("Authorization") == "":
		anonymous = true
		if e, err = s.anonymous(ctx, a.Client); err != nil {
			s.o.Logger.Error("no application token for anonymous callers", "client", a.Client, "error", err.Error())
			unavailable(w)
			return nil, false
		}
	case !has:
		if r.Header.Get("Authorization") == "" {
			challenge(w, http.StatusUnauthorized, "", "authentication required", "")
		} else {
			challenge(w, http.StatusUnauthorized, "invalid_request", "a Bearer token is required", "")
		}
		return nil, false
	case a.Policy == "jwt":
		p, err := s.o.Issuer.VerifyJWT(ctx, raw, s.o.JWTAudience)
		if err != nil {
			challenge(w, http.StatusUnauthorized, "invalid_token", "the token is not valid", "")
			return nil, false
		}
		e = newEntry(p)
	default:
		if e, err = s.resolve(ctx, raw); err != nil {
			if errors.Is(err, ErrInvalidToken) {
				challenge(w, http.StatusUnauthorized, "invalid_token", "the token is not active", "")
			} else {
				s.o.Logger.Error("token look-up failed", "error", err.Error())
				unavailable(w)
			}
			return nil, false
		}
	}
	// The route's own policy, checked on every request: a token cached for
	// one route never passes another route's stricter policy.
	if len(a.Levels) > 0 && !slices.Contains(a.Levels, e.p.Level) {
		challenge(w, http.StatusForbidden, "insufficient_scope", "this resource needs level "+strings.Join(a.Levels, " or "), "")
		return nil, false
	}
	granted := e.scopes
	for _, sc := range a.ScopesAll {
		if !slices.Contains(granted, sc) {
			challenge(w, http.StatusForbidden, "insufficient_scope", "missing scope", strings.Join(a.ScopesAll, " "))
			return nil, false
		}
	}
	if len(a.ScopesAny) > 0 && !slices.ContainsFunc(a.ScopesAny, func(sc string) bool { return slices.Contains(granted, sc) }) {
		challenge(w, http.StatusForbidden, "insufficient_scope", "missing scope", strings.Join(a.ScopesAny, " "))
		return nil, false
	}
	return &grant{s: s, e: e, header: header, anonymous: anonymous}, true
}

type grant struct {
	s      *Stage
	e      *entry
	header string
	// anonymous: a caller without a token (policy optional), who got the
	// route's application token.
	anonymous bool
}

var _ strangler.ClientGrant = (*grant)(nil)

// Client returns the client id of the caller's token, or "" for an
// anonymous caller: rate limits by client count those by address.
func (g *grant) Client() string {
	if g.anonymous {
		return ""
	}
	return g.e.p.ClientID
}

func (g *grant) Claim(name string) string {
	p := g.e.p
	switch name {
	case "sub":
		return p.Subject
	case "client_id":
		return p.ClientID
	case "level":
		return p.Level
	case "scope":
		return p.Scope
	}
	return p.Claims[name]
}

// Credential returns the configured header and a JWT for audience, which
// the gateway puts on the new upstream's request in place of the client's
// token (and a client's copy of that header). Minted JWTs are reused until
// shortly before they expire.
func (g *grant) Credential(ctx context.Context, audience string) (http.Header, error) {
	m, err := g.e.jwtFor(ctx, g.s, audience, g.header)
	if err != nil {
		return nil, err
	}
	return m.cred, nil
}

func (e *entry) jwtFor(ctx context.Context, s *Stage, audience, header string) (minted, error) {
	now := s.o.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	key := audience
	if header != "Authorization" {
		key = header + " " + audience
	}
	if m, ok := e.jwts[key]; ok && now.Add(s.o.ReuseMargin).Before(m.exp) {
		return m, nil
	}
	jwt, exp, err := s.o.Issuer.Mint(ctx, e.p, audience)
	if err != nil {
		return minted{}, err
	}
	if e.jwts == nil {
		e.jwts = map[string]minted{}
	}
	m := minted{jwt: jwt, exp: exp}
	if header == "Authorization" {
		m.cred = http.Header{header: {"Bearer " + jwt}}
	} else {
		m.cred = http.Header{header: {jwt}}
	}
	e.jwts[key] = m
	return m, nil
}

// challenge answers 401 or 403 as RFC 6750 section 3 says, with the
// OAuth2 JSON body the IDP's errors have (error "unauthorized" when the
// request carried no credentials, which RFC 6750 gives no code).
func challenge(w http.ResponseWriter, status int, code, desc, scope string) {
	w.Header().Set("WWW-Authenticate", bearer.Challenge(code, desc, scope))
	if code == "" {
		code = "unauthorized"
	}
	(&idp.Error{Code: code, Description: desc, Status: status}).WriteJSON(w)
}

// unavailable answers 503 when a token cannot be looked up now; the
// client may retry in a second.
func unavailable(w http.ResponseWriter) {
	idp.ErrUnavailable.WithDescription("the identity provider cannot be reached").WithRetryAfter(1).WriteJSON(w)
}

// isJPT reports whether a Bearer token is JWT-shaped with the typ of a
// JPT. It verifies nothing: the issuer does.
func isJPT(tok string) bool {
	i := strings.IndexByte(tok, '.')
	if i <= 0 || i > 1024 || strings.Count(tok, ".") != 2 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[:i])
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	return json.Unmarshal(b, &h) == nil && strings.EqualFold(h.Typ, session.JPTType)
}
