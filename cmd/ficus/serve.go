package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
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
			cfg, err := config.Load(path, config.ForServe)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, serverIO{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()})
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

func idpHandler(p *idp.Provider) http.Handler {
	if p == nil {
		return nil
	}
	return p.Handler()
}

// runServer runs the gateway until ctx ends, then drains: /readyz turns
// 503, listeners stop accepting, and in-flight requests get up to
// cfg.ShutdownTimeout to finish.
func runServer(ctx context.Context, cfg *config.Config, sio serverIO) error {
	logger := newLogger(sio.stderr, cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	be, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer be.Close()
	pool := be.pool
	var provider *idp.Provider
	if cfg.IDPEnabled() {
		if provider, err = newProvider(ctx, cfg, be.idp, logger); err != nil {
			return err
		}
		defer provider.Close()
		if sio.provider != nil {
			sio.provider(provider)
		}
	}

	trustedProxies, _ := cfg.TrustedPrefixes()
	opts := strangler.Options{
		Logger:         logger,
		Registerer:     reg,
		TrustedProxies: trustedProxies,
		OwnedHeaders:   cfg.OwnedHeaders,
		MaxRequestBody: int64(cfg.Limits.MaxRequestBody),
	}
	stage, err := newStage(ctx, cfg, provider, logger)
	if err != nil {
		return err
	}
	if stage != nil {
		opts.Auth = stage
	}
	if stage != nil && provider != nil {
		provider.OnRevoke(stage.Invalidate)
		if pool != nil {
			provider.OnRevoke(func(hashes []string) {
				pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := postgres.PublishRevocations(pctx, pool, hashes); err != nil {
					logger.Error("publishing a revocation to other instances failed", "error", err.Error())
				}
			})
		}
	}
	var accessOut *strangler.LogWriter
	if cfg.AccessLog() {
		accessOut = strangler.NewLogWriter(sio.stdout, 200*time.Millisecond)
		defer accessOut.Close()
		opts.AccessLog = slog.New(slog.NewJSONHandler(accessOut, nil))
	}
	gw, err := strangler.New(opts)
	if err != nil {
		return err
	}
	if err := gw.LoadFile(cfg.Routes.File); err != nil {
		return fmt.Errorf("route file rejected:\n%w", err)
	}
	if err := checkRoutes(cfg, gw.Rules(), logger); err != nil {
		return err
	}
	logger.Info("route rules loaded", "path", cfg.Routes.File, "routes", len(gw.Rules().Routes))

	ln := sio.front
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen.Addr); err != nil {
			return fmt.Errorf("listen.addr: %w", err)
		}
	}
	opsLn, err := net.Listen("tcp", cfg.Listen.OpsAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen.ops_addr: %w", err)
	}
	var draining atomic.Bool
	ready := func() bool {
		if draining.Load() {
			return false
		}
		if pool != nil {
			pctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return pool.Ping(pctx) == nil
		}
		return true
	}
	errLog := log.New(&slogWriter{logger}, "", 0)
	opsMux := http.NewServeMux()
	self, err := newSelfEndpoint(ln.Addr(), cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile)
	if err != nil {
		ln.Close()
		opsLn.Close()
		return err
	}
	hooks, deliverer, err := webhooks(ctx, cfg, be, self, logger, reg, opsMux)
	if err != nil {
		ln.Close()
		opsLn.Close()
		return err
	}
	var gateway http.Handler = gw
	if len(cfg.Mobile.Apps) > 0 {
		tokenURL, tokenClient := self.tokenEndpoint(cfg)
		ad, err := mobile.New(cfg.Mobile, func(ref string) (string, error) { return config.Secret(ref).Resolve() }, tokenURL, gw)
		if err != nil {
			ln.Close()
			opsLn.Close()
			return err
		}
		ad.Client = tokenClient
		gateway = ad
	}
	front := &http.Server{
		Handler:           frontDoor{gateway: gateway, idp: idpHandler(provider), hooks: hooks},
		ReadHeaderTimeout: cfg.Listen.ReadHeaderTimeout.Std(0),
		IdleTimeout:       cfg.Listen.IdleTimeout.Std(0),
		MaxHeaderBytes:    int(cfg.Listen.MaxHeaderBytes),
		ErrorLog:          errLog,
	}
	if self.Cert != nil {
		front.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*self.Cert}}
	}
	ops := &http.Server{
		Handler:           gw.OpsHandler(reg, ready, opsMux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		if front.TLSConfig != nil {
			err = front.ServeTLS(ln, "", "") // the certificate loaded once, in self
		} else {
			err = front.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("front door: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := ops.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("operational listener: %w", err)
		}
	}()
	if cfg.WatchRoutes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gw.Watch(runCtx, cfg.Routes.File, sio.reloaded); err != nil {
				logger.Error("cannot watch the route file; SIGHUP still reloads", "error", err.Error())
			}
		}()
	}
	if provider != nil && pool != nil && stage != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			postgres.ListenRevocations(runCtx, pool, logger, func(hashes []string) {
				stage.Invalidate(hashes)
				provider.ForgetTokens(hashes)
			}, func() {
				stage.Flush()
				provider.ForgetAll()
			})
		}()
	}
	if provider != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			provider.RunCleanup(runCtx, cfg.IDP.CleanupInterval.Std(30*time.Second), 5000)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(30 * time.Second) // see keys rotated by other instances or the CLI
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					if err := provider.Keys().Reload(runCtx); err != nil && runCtx.Err() == nil {
						logger.Error("reloading signing keys", "error", err.Error())
					}
				}
			}
		}()
	}
	if deliverer != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deliverer.Run(runCtx)
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	logger.Info("ficus is serving", "addr", ln.Addr().String(), "ops_addr", opsLn.Addr().String(), "version", buildVersion())
	if sio.started != nil {
		sio.started(ln.Addr().String(), opsLn.Addr().String())
	}
	var result error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			result = err
			break loop
		case <-hup:
			logger.Info("SIGHUP: reloading the route file", "path", cfg.Routes.File)
			err := gw.Reload(cfg.Routes.File)
			if sio.reloaded != nil {
				sio.reloaded(err)
			}
		}
	}

	draining.Store(true)
	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.Std(0).String())
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Std(0))
	defer scancel()
	if err := front.Shutdown(sctx); err != nil {
		logger.Error("in-flight requests cut at the shutdown deadline", "error", err.Error())
		front.Close()
	}
	_ = ops.Shutdown(sctx)
	cancel()
	wg.Wait()
	logger.Info("stopped")
	return result
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	hopts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, hopts))
	}
	return slog.New(slog.NewJSONHandler(w, hopts))
}

// slogWriter sends net/http's server error log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (s *slogWriter) Write(p []byte) (int, error) {
	s.l.Warn("http server", "error", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// checkRoutes refuses at start what would fail on every request with this
// process configuration, and warns loudly about rules this version does
// not enforce.
func checkRoutes(cfg *config.Config, f *routes.File, logger *slog.Logger) error {
	var errs []string
	var shadowed []string
	remote := cfg.Gateway.RemoteIDP.Issuer != ""
	for _, r := range f.Routes {
		if r.Shadow != nil {
			shadowed = append(shadowed, r.Name)
		}
		if !remote {
			continue
		}
		switch r.Policy() {
		case "jwt":
			// The caller's JWT is verified against the remote JWKS, but only
			// an IDP in this process can mint one for a new upstream.
			for _, to := range r.Targets() {
				if to != f.Monolith {
					errs = append(errs, fmt.Sprintf("route %s: policy jwt cannot send to the new upstream %s with gateway.remote_idp: "+
						"only the IDP in this process can exchange a caller's JWT for one for %s (use policy oauth2, or run the IDP here)", r.Name, to, to))
					break
				}
			}
		case "optional":
			errs = append(errs, fmt.Sprintf("route %s: policy optional needs the IDP in this process to mint application tokens for anonymous callers; "+
				"gateway.remote_idp is set", r.Name))
		}
	}
	if len(shadowed) > 0 {
		logger.Warn("shadow rules are NOT enforced by this version: these routes mirror no traffic", "routes", shadowed)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: every request on these routes would fail:\n%s", cfg.Routes.File, strings.Join(errs, "\n"))
	}
	return nil
}
