package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	claimset "github.com/ficus-gw/ficus/idp/claims"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Grant types and the introspection permission.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	// PermissionIntrospect lets a client call the introspection endpoint.
	PermissionIntrospect = "introspection"
)

// Token type URIs (RFC 8693).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// Provider is the identity provider: grants, introspection, revocation
// and user lifecycle, on a Store and a KeyManager. Safe for concurrent use.
type Provider struct {
	cfg   Config
	st    store.Store
	keys  *KeyManager
	log   *slog.Logger
	now   func() time.Time
	audit *auditor

	// dummyHash is verified against when a client or user does not exist,
	// so that an attempt takes as long as with a wrong secret.
	dummyHash string
	hashes    *hashGate
	busyLog   rate.Sometimes

	tokens      *tokenCache
	clients     *otter.Cache[string, *store.Client]
	secretCache sync.Map // client id -> cachedSecret
	verifying   singleflight.Group
	clientLimit *limiters // per authenticated client (public clients: per client and address)
	failLimit   *limiters // failed client authentications per source address
	loginLimit  *limiters
	clientAddr  *clientaddr.Resolver

	onRevokeMu sync.RWMutex
	onRevoke   []func(hashes []string)
}

type cachedSecret struct {
	digest [32]byte
	until  time.Time
}

// Options wire a Provider.
type Options struct {
	Config Config
	Store  store.Store
	Keys   *KeyManager
	// Logger receives audit and operational events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New returns a Provider. Close it to flush the audit trail.
func New(o Options) (*Provider, error) {
	if o.Store == nil || o.Keys == nil {
		return nil, errors.New("idp: a store and a key manager are required")
	}
	if o.Config.Issuer == "" {
		return nil, errors.New("idp: the issuer URL is required")
	}
	o.Config.defaults()
	p := &Provider{cfg: o.Config, st: o.Store, keys: o.Keys, log: o.Logger, now: o.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.dummyHash = p.cfg.Hashing.dummy()
	p.hashes = newHashGate(p.cfg.HashMemory, p.cfg.HashWait)
	p.busyLog = rate.Sometimes{Interval: 10 * time.Second}
	p.clientLimit = newLimiters(p.cfg.ClientRate, p.cfg.ClientBurst)
	p.failLimit = newLimiters(p.cfg.FailureRate, p.cfg.FailureBurst)
	p.clientAddr = clientaddr.New(p.cfg.TrustedProxies)
	p.loginLimit = newLimiters(p.cfg.LoginRate, p.cfg.LoginBurst)
	p.audit = newAuditor(p.st, p.log)
	p.tokens = newTokenCache(p.cfg.TokenCacheTTL, 100000)
	if p.cfg.ClientCacheTTL > 0 {
		p.clients = otter.Must(&otter.Options[string, *store.Client]{MaximumSize: 10000,
			ExpiryCalculator: otter.ExpiryWriting[string, *store.Client](p.cfg.ClientCacheTTL)})
	}
	return p, nil
}

// Close flushes the audit trail.
func (p *Provider) Close() { p.audit.close() }

// Config returns the effective configuration.
func (p *Provider) Config() Config { return p.cfg }

// Keys returns the key manager.
func (p *Provider) Keys() *KeyManager { return p.keys }

// Store returns the store.
func (p *Provider) Store() store.Store { return p.st }

// OnRevoke registers f to hear the hashes of every revoked token (the
// gateway's exchange cache uses it; PostgreSQL NOTIFY carries it to other
// instances).
func (p *Provider) OnRevoke(f func(hashes []string)) {
	p.onRevokeMu.Lock()
	defer p.onRevokeMu.Unlock()
	p.onRevoke = append(p.onRevoke, f)
}

func (p *Provider) revoked(hashes []string) {
	if len(hashes) == 0 {
		return
	}
	p.tokens.invalidate(hashes)
	p.onRevokeMu.RLock()
	defer p.onRevokeMu.RUnlock()
	for _, f := range p.onRevoke {
		f(hashes)
	}
}

// TokenResponse is the token endpoint's success answer (RFC 6749 5.1,
// RFC 8693 2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
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

// AuthenticateClient authenticates the calling client by
// client_secret_basic or client_secret_post, or identifies a public client
// by client_id. It never reveals whether the client exists.
//
// Rate limits apply in this order: an address with too many failed
// authentications is refused (429) before any work; a failure (bad or
// missing credentials, or a check refused because the hashing budget
// stayed full) charges the caller's address, never the client it named;
// only a client that authenticated is charged its own bucket (a public
// client, which anyone can name, per client and address). Argon2id checks
// in flight from an address never outnumber the failures it has left.
func (p *Provider) AuthenticateClient(ctx context.Context, r *Request) (*store.Client, *Error) {
	now := p.now()
	addr := addrKey(r.RemoteIP)
	refused := func(wait int) *Error {
		return ErrSlowDown.WithDescription("too many failed client authentications from this address").WithRetryAfter(wait)
	}
	if blocked, wait := p.failLimit.blocked(addr, now); blocked {
		return nil, refused(wait)
	}
	admit := func() (func(), *Error) {
		done, ok, wait := p.failLimit.admit(addr, now)
		if !ok {
			return nil, refused(wait)
		}
		return done, nil
	}
	c, oerr := p.authenticateClient(ctx, r, now, admit)
	if oerr != nil {
		if errors.Is(oerr, ErrInvalidClient) || errors.Is(oerr, errHashBusy) {
			p.failLimit.charge(addr, now)
		}
		return nil, oerr
	}
	key := "client:" + c.ID
	if c.Public() {
		key += "|" + addr
	}
	if ok, wait := p.clientLimit.allow(key, now); !ok {
		return nil, ErrSlowDown.WithDescription("too many requests for this client").WithRetryAfter(wait)
	}
	return c, nil
}

// authenticateClient authenticates without rate limits; admit is asked
// before every argon2id check and its done called after.
func (p *Provider) authenticateClient(ctx context.Context, r *Request, now time.Time, admit func() (func(), *Error)) (*store.Client, *Error) {
	id, secret := r.get("client_id"), r.get("client_secret")
	if r.HasBasic {
		if secret != "" {
			return nil, ErrInvalidRequest.WithDescription("use one client authentication method, not two")
		}
		if id != "" && id != r.BasicID {
			return nil, ErrInvalidRequest.WithDescription("client_id does not match the authenticated client")
		}
		id, secret = r.BasicID, r.BasicPW
	}
	if id == "" {
		return nil, ErrInvalidClient.WithDescription("client authentication required")
	}
	c, err := p.getClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if secret == "" { // as fast as a known confidential client without a secret
			p.auditFail(ctx, id, "", r.RemoteIP, "unknown client")
			return nil, ErrInvalidClient.WithDescription("client authentication required")
		}
		done, oerr := admit()
		if oerr != nil {
			return nil, oerr
		}
		_, oerr = p.verifyHash(ctx, p.dummyHash, secret) // the same cost as a wrong secret
		done()
		if oerr != nil {
			return nil, oerr
		}
		p.auditFail(ctx, id, "", r.RemoteIP, "unknown client")
		return nil, ErrInvalidClient.WithDescription("client authentication failed")
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	if c.Public() {
		if secret != "" {
			return nil, ErrInvalidClient.WithDescription("client authentication failed")
		}
		return c, nil
	}
	if secret == "" {
		return nil, ErrInvalidClient.WithDescription("client authentication required")
	}
	ok, oerr := p.verifySecret(ctx, c, secret, now, admit)
	if oerr != nil {
		return nil, oerr
	}
	if !ok {
		p.auditFail(ctx, id, "", r.RemoteIP, "bad client secret")
		return nil, ErrInvalidClient.WithDescription("client authentication failed")
	}
	return c, nil
}

// verifySecret checks a client secret. A secret that verified recently is
// recognised by its SHA-256 digest (constant-time) until SecretCacheTTL,
// so that machine clients do not pay argon2id on every request. A check
// that needs argon2id runs within the hashing budget and may be refused
// (503) when the budget stays full; admit is asked first.
func (p *Provider) verifySecret(ctx context.Context, c *store.Client, secret string, now time.Time, admit func() (func(), *Error)) (bool, *Error) {
	digest := sha256.Sum256([]byte(c.ID + "\x00" + secret))
	if v, ok := p.secretCache.Load(c.ID); ok {
		cs := v.(cachedSecret)
		if now.Before(cs.until) && subtle.ConstantTimeCompare(cs.digest[:], digest[:]) == 1 {
			return true, nil
		}
	}
	done, oerr := admit()
	if oerr != nil {
		return false, oerr
	}
	defer done()
	// Concurrent first requests with the same credentials share one slow
	// verification instead of each running argon2id (a cold-start herd).
	ok, err, _ := p.verifying.Do(string(digest[:]), func() (any, error) {
		checked := false
		for _, s := range c.Secrets {
			if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
				continue
			}
			checked = true
			match, oerr := p.verifyHash(ctx, s.Hash, secret)
			if oerr != nil {
				return false, oerr
			}
			if match {
				until := now.Add(p.cfg.SecretCacheTTL)
				if !s.ExpiresAt.IsZero() && s.ExpiresAt.Before(until) {
					until = s.ExpiresAt
				}
				p.secretCache.Store(c.ID, cachedSecret{digest: digest, until: until})
				return true, nil
			}
		}
		if !checked { // every secret expired: cost what a wrong secret costs
			if _, oerr := p.verifyHash(ctx, p.dummyHash, secret); oerr != nil {
				return false, oerr
			}
		}
		return false, nil
	})
	if err != nil {
		return false, err.(*Error)
	}
	return ok.(bool), nil
}

// Token handles a token-endpoint request.
func (p *Provider) Token(ctx context.Context, r *Request) (*TokenResponse, *Error) {
	gt := r.get("grant_type")
	if gt == "" {
		return nil, ErrInvalidRequest.WithDescription("grant_type is required")
	}
	c, oerr := p.AuthenticateClient(ctx, r)
	if oerr != nil {
		return nil, oerr
	}
	switch gt {
	case GrantClientCredentials, GrantPassword, GrantRefreshToken, GrantAuthorizationCode, GrantTokenExchange:
	default:
		return nil, ErrUnsupportedGrantType.WithDescription("grant_type %q is not supported", gt)
	}
	if !slices.Contains(c.Grants, gt) {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "grant not allowed: "+gt)
		return nil, ErrUnauthorizedClient.WithDescription("this client may not use %s", gt)
	}
	if c.Public() && gt != GrantAuthorizationCode && gt != GrantRefreshToken {
		return nil, ErrUnauthorizedClient.WithDescription("public clients may only use authorization_code with PKCE")
	}
	var resp *TokenResponse
	switch gt {
	case GrantClientCredentials:
		resp, oerr = p.clientCredentials(ctx, c, r)
	case GrantPassword:
		resp, oerr = p.password(ctx, c, r)
	case GrantRefreshToken:
		resp, oerr = p.refresh(ctx, c, r)
	case GrantAuthorizationCode:
		resp, oerr = p.authorizationCode(ctx, c, r)
	case GrantTokenExchange:
		resp, oerr = p.tokenExchange(ctx, c, r)
	}
	if oerr != nil {
		if oerr.Status >= 500 && !errors.Is(oerr, errHashBusy) {
			p.log.Error("token endpoint failed", "client_id", c.ID, "grant", gt, "error", oerr.Error())
		}
		return nil, oerr
	}
	return resp, nil
}

// grantScope checks a requested scope against what may be granted; an
// empty request grants all of allowed.
func grantScope(requested string, allowed []string) (string, *Error) {
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

func (p *Provider) clientCredentials(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, *Error) {
	scope, oerr := grantScope(r.get("scope"), c.Scopes)
	if oerr != nil {
		return nil, oerr
	}
	now := p.now()
	raw := newOpaque(AccessTokenPrefix)
	t := &store.Token{Hash: tokenhash.Sum(raw), Kind: store.KindAccess, ClientID: c.ID, Scope: scope, Level: store.LevelAnonymous,
		IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
	if dev := r.get("device_id"); dev != "" && len(dev) <= 128 {
		t.Extra = map[string]string{"device_id": dev}
	}
	if err := p.st.InsertTokens(ctx, t); err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_issued", c.ID, "", GrantClientCredentials, r.RemoteIP)
	return &TokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresAt.Sub(now).Seconds()), Scope: scope}, nil
}

func (p *Provider) password(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, *Error) {
	if !p.cfg.AllowPassword || !c.FirstParty || c.Public() {
		return nil, ErrUnauthorizedClient.WithDescription("the password grant is only for first-party confidential clients")
	}
	username, pw := r.get("username"), r.get("password")
	if username == "" || pw == "" {
		return nil, ErrInvalidRequest.WithDescription("username and password are required")
	}
	now := p.now()
	if ok, wait := p.loginLimit.allow("login:"+username+"|"+r.RemoteIP, now); !ok {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "login rate limited")
		return nil, ErrSlowDown.WithDescription("too many login attempts; try again later").WithRetryAfter(wait)
	}
	u, oerr := p.checkUser(ctx, username, pw)
	if oerr != nil {
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "bad user credentials")
		return nil, oerr
	}
	scope, oerr := grantScope(r.get("scope"), c.Scopes)
	if oerr != nil {
		return nil, oerr
	}
	level := store.LevelLoggedOn
	if v := r.get("remember"); v == "true" || v == "1" {
		level = store.LevelReturning
	}
	return p.issueLogin(ctx, c, u, scope, level, uuid.NewString(), GrantPassword, r.RemoteIP)
}

// checkUser verifies a user's credentials in the same time whether or not
// the user exists.
func (p *Provider) checkUser(ctx context.Context, username, pw string) (*store.User, *Error) {
	u, err := p.st.GetUserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		if _, oerr := p.verifyHash(ctx, p.dummyHash, pw); oerr != nil {
			return nil, oerr
		}
		return nil, ErrInvalidGrant.WithDescription("invalid username or password")
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	match, oerr := p.verifyHash(ctx, u.PasswordHash, pw)
	if oerr != nil {
		return nil, oerr
	}
	if !match || !u.Enabled {
		return nil, ErrInvalidGrant.WithDescription("invalid username or password")
	}
	return u, nil
}

// issueLogin issues an access token and a refresh token for a new login
// family, then enforces the per-user token limit.
func (p *Provider) issueLogin(ctx context.Context, c *store.Client, u *store.User, scope, refreshLevel, family, grant, ip string) (*TokenResponse, *Error) {
	now := p.now()
	rawAT, rawRT := newOpaque(AccessTokenPrefix), newOpaque(RefreshTokenPrefix)
	at := &store.Token{Hash: tokenhash.Sum(rawAT), Kind: store.KindAccess, ClientID: c.ID, UserID: u.ID, Scope: scope,
		Level: store.LevelLoggedOn, FamilyID: family, IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
	rt := &store.Token{Hash: tokenhash.Sum(rawRT), Kind: store.KindRefresh, ClientID: c.ID, UserID: u.ID, Scope: scope,
		Level: refreshLevel, FamilyID: family, IssuedAt: now}
	if refreshLevel == store.LevelReturning {
		rt.ExpiresAt = now.Add(ttl(c.ReturningRefreshTTL, p.cfg.ReturningRefreshTTL))
		rt.AbsoluteExpiresAt = now.Add(p.cfg.ReturningRefreshCap)
	} else {
		rt.ExpiresAt = now.Add(ttl(c.LoggedOnRefreshTTL, p.cfg.LoggedOnRefreshTTL))
		rt.AbsoluteExpiresAt = rt.ExpiresAt
		if at.ExpiresAt.After(rt.ExpiresAt) { // never beyond the session
			at.ExpiresAt = rt.ExpiresAt
		}
	}
	if err := p.st.InsertTokens(ctx, at, rt); err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_issued", c.ID, u.ID, grant, ip)
	if evicted, err := p.st.EvictOldest(ctx, u.ID, p.cfg.MaxFamiliesPerUser, now); err != nil {
		p.log.Error("token limit eviction failed", "user_id", u.ID, "error", err.Error())
	} else if len(evicted) > 0 {
		p.auditOK(ctx, "tokens_evicted", c.ID, u.ID, grant, ip)
		p.revoked(evicted)
	}
	return &TokenResponse{AccessToken: rawAT, TokenType: "Bearer", ExpiresIn: int64(at.ExpiresAt.Sub(now).Seconds()),
		RefreshToken: rawRT, Scope: scope}, nil
}

func (p *Provider) refresh(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, *Error) {
	raw := r.get("refresh_token")
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("refresh_token is required")
	}
	now := p.now()
	hash := tokenhash.Sum(raw)
	// The user is checked before the rotation: issue runs inside the
	// store's atomic step and must not call the store.
	if peek, err := p.st.GetToken(ctx, hash); err == nil && peek.UserID != "" {
		u, err := p.st.GetUser(ctx, peek.UserID)
		if err != nil || !u.Enabled {
			p.auditFail(ctx, c.ID, peek.UserID, r.RemoteIP, "refresh for a disabled or deleted user")
			return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
		}
	}
	var rawAT, rawRT string
	var at *store.Token
	old, err := p.st.RotateRefresh(ctx, hash, now, func(old *store.Token) ([]*store.Token, error) {
		if old.ClientID != c.ID {
			return nil, errWrongClient
		}
		scope := old.Scope
		if req := r.get("scope"); req != "" {
			s, oerr := grantScope(req, strings.Fields(old.Scope))
			if oerr != nil {
				return nil, oerr
			}
			scope = s
		}
		rawAT, rawRT = newOpaque(AccessTokenPrefix), newOpaque(RefreshTokenPrefix)
		at = &store.Token{Hash: tokenhash.Sum(rawAT), Kind: store.KindAccess, ClientID: c.ID, UserID: old.UserID, Scope: scope,
			Level: old.Level, FamilyID: old.FamilyID, IssuedAt: now, ExpiresAt: now.Add(ttl(c.AccessTTL, p.cfg.AccessTTL))}
		rt := &store.Token{Hash: tokenhash.Sum(rawRT), Kind: store.KindRefresh, ClientID: c.ID, UserID: old.UserID, Scope: scope,
			Level: old.Level, FamilyID: old.FamilyID, IssuedAt: now, AbsoluteExpiresAt: old.AbsoluteExpiresAt, Extra: old.Extra}
		if old.Level == store.LevelReturning {
			rt.ExpiresAt = now.Add(ttl(c.ReturningRefreshTTL, p.cfg.ReturningRefreshTTL))
			if rt.ExpiresAt.After(old.AbsoluteExpiresAt) {
				rt.ExpiresAt = old.AbsoluteExpiresAt
			}
		} else {
			rt.ExpiresAt = old.ExpiresAt // a logged-on session is never extended
		}
		if at.ExpiresAt.After(rt.AbsoluteExpiresAt) && !rt.AbsoluteExpiresAt.IsZero() {
			at.ExpiresAt = rt.AbsoluteExpiresAt
		}
		return []*store.Token{at, rt}, nil
	})
	var oerr *Error
	switch {
	case err == nil:
		p.tokens.invalidate([]string{hash})
		p.auditOK(ctx, "token_refreshed", c.ID, old.UserID, GrantRefreshToken, r.RemoteIP)
		return &TokenResponse{AccessToken: rawAT, TokenType: "Bearer", ExpiresIn: int64(at.ExpiresAt.Sub(now).Seconds()),
			RefreshToken: rawRT, Scope: at.Scope}, nil
	case errors.Is(err, store.ErrTokenUsed):
		if old.ClientID == c.ID && now.Sub(old.UsedAt) > p.cfg.RefreshReuseGrace {
			hashes, rerr := p.st.RevokeFamily(ctx, old.FamilyID, now)
			if rerr != nil {
				return nil, ErrUnavailable.WithCause(rerr)
			}
			p.audit.add(ctx, store.AuditEvent{At: now, Event: "refresh_reuse", ClientID: c.ID, UserID: old.UserID, Grant: GrantRefreshToken,
				Outcome: "denied", Reason: "reused refresh token: family revoked", RemoteIP: r.RemoteIP})
			p.revoked(hashes)
		}
		return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInactive), errors.Is(err, errWrongClient):
		p.auditFail(ctx, c.ID, "", r.RemoteIP, "invalid refresh token")
		return nil, ErrInvalidGrant.WithDescription("refresh token is invalid")
	case errors.As(err, &oerr):
		return nil, oerr
	}
	return nil, ErrUnavailable.WithCause(err)
}

var errWrongClient = errors.New("token belongs to another client")

func (p *Provider) tokenExchange(ctx context.Context, c *store.Client, r *Request) (*TokenResponse, *Error) {
	subject, typ := r.get("subject_token"), r.get("subject_token_type")
	if subject == "" || typ == "" {
		return nil, ErrInvalidRequest.WithDescription("subject_token and subject_token_type are required")
	}
	if typ != TokenTypeAccessToken {
		return nil, ErrInvalidRequest.WithDescription("subject_token_type must be %s", TokenTypeAccessToken)
	}
	if rt := r.get("requested_token_type"); rt != "" && rt != TokenTypeJWT && rt != TokenTypeAccessToken {
		return nil, ErrInvalidRequest.WithDescription("requested_token_type must be %s", TokenTypeJWT)
	}
	aud := r.get("audience")
	if aud == "" && len(c.Audiences) == 1 {
		aud = c.Audiences[0]
	}
	if aud == "" || !slices.Contains(c.Audiences, aud) {
		return nil, ErrInvalidTarget.WithDescription("audience %q is not allowed for this client", aud)
	}
	v, err := p.lookup(ctx, tokenhash.Sum(subject))
	now := p.now()
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInactive) || (err == nil && v.tok.Kind != store.KindAccess) {
		return nil, ErrInvalidGrant.WithDescription("subject_token is not active")
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	tok := v.tok
	jwtStr, exp, err := p.mint(tok, v.user, aud)
	if err != nil {
		return nil, ErrServer.WithCause(err)
	}
	return &TokenResponse{AccessToken: jwtStr, IssuedTokenType: TokenTypeJWT, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(now).Seconds()), Scope: tok.Scope}, nil
}

// MintJWT signs an RFC 9068 access token for an active opaque token: iss,
// sub, aud, exp, iat, jti, client_id, scope, the user level, and for users
// the customer number and profile claims. It expires after JWTTTL, never
// after the opaque token.
func (p *Provider) MintJWT(ctx context.Context, tok *store.Token, audience string) (string, time.Time, error) {
	var u *store.User
	if tok.UserID != "" {
		var err error
		if u, err = p.st.GetUser(ctx, tok.UserID); err != nil {
			return "", time.Time{}, err
		}
	}
	return p.mint(tok, u, audience)
}

func (p *Provider) mint(tok *store.Token, u *store.User, audience string) (string, time.Time, error) {
	now := p.now()
	exp := now.Add(p.cfg.JWTTTL)
	if tok.ExpiresAt.Before(exp) {
		exp = tok.ExpiresAt
	}
	claims := jwt.MapClaims{}
	sub := tok.ClientID
	if u != nil {
		for k, v := range u.Claims {
			claims[k] = v
		}
		sub = u.ID
		if u.CustomerNumber != "" {
			claims["customer_number"] = u.CustomerNumber
		}
	}
	for k, v := range tok.Extra {
		claims[k] = v
	}
	// Registered and ficus claims last: a profile claim never overrides them.
	ac := claimset.Access{RegisteredClaims: jwt.RegisteredClaims{Issuer: p.cfg.Issuer, Subject: sub, Audience: jwt.ClaimStrings{audience},
		ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: uuid.NewString()}, ClientID: tok.ClientID, Level: tok.Level, Scope: tok.Scope}
	ac.Put(claims)
	s, err := p.keys.Sign(claims, claimset.AccessTokenType)
	return s, exp, err
}

// VerifyJWT verifies a ficus access JWT for audience: signature by a
// published key with that key's algorithm only, typ at+jwt, iss, aud, exp.
func (p *Provider) VerifyJWT(tokenString, audience string) (*claimset.Access, error) {
	var c claimset.Access
	t, err := jwt.ParseWithClaims(tokenString, &c, p.keys.Keyfunc,
		jwt.WithValidMethods(p.keys.Algorithms()), jwt.WithIssuer(p.cfg.Issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second), jwt.WithTimeFunc(p.now))
	if err != nil {
		return nil, err
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, claimset.AccessTokenType) {
		return nil, fmt.Errorf("typ %q is not %s", typ, claimset.AccessTokenType)
	}
	return &c, nil
}

// Introspection is an RFC 7662 answer.
type Introspection struct {
	Active         bool   `json:"active"`
	Scope          string `json:"scope,omitempty"`
	ClientID       string `json:"client_id,omitempty"`
	Username       string `json:"username,omitempty"`
	TokenType      string `json:"token_type,omitempty"`
	Exp            int64  `json:"exp,omitempty"`
	Iat            int64  `json:"iat,omitempty"`
	Sub            string `json:"sub,omitempty"`
	Iss            string `json:"iss,omitempty"`
	Level          string `json:"level,omitempty"`
	CustomerNumber string `json:"customer_number,omitempty"`
	DeviceID       string `json:"device_id,omitempty"`
}

// Introspect answers RFC 7662 for an authenticated caller allowed to
// introspect.
func (p *Provider) Introspect(ctx context.Context, caller *store.Client, raw string) (*Introspection, *Error) {
	if !slices.Contains(caller.Grants, PermissionIntrospect) {
		return nil, ErrUnauthorizedClient.WithDescription("this client may not introspect tokens")
	}
	if raw == "" {
		return nil, ErrInvalidRequest.WithDescription("token is required")
	}
	v, err := p.lookup(ctx, tokenhash.Sum(raw))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInactive) {
		return &Introspection{Active: false}, nil
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	tok := v.tok
	in := &Introspection{Active: true, Scope: tok.Scope, ClientID: tok.ClientID, Exp: tok.ExpiresAt.Unix(), Iat: tok.IssuedAt.Unix(),
		Sub: tok.ClientID, Iss: p.cfg.Issuer, Level: tok.Level, TokenType: "Bearer", DeviceID: tok.Extra["device_id"]}
	if tok.Kind == store.KindRefresh {
		in.TokenType = "refresh_token"
	}
	if u := v.user; u != nil {
		in.Sub, in.Username, in.CustomerNumber = u.ID, u.Username, u.CustomerNumber
	}
	return in, nil
}

// IntrospectionJWT signs an introspection answer for caller (RFC 9701).
func (p *Provider) IntrospectionJWT(caller *store.Client, in *Introspection) (string, error) {
	now := p.now()
	claims := jwt.MapClaims{
		"iss": p.cfg.Issuer, "aud": caller.ID, "iat": now.Unix(), "jti": uuid.NewString(),
		"token_introspection": in,
	}
	return p.keys.Sign(claims, "token-introspection+jwt")
}

// Revoke revokes a token of the calling client (RFC 7009). A refresh token
// takes its whole family with it. Unknown tokens, and tokens of other
// clients, are answered as success without effect.
func (p *Provider) Revoke(ctx context.Context, caller *store.Client, raw, ip string) *Error {
	if raw == "" {
		return ErrInvalidRequest.WithDescription("token is required")
	}
	tok, err := p.st.GetToken(ctx, tokenhash.Sum(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return ErrUnavailable.WithCause(err)
	}
	if tok.ClientID != caller.ID {
		return nil
	}
	now := p.now()
	var hashes []string
	if tok.Kind == store.KindRefresh && tok.FamilyID != "" {
		hashes, err = p.st.RevokeFamily(ctx, tok.FamilyID, now)
	} else {
		err = p.st.RevokeToken(ctx, tok.Hash, now)
		hashes = []string{tok.Hash}
	}
	if err != nil {
		return ErrUnavailable.WithCause(err)
	}
	p.auditOK(ctx, "token_revoked", caller.ID, tok.UserID, "", ip)
	p.revoked(hashes)
	return nil
}

// Logout revokes every token of a user.
func (p *Provider) Logout(ctx context.Context, userID string) error {
	return p.revokeUser(ctx, userID, "logout")
}

func (p *Provider) revokeUser(ctx context.Context, userID, why string) error {
	hashes, err := p.st.RevokeUser(ctx, userID, p.now())
	if err != nil {
		return err
	}
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "tokens_revoked", UserID: userID, Outcome: "ok", Reason: why})
	p.revoked(hashes)
	return nil
}

// SetPassword changes a user's password and revokes all their tokens.
func (p *Provider) SetPassword(ctx context.Context, userID, password string) error {
	h, err := p.hash(ctx, password)
	if err != nil {
		return err
	}
	if err := p.st.SetUserPassword(ctx, userID, h); err != nil {
		return err
	}
	return p.revokeUser(ctx, userID, "password changed")
}

// SetUserEnabled enables or disables a user; disabling revokes all their
// tokens.
func (p *Provider) SetUserEnabled(ctx context.Context, userID string, enabled bool) error {
	if err := p.st.SetUserEnabled(ctx, userID, enabled); err != nil {
		return err
	}
	if enabled {
		return nil
	}
	return p.revokeUser(ctx, userID, "user disabled")
}

// RunCleanup deletes expired tokens and codes every interval, in batches,
// until ctx ends; under sustained load a round keeps deleting until a batch
// comes back short, so the table stays bounded by what is live.
func (p *Provider) RunCleanup(ctx context.Context, interval time.Duration, batch int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		total := 0
		for ctx.Err() == nil {
			n, err := p.st.DeleteExpired(ctx, p.now().Add(-time.Minute), batch)
			if err != nil {
				p.log.Error("token cleanup failed", "error", err.Error())
				break
			}
			total += n
			if n < batch {
				break
			}
		}
		if total > 0 {
			p.log.Info("expired tokens deleted", "count", total)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
