package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/frontdoor"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/strangler/ops"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

func serveCmd() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sec, err := config.Load(path, config.ForServe)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, sec, serverIO{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file")
	return c
}

// serverIO is where a server writes, and whom it tells its addresses.
type serverIO struct {
	stdout, stderr io.Writer
	// started, if set, is called once both listeners are bound.
	started func(addr, opsAddr string)
	// provider, if set, receives the identity provider before serving
	// starts (the demo seeds it).
	provider func(*idp.Provider)
	// front, if set, is the front door's listener, already bound to
	// listen.addr (the demo binds first, to know its issuer).
	front net.Listener
	// reloaded, if set, is told the outcome of each route file reload.
	reloaded func(error)
}

// runServer composes the gateway from cfg and the secrets it resolved,
// and runs it until ctx ends; then it drains (see process.run).
func runServer(ctx context.Context, cfg *config.Config, sec *config.Resolved, sio serverIO) error {
	logger := newLogger(sio.stderr, cfg.Log)
	applyRuntime(cfg, logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	trusted, _ := cfg.TrustedPrefixes() // validated with the config

	tr, err := newTracing(ctx, cfg, sec, logger)
	if err != nil {
		return err
	}
	defer tr.close(cfg.ShutdownTimeout.Std(0))
	be, err := openBackend(ctx, cfg, sec, logger, newGroupCommitMetrics(reg))
	if err != nil {
		return err
	}
	defer be.Close()
	var provider *idp.Provider
	if cfg.IDPEnabled() {
		legacyUsers, closeLegacy, err := newLegacyUsers(ctx, cfg, sec, logger)
		if err != nil {
			return err
		}
		defer closeLegacy()
		if provider, err = newProvider(ctx, cfg, sec, be.idp, logger, legacyUsers, tr.provider); err != nil {
			return err
		}
		defer provider.Close()
		if sio.provider != nil {
			sio.provider(provider)
		}
	}
	fan := &revocation.Fanout{Logger: logger}
	sessions, err := newSessionManager(ctx, cfg, sec, provider, be, fan, logger)
	if err != nil {
		return err
	}
	sso, err := newIDPSessions(ctx, cfg, sec, provider, sessions, be, fan, logger)
	if err != nil {
		return err
	}
	fed, err := newFederation(cfg, sec, provider, be, trusted, logger)
	if err != nil {
		return err
	}
	web, err := newWebSessions(cfg, sessions, trusted, reg, logger, sessionFederation(fed))
	if err != nil {
		return err
	}
	if fed != nil && web != nil {
		fed.SetSessions(web)
	}
	policies, err := newPolicies(provider, reg, logger)
	if err != nil {
		return err
	}
	remoteIDP, err := remoteIDPClient(cfg, logger, 10*time.Second)
	if err != nil {
		return err
	}
	stage, err := newStage(ctx, cfg, sec, provider, sessions, web, logger, policies, remoteIDP)
	if err != nil {
		return err
	}
	revocations := newRevocations(fan, provider, stage, cmp.Or(sessions, sso), be, logger)
	gw, closeAccessLog, err := newGateway(cfg, stage, trusted, reg, logger, tr, sio.stdout, bridgeClients(provider))
	if err != nil {
		return err
	}
	defer closeAccessLog()
	defer gw.Close() // the shadow workers
	follower, err := newRouteFollower(ctx, cfg, be, gw, reg, logger)
	if err != nil {
		return err
	}
	canary, err := newAnalysis(cfg, be, gw, follower, reg, logger)
	if err != nil {
		return err
	}

	ln, opsLn, err := listen(cfg, sio.front)
	if err != nil {
		return err
	}
	defer ln.Close()
	defer opsLn.Close()
	frontCert, err := loadKeypair("listen.tls", "front", cfg.Listen.TLS, logger, reg)
	if err != nil {
		return err
	}
	var redirectLn net.Listener
	if a := cfg.Listen.RedirectHTTP; a != "" {
		if redirectLn, err = net.Listen("tcp", a); err != nil {
			return fmt.Errorf("listen.redirect_http: %w", err)
		}
		defer redirectLn.Close()
	}
	self, err := newSelfEndpoint(ln.Addr(), frontCert)
	if err != nil {
		return err
	}
	token := self.tokenEndpoint(cfg, remoteIDP)
	admin := newAdminAPI(cfg, stage, logger)
	hooks, err := newWebhooks(ctx, cfg, sec, be, self, token, trusted, logger, reg, admin.mux, tr)
	if err != nil {
		return err
	}
	admin.addRouteStore(cfg, be, logger)
	admin.addAnalysis(canary, gw)
	if err := admin.addDashboard(cfg, gw, canary, be, logger); err != nil {
		return err
	}
	opsMux := http.NewServeMux()
	if cfg.Listen.OpsPprof {
		mountPprof(opsMux)
	}
	adminLn, err := admin.mount(cfg, opsMux)
	if err != nil {
		return err
	}
	var adminCert *tlsconf.Keypair
	if adminLn != nil {
		if adminCert, err = loadKeypair("admin.tls", "admin", cfg.Admin.TLS, logger, reg); err != nil {
			adminLn.Close()
			return err
		}
	}
	if adminLn != nil {
		defer adminLn.Close()
	}
	gateway, err := withMobile(cfg, sec, token, gw)
	if err != nil {
		return err
	}
	fo := frontdoor.Options{Gateway: gateway, IDP: withFederation(idpHandler(provider), fed), Hooks: hooks.hooks}
	if web != nil {
		fo.Sessions, fo.SessionPaths = web.Endpoints(), web.Paths()
	}
	door, err := frontdoor.New(fo)
	if err != nil {
		return err
	}

	ready := &ops.Readiness{Checks: []func(context.Context) error{be.Ping}}
	p := &process{logger: logger, ln: ln, opsLn: opsLn, cert: frontCert, redirectLn: redirectLn, listen: cfg.Listen,
		front: door, ops: gw.OpsHandler(reg, ready.Ready, opsMux), ready: ready,
		adminLn: adminLn, admin: admin.Handler(), adminCert: adminCert, adminTLS: cfg.Admin.TLS,
		routes: cfg.Routes.File, gateway: gw, watch: cfg.WatchRoutes(), reloaded: sio.reloaded,
		started: sio.started, shutdownTimeout: cfg.ShutdownTimeout.Std(0), loops: hooks.loops}
	if revocations != nil {
		p.loops = append(p.loops, revocations.Run)
	}
	p.loops = append(p.loops, canary.Run)
	if follower != nil {
		p.loops, p.resync = append(p.loops, follower.Run), follower.Sync
	}
	if provider != nil {
		p.loops = append(p.loops, idp.Housekeeping{Provider: provider, CleanupInterval: cfg.IDP.CleanupInterval.Std(0)}.Run)
	}
	if m := cmp.Or(sessions, sso); m != nil {
		p.loops = append(p.loops, m.Run)
	}
	return p.run(ctx)
}

// listen binds the two listeners; front, if set, is the front door's,
// already bound.
func listen(cfg *config.Config, front net.Listener) (ln, opsLn net.Listener, err error) {
	if ln = front; ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen.Addr); err != nil {
			return nil, nil, fmt.Errorf("listen.addr: %w", err)
		}
	}
	if opsLn, err = net.Listen("tcp", cfg.Listen.OpsAddr); err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("listen.ops_addr: %w", err)
	}
	return ln, opsLn, nil
}
