package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2/clientcredentials"
)

// webhooks builds the adapters' ingest endpoints and their deliverer. The
// inbox is PostgreSQL, or memory (which keeps nothing) on the memory store.
// Deliveries go through the gateway, on self (the front door).
func webhooks(ctx context.Context, cfg *config.Config, be *backend, self selfEndpoint, logger *slog.Logger, reg prometheus.Registerer, admin *http.ServeMux) (map[string]http.Handler, *adapters.Deliverer, error) {
	if len(cfg.Webhooks.Adapters) == 0 {
		return nil, nil, nil
	}
	var ins adapters.Inserter
	var queue adapters.Queue
	if be.pool != nil {
		if err := inbox.Migrate(ctx, be.pool); err != nil {
			return nil, nil, fmt.Errorf("webhook inbox migrations: %w", err)
		}
		st := inbox.New(be.pool)
		ins, queue = st, st
		adapters.AdminRoutes(admin, st)
		window := cfg.Webhooks.DedupeWindow
		if window == 0 {
			window = 31 * 24 * time.Hour
		}
		go purgeLoop(ctx, st, window, logger)
	} else {
		logger.Warn("webhooks: in-memory inbox; accepted events are LOST when ficus stops (use store.driver: postgres)")
		m := inbox.NewMemory()
		ins, queue = m, m
	}
	resolve := func(ref string) (string, error) { return config.Secret(ref).Resolve() }
	metrics := adapters.NewMetrics(reg)
	hooks := map[string]http.Handler{}
	d := &adapters.Deliverer{Inbox: queue, Targets: map[string]adapters.Target{}, Workers: cfg.Webhooks.Delivery.Workers,
		MaxAge: cfg.Webhooks.Delivery.MaxAge, Lease: cfg.Webhooks.Delivery.Lease, Logger: logger, Metrics: metrics,
		Client: self.client(30 * time.Second)}
	tokenURL, tokenClient := self.tokenEndpoint(cfg)
	for _, a := range cfg.Webhooks.Adapters {
		in, err := a.Build(resolve, ins)
		if err != nil {
			return nil, nil, err
		}
		in.Logger, in.Metrics = logger, metrics
		trusted, _ := cfg.TrustedPrefixes()
		in.RemoteAddr = adapters.ClientAddr(trusted)
		hooks[a.Path] = in
		if a.Sync {
			in.Sync = d
		}
		if a.OrderKey != "" {
			d.Ordered = append(d.Ordered, a.Name)
		}
		secret, _ := resolve(a.ClientSecret)
		cc := &clientcredentials.Config{ClientID: a.ClientID, ClientSecret: secret, TokenURL: tokenURL}
		d.Targets[a.Name] = adapters.Target{URL: self.URL + a.Target, Token: &tokens.ClientCredentials{Config: cc, Client: tokenClient}}
		logger.Info("webhook adapter", "name", a.Name, "path", a.Path, "target", a.Target)
	}
	return hooks, d, nil
}

// purgeLoop deletes delivered and dead events older than the dedupe window,
// hourly, until ctx ends.
func purgeLoop(ctx context.Context, st *inbox.Store, window time.Duration, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := st.Purge(ctx, "", time.Now().Add(-window)); err != nil && ctx.Err() == nil {
			logger.Error("purging old web-hook events", "error", err.Error())
		} else if n > 0 {
			logger.Info("old web-hook events purged", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
