package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/analysis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// newRouteFollower, with routes.source postgres, loads the live route
// revision into gw and returns the follower that keeps gw on it (its Run
// is a loop of the process); nil with routes.source file. A live revision
// this configuration refuses stops the start, as an invalid route file
// does; no revision at all does not: the instance stays not ready until
// one is applied.
func newRouteFollower(ctx context.Context, cfg *config.Config, be *backend, gw *strangler.Gateway,
	reg prometheus.Registerer, logger *slog.Logger) (*revisions.Follower, error) {
	if !cfg.RoutesFromStore() {
		return nil, nil
	}
	if err := revisions.Migrate(ctx, be.pool); err != nil {
		return nil, fmt.Errorf("route store migrations: %w", err)
	}
	f, err := revisions.NewFollower(revisions.FollowerOptions{Store: revisions.New(be.pool), Load: gw.Load, Logger: logger,
		Registerer: reg, PollInterval: cfg.Routes.PollInterval.Std(0)})
	if err != nil {
		return nil, err
	}
	if err := f.Sync(ctx); err != nil {
		return nil, err
	}
	if f.Revision() == 0 {
		logger.Warn("route store: no revision applied yet; not ready until one is (ficus routes apply FILE)")
	}
	return f, nil
}

// newAnalysis returns the canary analysis of gw's routes (its Run is a
// loop of the process). With routes.source postgres it writes its
// rollbacks and steps as revisions on top of the one follower serves;
// with routes.source file it judges and logs only: it cannot change the
// route file of every instance.
func newAnalysis(cfg *config.Config, be *backend, gw *strangler.Gateway, follower *revisions.Follower,
	reg prometheus.Registerer, logger *slog.Logger) (*analysis.Engine, error) {
	o := analysis.Options{Rules: gw.Rules, Health: gw.Health(), Parity: shadowParity{gw}, Logger: logger, Registerer: reg}
	if follower != nil && cfg.RoutesFromStore() {
		o.Store, o.Served, o.Instance = revisions.New(be.pool), follower.Revision, follower.InstanceID()
	}
	return analysis.New(o)
}

// withRuleStore opens the rule store of the configuration at path and
// runs f on it. It needs routes.source postgres: with a route file the
// instances would never read what the store holds.
func withRuleStore(cmd *cobra.Command, path string, f func(ctx context.Context, cfg *config.Config, st *revisions.Store) error) error {
	cfg, sec, err := config.Load(path, config.ForStore)
	if err != nil {
		return err
	}
	if !cfg.RoutesFromStore() {
		return errors.New("this command needs routes.source: postgres in the process config (with routes.source file, each instance reads its routes.file)")
	}
	ctx := cmd.Context()
	be, err := openBackend(ctx, cfg, sec, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer be.Close()
	if err := revisions.Migrate(ctx, be.pool); err != nil {
		return fmt.Errorf("route store migrations: %w", err)
	}
	return f(ctx, cfg, revisions.New(be.pool))
}

// shadowParity gives the analysis the shadow comparison's parity score of
// a route (none before a copy was compared).
type shadowParity struct{ gw *strangler.Gateway }

func (p shadowParity) RouteParity(route string) (float64, bool) {
	for _, r := range p.gw.ShadowReport() {
		if r.Route == route && r.Compared > 0 {
			return r.Parity, true
		}
	}
	return 0, false
}
