package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/federation"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/jackc/pgx/v5/pgxpool"
)

// backend is the opened store: PostgreSQL (with its pool) or memory.
type backend struct {
	pool *pgxpool.Pool // nil on the memory store
	idp  idp.Storage
	// sessions and jptKeys are the web session layer's: its sessions and
	// visitors, and the keys that sign JPTs (apart from the JWKS keys).
	sessions session.Storage
	jptKeys  idp.KeyStorage
	// closeStore commits the store's queued writes (its group commit)
	// and stops taking more; nil on the memory store.
	closeStore func()
	// federation keeps federated logins in progress and the links of
	// upstream accounts to users.
	federation federation.Storage
	// groupCommit is how the PostgreSQL stores group their commits (the
	// web-hook inbox, opened later, takes it too).
	groupCommit groupcommit.Options
}

func (b *backend) Close() {
	if b.closeStore != nil {
		b.closeStore()
	}
	if b.pool != nil {
		b.pool.Close()
	}
}

// Ping checks that the database answers; the memory store always does.
func (b *backend) Ping(ctx context.Context) error {
	if b.pool == nil {
		return nil
	}
	return b.pool.Ping(ctx)
}

// openBackend connects to the configured store and applies migrations.
// observe, if set, is told about each group commit (the metrics of ficus
// serve).
func openBackend(ctx context.Context, cfg *config.Config, sec *config.Resolved, logger *slog.Logger, observe func(groupcommit.Batch)) (*backend, error) {
	if cfg.Store.Driver != "postgres" {
		logger.Warn("store: in-memory; NOTHING IS KEPT when ficus stops (use store.driver: postgres in production)")
		st := memory.New()
		return &backend{idp: st, sessions: st, jptKeys: st.JPTKeys(), federation: st}, nil
	}
	pcfg, err := pgxpool.ParseConfig(sec.DSN)
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
	gc := cfg.Store.GroupCommit.Options()
	gc.Observe = observe
	st := postgres.New(pool, gc)
	return &backend{pool: pool, idp: st, sessions: st, jptKeys: st.JPTKeys(), federation: st, closeStore: st.Close, groupCommit: gc}, nil
}
