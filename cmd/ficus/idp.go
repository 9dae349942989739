package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	websession "github.com/ficus-gw/ficus/strangler/session"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// newProvider builds the identity provider from the process config; legacy,
// if not nil, checks the logins of users not yet migrated; tp, if not nil,
// traces the token endpoint.
func newProvider(ctx context.Context, cfg *config.Config, sec *config.Resolved, st idp.Storage, logger *slog.Logger, legacyUsers idp.LegacyUsers,
	tp trace.TracerProvider) (*idp.Provider, error) {
	c := cfg.IDP
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Alg: c.SigningAlg, KEK: sec.KEK,
		PublishDelay: c.KeyPublishDelay.Std(0), RetainFor: cfg.JWTTTL() + time.Hour})
	if err != nil {
		return nil, fmt.Errorf("idp keys: %w", err)
	}
	ic := idp.Config{
		Issuer: cfg.Issuer(), AccessTTL: c.AccessTTL.Std(0), LoggedOnRefreshTTL: c.LoggedOnRefreshTTL.Std(0),
		ReturningRefreshTTL: c.ReturningRefreshTTL.Std(0), ReturningRefreshCap: c.ReturningRefreshCap.Std(0), JWTTTL: cfg.JWTTTL(),
		MaxFamiliesPerUser: c.MaxFamiliesPerUser, SecretGrace: c.SecretGrace.Std(0), AllowPassword: c.AllowPassword,
		HashMemory: int64(c.HashMemory), HashWait: c.HashWait.Std(0),
		IDTokenTTL: c.OIDC.IDTokenTTL.Std(0), PairwiseSecret: sec.PairwiseSecret,
	}
	ic.TrustedProxies, _ = cfg.TrustedPrefixes() // validated with the config
	if c.AuthFailuresPerMinute > 0 {
		ic.FailureRate, ic.FailureBurst = rate.Limit(c.AuthFailuresPerMinute/60), max(int(c.AuthFailuresPerMinute), 1)
	}
	if c.ClientRate > 0 {
		ic.ClientRate, ic.ClientBurst = rate.Limit(c.ClientRate), int(2*c.ClientRate)
	}
	if c.LoginPerMinute > 0 {
		ic.LoginRate, ic.LoginBurst = rate.Limit(c.LoginPerMinute/60), int(c.LoginPerMinute)
	}
	return idp.New(idp.Options{Config: ic, Store: st, Keys: keys, Logger: logger,
		Legacy: legacyUsers, LegacyConcurrency: c.LegacyLogin.MaxConcurrent, Tracer: tp})
}

// newLegacyUsers builds the checker of idp.legacy_login (lazy credential
// migration); nil when none is configured. A legacy query whose columns
// are wrong stops the start; a legacy database that cannot be reached is
// only warned about (its query is checked on first use). close releases it.
func newLegacyUsers(ctx context.Context, cfg *config.Config, sec *config.Resolved, logger *slog.Logger) (l idp.LegacyUsers, closeFn func(), err error) {
	switch c := cfg.IDP.LegacyLogin; {
	case c.HTTP != nil:
		h, err := legacy.NewHTTP(*c.HTTP)
		if err != nil {
			return nil, nil, fmt.Errorf("idp.legacy_login.http: %w", err)
		}
		logger.Info("lazy credential migration: logins of users not in ficus are checked by the monolith", "url", c.HTTP.URL)
		return h, func() {}, nil
	case c.Postgres != nil:
		pg, err := legacy.NewPostgres(sec.LegacyDSN, c.Postgres.SQL(), logger)
		if err != nil {
			return nil, nil, fmt.Errorf("idp.legacy_login.postgres: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		switch err := pg.Check(cctx); {
		case errors.Is(err, legacy.ErrColumns):
			pg.Close()
			return nil, nil, fmt.Errorf("idp.legacy_login.postgres.%w", err)
		case err != nil:
			logger.Warn("lazy credential migration: the legacy database cannot be reached yet; its query is checked on first use", "error", err.Error())
		default:
			logger.Info("lazy credential migration: logins of users not in ficus are checked on the legacy database")
		}
		return pg, pg.Close, nil
	}
	return nil, func() {}, nil
}

// idpHandler is the provider's HTTP endpoints; nil without a provider.
func idpHandler(p *idp.Provider) http.Handler {
	if p == nil {
		return nil
	}
	return p.Handler()
}

// newStage builds the gateway auth stage: on a remote IDP when configured,
// else on the IDP of this process; nil when there is neither (routes with
// an auth policy then refuse every request). policies are the stages of
// further policies (bridge). With the web session layer (sessions and
// web), JPTs are swapped on oauth2 routes and `policy: session` routes go
// to web.
func newStage(ctx context.Context, cfg *config.Config, sec *config.Resolved, p *idp.Provider, sessions *session.Manager,
	web *websession.Stage, logger *slog.Logger, policies map[string]strangler.AuthStage, remoteClient *http.Client) (*auth.Stage, error) {
	if web != nil {
		if policies == nil {
			policies = map[string]strangler.AuthStage{}
		}
		policies["session"] = web
	}
	o := auth.Options{Logger: logger, JWTAudience: cfg.Gateway.JWTAudience, MaxCacheTTL: cfg.CacheTTL(), Policies: policies}
	switch r := cfg.Gateway.RemoteIDP; {
	case r.Issuer != "":
		remote, err := auth.NewRemote(ctx, auth.RemoteOptions{Issuer: r.Issuer, ClientID: r.ClientID, ClientSecret: sec.RemoteIDPSecret, JWTAudience: cfg.Gateway.JWTAudience,
			Client: remoteClient})
		if remote == nil {
			return nil, err
		}
		if err != nil {
			logger.Warn("remote IDP keys not fetched yet; retrying on first use", "error", err.Error())
		}
		o.Issuer = remote
	case p != nil:
		o.Issuer = auth.Local{P: p, Sessions: sessions, SessionScope: cfg.Sessions.ServiceScope}
	default:
		return nil, nil
	}
	return auth.New(o)
}

// newRevocations fills f, which spreads the provider's revocations and
// the session manager's ends of sessions to the auth stage and, on
// PostgreSQL, to the other instances; nil when there is nothing to
// spread.
func newRevocations(f *revocation.Fanout, p *idp.Provider, stage *auth.Stage, sessions *session.Manager, be *backend, logger *slog.Logger) *revocation.Fanout {
	if p == nil || stage == nil {
		return nil
	}
	f.Logger = logger
	f.Local = []revocation.Cache{stage}
	f.Remote = []revocation.Cache{stage, revocation.Funcs{InvalidateFunc: p.ForgetTokens, FlushFunc: p.ForgetAll}}
	if sessions != nil {
		f.Remote = append(f.Remote, sessions)
	}
	if be.pool != nil {
		f.Notices = postgres.Notices{Pool: be.pool, Logger: logger}
	}
	p.OnRevoke(f.Revoked)
	return f
}
