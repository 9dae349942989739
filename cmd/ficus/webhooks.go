package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2/clientcredentials"
)

// webhooks are the web-hook adapters, wired: their ingest endpoints by
// path, and their background loops (the deliverer, and the purger of the
// PostgreSQL inbox).
type webhooks struct {
	hooks map[string]http.Handler
	loops []func(context.Context)
}

// newWebhooks builds the adapters' ingest endpoints and their deliverer,
// and adds the inbox admin API to admin. The inbox is PostgreSQL, or
// memory (which keeps nothing) on the memory store. Deliveries go through
// the gateway, on self (the front door), with tokens from token.
func newWebhooks(ctx context.Context, cfg *config.Config, sec *config.Resolved, be *backend, self selfEndpoint, token tokenEndpoint,
	trusted []netip.Prefix, logger *slog.Logger, reg prometheus.Registerer, admin *http.ServeMux, tr tracer) (webhooks, error) {
	var w webhooks
	if len(cfg.Webhooks.Adapters) == 0 {
		return w, nil
	}
	var ins adapters.Inserter
	var queue adapters.Queue
	if be.pool != nil {
		if err := inbox.Migrate(ctx, be.pool); err != nil {
			return w, fmt.Errorf("webhook inbox migrations: %w", err)
		}
		st := inbox.New(be.pool, be.groupCommit)
		ins, queue = st, st
		adapters.AdminRoutes(admin, st, logger)
		w.loops = append(w.loops, inbox.Purger{Inbox: st, Window: cfg.Webhooks.DedupeWindow, Logger: logger}.Run,
			func(ctx context.Context) { <-ctx.Done(); st.Close() }) // the loops stop after the drain: commit what is queued

	} else {
		logger.Warn("webhooks: in-memory inbox; accepted events are LOST when ficus stops (use store.driver: postgres)")
		m := inbox.NewMemory()
		ins, queue = m, m
	}
	metrics := adapters.NewMetrics(reg)
	w.hooks = map[string]http.Handler{}
	d := &adapters.Deliverer{Inbox: queue, Targets: map[string]adapters.Target{}, Workers: cfg.Webhooks.Delivery.Workers,
		MaxAge: cfg.Webhooks.Delivery.MaxAge, Lease: cfg.Webhooks.Delivery.Lease, Logger: logger, Metrics: metrics,
		Client: tr.internalCalls(self.client(30 * time.Second)), Tracer: tr.tracer(adapters.TracerName)}
	for _, a := range cfg.Webhooks.Adapters {
		in, err := a.Build(sec.Secret, ins)
		if err != nil {
			return w, err
		}
		in.Logger, in.Metrics, in.Tracer = logger, metrics, tr.tracer(adapters.TracerName)
		in.RemoteAddr = adapters.ClientAddr(trusted)
		w.hooks[a.Path] = in
		if a.Sync {
			in.Sync = d
		}
		if a.OrderKey != "" {
			d.Ordered = append(d.Ordered, a.Name)
		}
		secret, _ := sec.Secret(a.ClientSecret)
		cc := &clientcredentials.Config{ClientID: a.ClientID, ClientSecret: secret, TokenURL: token.URL}
		d.Targets[a.Name] = adapters.Target{URL: self.URL + a.Target, Token: &tokens.ClientCredentials{Config: cc, Client: token.Client}}
		logger.Info("webhook adapter", "name", a.Name, "path", a.Path, "target", a.Target)
	}
	w.loops = append(w.loops, d.Run)
	return w, nil
}
