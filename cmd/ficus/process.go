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
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/strangler/ops"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
)

// process is a composed ficus server, ready to run: its two listeners and
// handlers, and its background loops.
type process struct {
	logger *slog.Logger
	// ln and opsLn are bound; run closes them.
	ln, opsLn net.Listener
	// front and ops are the handlers of the front door and the
	// operational listener.
	front, ops http.Handler
	// cert, if set, makes the front door serve HTTPS with it, reloaded
	// when its files change.
	cert *tlsconf.Keypair
	// redirectLn, if set (listen.redirect_http), answers every request
	// with a redirect to https; run closes it.
	redirectLn net.Listener
	// adminLn, if set (admin.listen), serves admin, over HTTPS with
	// adminCert if set; run closes it.
	adminLn   net.Listener
	admin     http.Handler
	adminCert *tlsconf.Keypair
	adminTLS  config.TLS
	// listen has the front door's timeouts, limits and TLS policy.
	listen config.Listen
	// ready turns false when the drain begins.
	ready *ops.Readiness
	// loops run until the drain ended.
	loops []func(context.Context)
	// routes is the route file of gateway: reloaded on SIGHUP, and when
	// it changes if watch is set. reloaded, if set, is told the outcome
	// of each reload.
	routes   string
	gateway  routeReloader
	watch    bool
	reloaded func(error)
	// resync, if set (routes.source postgres, routes empty), is what
	// SIGHUP does instead: load the live revision now.
	resync func(context.Context) error
	// started, if set, is called once both listeners serve.
	started func(addr, opsAddr string)
	// shutdownTimeout bounds the drain of in-flight requests.
	shutdownTimeout time.Duration
}

// routeReloader reloads a route file: *strangler.Gateway.
type routeReloader interface {
	Reload(path string) error
	Watch(ctx context.Context, path string, reloaded func(error)) error
}

// run serves until ctx ends or a listener fails, then drains: /readyz
// turns 503, listeners stop accepting, and in-flight requests get up to
// shutdownTimeout to finish; the loops stop last.
func (p *process) run(ctx context.Context) error {
	errLog := &slogWriter{p.logger}
	front, err := frontServer(p.listen, p.cert, p.front, errLog)
	if err != nil {
		return err
	}
	opsSrv := &http.Server{Handler: p.ops, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog.logger()}
	var adminSrv, redirectSrv *http.Server
	if p.adminLn != nil {
		if adminSrv, err = adminServer(p.adminTLS, p.adminCert, p.admin, errLog); err != nil {
			return err
		}
	}

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var wg sync.WaitGroup
	serveErr := make(chan error, 4)
	wg.Go(func() {
		if err := serveMaybeTLS(front, p.ln); err != nil {
			serveErr <- fmt.Errorf("front door: %w", err)
		}
	})
	wg.Go(func() {
		if err := opsSrv.Serve(p.opsLn); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("operational listener: %w", err)
		}
	})
	if adminSrv != nil {
		wg.Go(func() {
			if err := serveMaybeTLS(adminSrv, p.adminLn); err != nil {
				serveErr <- fmt.Errorf("admin listener: %w", err)
			}
		})
		p.logger.Info("admin API on its own listener", "admin_addr", p.adminLn.Addr().String(), "tls", p.adminCert != nil)
	}
	if p.redirectLn != nil {
		redirectSrv = redirectServer(p.ln.Addr().String(), errLog)
		wg.Go(func() {
			if err := redirectSrv.Serve(p.redirectLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("redirect listener: %w", err)
			}
		})
		p.logger.Info("redirecting http to https", "redirect_addr", p.redirectLn.Addr().String())
	}
	for _, kp := range []*tlsconf.Keypair{p.cert, p.adminCert} {
		if kp != nil {
			wg.Go(func() {
				if err := kp.Watch(loopCtx); err != nil {
					certFile, _ := kp.Files()
					p.logger.Error("cannot watch the certificate's files; it is not reloaded", "cert_file", certFile, "error", err.Error())
				}
			})
		}
	}
	for _, loop := range p.loops {
		wg.Go(func() { loop(loopCtx) })
	}
	if p.watch {
		wg.Go(func() {
			if err := p.gateway.Watch(loopCtx, p.routes, p.reloaded); err != nil {
				p.logger.Error("cannot watch the route file; SIGHUP still reloads", "error", err.Error())
			}
		})
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	p.logger.Info("ficus is serving", "addr", p.ln.Addr().String(), "ops_addr", p.opsLn.Addr().String(), "version", buildVersion())
	if p.started != nil {
		p.started(p.ln.Addr().String(), p.opsLn.Addr().String())
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
			if p.resync != nil {
				p.logger.Info("SIGHUP: loading the live route revision")
				if err := p.resync(ctx); err != nil {
					p.logger.Error("route revision not loaded", "error", err.Error())
				}
				continue
			}
			p.logger.Info("SIGHUP: reloading the route file", "path", p.routes)
			err := p.gateway.Reload(p.routes)
			if p.reloaded != nil {
				p.reloaded(err)
			}
		}
	}

	p.ready.Drain()
	p.logger.Info("shutting down: draining in-flight requests", "timeout", p.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), p.shutdownTimeout)
	defer cancel()
	if err := front.Shutdown(sctx); err != nil {
		p.logger.Error("in-flight requests cut at the shutdown deadline", "error", err.Error())
		front.Close()
	}
	_ = opsSrv.Shutdown(sctx)
	if adminSrv != nil {
		_ = adminSrv.Shutdown(sctx)
	}
	if redirectSrv != nil {
		_ = redirectSrv.Shutdown(sctx)
	}
	stopLoops()
	wg.Wait()
	p.logger.Info("stopped")
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

// logger is a log.Logger writing to s, for http.Server.ErrorLog.
func (s *slogWriter) logger() *log.Logger { return log.New(s, "", 0) }

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
