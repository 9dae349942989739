package idp

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/maypok86/otter/v2"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Storage is everything a Provider keeps. Each part is declared beside the
// code that uses it; idp/store/memory and idp/store/postgres implement them
// all and pass one conformance suite (idp/store/storetest). Errors are the
// sentinels of package store (store.ErrNotFound, ...), as each method says.
type Storage interface {
	ClientStorage
	ClientRegistry
	UserStorage
	TokenStorage
	RefreshStorage
	RevocationStorage
	CodeStorage
	KeyStorage
	AuditStorage
	CleanupStorage
}

// Provider is the identity provider: the token endpoint with one
// GrantHandler per grant (grant_*.go), client authentication
// (client_auth.go), introspection, revocation, JWT minting and
// verification, and user lifecycle, on a Storage and a KeyManager. Safe
// for concurrent use.
type Provider struct {
	cfg    Config
	st     Storage
	grants []GrantHandler
	keys   *KeyManager
	log    *slog.Logger
	now    func() time.Time
	audit  *auditor
	tracer trace.Tracer // nil: tracing off

	// dummyHash is verified against when a client or user does not exist,
	// so that an attempt takes as long as with a wrong secret.
	dummyHash string
	hashes    *hashGate
	busyLog   rate.Sometimes

	tokens      *tokenCache
	looking     singleflight.Group // token look-ups in flight, by hash
	clients     *otter.Cache[string, *store.Client]
	secretCache sync.Map // client id -> cachedSecret
	verifying   singleflight.Group
	clientLimit *limiters // per authenticated client (public clients: per client and address)
	failLimit   *limiters // failed client authentications per source address
	loginLimit  *limiters
	clientAddr  *clientaddr.Resolver

	browser BrowserSessions // nil: no IDP browser sessions (UseBrowserSessions)

	legacy      LegacyUsers         // nil: no lazy migration
	legacySem   *semaphore.Weighted // bounds legacy checks in flight
	legacyLimit *limiters           // failed legacy checks per source address
	legacyLog   rate.Sometimes

	upstreams UpstreamLogins // nil: no federated login (SetUpstreamLogins)

	onRevokeMu sync.RWMutex
	onRevoke   []func(hashes []string)
	// onUserRevoked hears of password changes and disabled users (under
	// onRevokeMu too).
	onUserRevoked []func(ctx context.Context, userID, why string) error
}

// Options wire a Provider.
type Options struct {
	// Config is the provider's configuration; Issuer is required, zero
	// fields take the defaults Config documents.
	Config Config
	// Store keeps clients, users, tokens, codes, keys and the audit trail.
	// Required.
	Store Storage
	// Keys signs and verifies JWTs. Required.
	Keys *KeyManager
	// Logger receives audit and operational events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Legacy, when set, checks the logins of usernames that are not ficus
	// users against the legacy system and migrates them on success (see
	// LegacyUsers). Failed legacy checks are limited per source address
	// like failed client authentications (Config.FailureRate). Nil: no
	// lazy migration.
	Legacy LegacyUsers
	// LegacyConcurrency bounds the legacy checks in flight at once; a
	// login that finds no free slot within Config.HashWait is refused with
	// 503 temporarily_unavailable. Default 8.
	LegacyConcurrency int
	// Tracer, if set, traces each token-endpoint call (a span with the
	// grant type, the client id and the outcome; never a secret). Nil: no
	// tracing.
	Tracer trace.TracerProvider
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
	if o.Tracer != nil {
		p.tracer = o.Tracer.Tracer(TracerName)
	}
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
	if o.Legacy != nil {
		if o.LegacyConcurrency <= 0 {
			o.LegacyConcurrency = 8
		}
		p.legacy, p.legacySem = o.Legacy, semaphore.NewWeighted(int64(o.LegacyConcurrency))
		p.legacyLimit = newLimiters(p.cfg.FailureRate, p.cfg.FailureBurst)
		p.legacyLog = rate.Sometimes{Interval: 10 * time.Second}
	}
	p.grants = []GrantHandler{ // the token endpoint's grants, one file each
		clientCredentialsGrant{grant{p, GrantClientCredentials}},
		passwordGrant{grant{p, GrantPassword}},
		refreshTokenGrant{grant{p, GrantRefreshToken}},
		authorizationCodeGrant{grant{p, GrantAuthorizationCode}},
		tokenExchangeGrant{grant{p, GrantTokenExchange}},
	}
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
