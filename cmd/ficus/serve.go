package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/jackc/pgx/v5/pgxpool"
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
			cfg, err := config.Load(path)
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
}

// runServer runs the gateway until ctx ends, then drains: /readyz turns
// 503, listeners stop accepting, and in-flight requests get up to
// cfg.ShutdownTimeout to finish.
func runServer(ctx context.Context, cfg *config.Config, sio serverIO) error {
	logger := newLogger(sio.stderr, cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var pool *pgxpool.Pool
	switch cfg.Store.Driver {
	case "postgres":
		dsn, err := cfg.Store.DSN.Resolve()
		if err != nil {
			return fmt.Errorf("store.dsn: %w", err)
		}
		pcfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return fmt.Errorf("store.dsn: not a PostgreSQL URL") // the value may hold a password: not echoed
		}
		pcfg.MaxConns = cfg.Store.MaxConns
		pool, err = pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		defer pool.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("store: PostgreSQL not reachable: %w", err)
		}
		logger.Info("store: PostgreSQL", "max_conns", cfg.Store.MaxConns)
	default:
		logger.Warn("store: in-memory; NOTHING IS KEPT when ficus stops (use store.driver: postgres in production)")
	}

	trustedProxies, _ := cfg.TrustedPrefixes()
	opts := strangler.Options{
		Logger:         logger,
		Registerer:     reg,
		TrustedProxies: trustedProxies,
		OwnedHeaders:   cfg.OwnedHeaders,
		MaxRequestBody: int64(cfg.Limits.MaxRequestBody),
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
	logger.Info("route rules loaded", "path", cfg.Routes.File, "routes", len(gw.Rules().Routes))

	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		return fmt.Errorf("listen.addr: %w", err)
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
	front := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: cfg.Listen.ReadHeaderTimeout.Std(0),
		IdleTimeout:       cfg.Listen.IdleTimeout.Std(0),
		MaxHeaderBytes:    int(cfg.Listen.MaxHeaderBytes),
		ErrorLog:          errLog,
	}
	ops := &http.Server{
		Handler:           gw.OpsHandler(reg, ready, nil),
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
		if cfg.Listen.TLS.CertFile != "" {
			err = front.ServeTLS(ln, cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile)
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
			if err := gw.Watch(runCtx, cfg.Routes.File, nil); err != nil {
				logger.Error("cannot watch the route file; SIGHUP still reloads", "error", err.Error())
			}
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
			_ = gw.Reload(cfg.Routes.File)
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
