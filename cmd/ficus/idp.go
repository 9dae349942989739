package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"
)

// backend is the opened store: PostgreSQL (with its pool) or memory.
type backend struct {
	pool *pgxpool.Pool
	idp  store.Store
}

func (b *backend) Close() {
	if b.pool != nil {
		b.pool.Close()
	}
}

// openBackend connects to the configured store and applies migrations.
func openBackend(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*backend, error) {
	if cfg.Store.Driver != "postgres" {
		logger.Warn("store: in-memory; NOTHING IS KEPT when ficus stops (use store.driver: postgres in production)")
		return &backend{idp: memory.New()}, nil
	}
	dsn, err := cfg.Store.DSN.Resolve()
	if err != nil {
		return nil, fmt.Errorf("store.dsn: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("store.dsn: not a PostgreSQL URL") // the value may hold a password: not echoed
	}
	pcfg.MaxConns = cfg.Store.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: PostgreSQL not reachable: %w", err)
	}
	if err := postgres.Migrate(pctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	logger.Info("store: PostgreSQL, migrations applied", "max_conns", cfg.Store.MaxConns)
	return &backend{pool: pool, idp: postgres.New(pool)}, nil
}

// newProvider builds the identity provider from the process config.
func newProvider(ctx context.Context, cfg *config.Config, st store.Store, logger *slog.Logger) (*idp.Provider, error) {
	c := cfg.IDP
	var kek []byte
	if c.KeyEncryptionKey != "" {
		v, err := c.KeyEncryptionKey.Resolve()
		if err != nil {
			return nil, fmt.Errorf("idp.key_encryption_key: %w", err)
		}
		if kek, err = base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err != nil || len(kek) != 32 {
			return nil, errors.New("idp.key_encryption_key: must be 32 bytes, base64 (openssl rand -base64 32)")
		}
	}
	jwtTTL := c.JWTTTL.Std(5 * time.Minute)
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Alg: c.SigningAlg, KEK: kek,
		PublishDelay: c.KeyPublishDelay.Std(0), RetainFor: jwtTTL + time.Hour})
	if err != nil {
		return nil, fmt.Errorf("idp keys: %w", err)
	}
	issuer := c.Issuer
	if issuer == "" {
		issuer = "http://" + cfg.Listen.Addr
	}
	ic := idp.Config{
		Issuer: strings.TrimSuffix(issuer, "/"), AccessTTL: c.AccessTTL.Std(0), LoggedOnRefreshTTL: c.LoggedOnRefreshTTL.Std(0),
		ReturningRefreshTTL: c.ReturningRefreshTTL.Std(0), ReturningRefreshCap: c.ReturningRefreshCap.Std(0), JWTTTL: jwtTTL,
		MaxFamiliesPerUser: c.MaxFamiliesPerUser, SecretGrace: c.SecretGrace.Std(0), AllowPassword: c.AllowPassword,
		HashMemory: int64(c.HashMemory), HashWait: c.HashWait.Std(0),
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
	return idp.New(idp.Options{Config: ic, Store: st, Keys: keys, Logger: logger})
}

// frontDoor sends the IDP's endpoints to the IDP and everything else to
// the gateway. The decision uses the normalised path, like routing does.
type frontDoor struct {
	idp, gateway http.Handler
	// hooks are the web-hook adapters' endpoints, by path.
	hooks map[string]http.Handler
}

func (f frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.idp != nil || len(f.hooks) > 0 {
		if p, err := routes.NormalizePath(r.URL.EscapedPath()); err == nil {
			if h := f.hooks[p]; h != nil {
				h.ServeHTTP(w, r)
				return
			}
			if f.idp != nil && isIDPPath(p) {
				f.idp.ServeHTTP(w, r)
				return
			}
		}
	}
	f.gateway.ServeHTTP(w, r)
}

func isIDPPath(p string) bool {
	return strings.HasPrefix(p, "/oauth2/") || p == "/.well-known/oauth-authorization-server" || p == "/.well-known/jwks.json"
}

// newStage builds the gateway auth stage: on a remote IDP when configured,
// else on the IDP of this process; nil when there is neither (routes with
// an auth policy then refuse every request).
func newStage(ctx context.Context, cfg *config.Config, p *idp.Provider, logger *slog.Logger) (*auth.Stage, error) {
	o := auth.Options{Logger: logger, JWTAudience: cfg.Gateway.JWTAudience, MaxCacheTTL: cfg.Gateway.CacheTTL.Std(0)}
	switch r := cfg.Gateway.RemoteIDP; {
	case r.Issuer != "":
		secret, err := r.ClientSecret.Resolve()
		if err != nil {
			return nil, fmt.Errorf("gateway.remote_idp.client_secret: %w", err)
		}
		remote, err := auth.NewRemote(ctx, auth.RemoteOptions{Issuer: r.Issuer, ClientID: r.ClientID, ClientSecret: secret, JWTAudience: cfg.Gateway.JWTAudience})
		if remote == nil {
			return nil, err
		}
		if err != nil {
			logger.Warn("remote IDP keys not fetched yet; retrying on first use", "error", err.Error())
		}
		o.Issuer = remote
		if o.MaxCacheTTL == 0 {
			o.MaxCacheTTL = 10 * time.Second
		}
	case p != nil:
		o.Issuer = auth.Local{P: p}
	default:
		return nil, nil
	}
	return auth.New(o)
}
