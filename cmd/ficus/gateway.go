package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/shadow"
	"github.com/prometheus/client_golang/prometheus"
)

// newGateway builds the gateway on the auth stage (nil: none) and loads
// the route file (with routes.source file), refusing what would fail on every request (checks are
// further checks of every rule file, such as the bridges' clients). The
// access log, when on, goes to accessOut; call closeLog once the gateway
// stopped serving. tr traces its requests when tracing is on.
func newGateway(cfg *config.Config, stage *auth.Stage, trusted []netip.Prefix, reg prometheus.Registerer,
	logger *slog.Logger, tr tracer, accessOut io.Writer, checks ...func(*routes.File) error) (gw *strangler.Gateway, closeLog func(), err error) {
	opts := strangler.Options{
		Logger:         logger,
		Registerer:     reg,
		TrustedProxies: trusted,
		OwnedHeaders:   cfg.OwnedHeaders,
		MaxRequestBody: int64(cfg.Limits.MaxRequestBody),
		Tracer:         tr.provider,
		TraceTrust:     tr.trust,
		InternalToken:  tr.internal,
		Shadow: shadow.Options{Queue: cfg.Gateway.Shadow.Queue, Workers: cfg.Gateway.Shadow.Workers,
			Memory: int64(cfg.Gateway.Shadow.Memory), Timeout: cfg.Gateway.Shadow.Timeout.Std(0)},
		// At start and at every reload: what would fail on every request
		// with this configuration is refused, the live rules stay.
		Check: func(f *routes.File) error {
			if err := cfg.CheckRules(f); err != nil {
				return err
			}
			for _, check := range checks {
				if err := check(f); err != nil {
					return err
				}
			}
			return nil
		},
	}
	if stage != nil {
		opts.Auth = stage
	}
	sessionOwned(cfg, &opts)
	idpOwned(cfg, &opts)
	closeLog = func() {}
	if cfg.AccessLog() {
		w := strangler.NewLogWriter(accessOut, 200*time.Millisecond)
		closeLog = func() { w.Close() }
		opts.AccessLog = slog.New(slog.NewJSONHandler(w, nil))
	}
	// With routes.source postgres the rule store's follower loads them.
	if gw, err = strangler.New(opts); err == nil && !cfg.RoutesFromStore() {
		err = loadRoutes(cfg, gw, logger)
	}
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	return gw, closeLog, nil
}

// loadRoutes loads the route file into gw and checks it against cfg.
func loadRoutes(cfg *config.Config, gw *strangler.Gateway, logger *slog.Logger) error {
	if err := gw.LoadFile(cfg.Routes.File); err != nil {
		return fmt.Errorf("route file rejected:\n%w", err)
	}
	logger.Info("route rules loaded", "path", cfg.Routes.File, "routes", len(gw.Rules().Routes))
	return nil
}

// withMobile puts the mobile adapter in front of gw when apps are
// configured; it asks token for its apps' tokens.
func withMobile(cfg *config.Config, sec *config.Resolved, token tokenEndpoint, gw http.Handler) (http.Handler, error) {
	if len(cfg.Mobile.Apps) == 0 {
		return gw, nil
	}
	ad, err := mobile.New(cfg.Mobile, sec.Secret, token.URL, gw)
	if err != nil {
		return nil, err
	}
	ad.Client = token.Client
	return ad, nil
}
