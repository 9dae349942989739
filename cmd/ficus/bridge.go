package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/bridge"
	"github.com/prometheus/client_golang/prometheus"
)

// newPolicies builds the stages of the auth policies beyond oauth2,
// optional and jwt: the legacy session bridge, on the IDP of this process
// (none without one: CheckRules refuses bridge routes with a remote IDP).
func newPolicies(p *idp.Provider, reg prometheus.Registerer, logger *slog.Logger) (map[string]strangler.AuthStage, error) {
	if p == nil {
		return nil, nil
	}
	b, err := bridge.New(bridge.Options{Minter: p, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	return map[string]strangler.AuthStage{"bridge": b}, nil
}

// bridgeClients refuses a rule file whose bridges name a client the IDP of
// this process does not know: every JWT of the bridge would name it.
func bridgeClients(p *idp.Provider) func(*routes.File) error {
	return func(f *routes.File) error {
		if p == nil || len(f.Bridges) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		clients, err := p.ListClients(ctx)
		if err != nil {
			return fmt.Errorf("bridges: cannot list the IDP's clients: %w", err)
		}
		known := map[string]bool{}
		for _, c := range clients {
			known[c.ID] = true
		}
		var errs []string
		for _, name := range slices.Sorted(maps.Keys(f.Bridges)) {
			if b := f.Bridges[name]; !known[b.Client] {
				errs = append(errs, fmt.Sprintf("bridge %s: unknown client %q (create it first: ficus idp client create)", name, b.Client))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s: %s", f.Name, strings.Join(errs, "; "))
		}
		return nil
	}
}
