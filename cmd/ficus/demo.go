package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	var addr, opsAddr, dir string
	var accessLog bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run an all-in-one demo on loopback: ficus, a monolith and a new service, in memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), demoOptions{addr: addr, opsAddr: opsAddr, dir: dir, accessLog: accessLog},
				serverIO{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "the front door")
	c.Flags().StringVar(&opsAddr, "ops-addr", "127.0.0.1:9090", "the operational listener (/healthz, /readyz, /metrics)")
	c.Flags().StringVar(&dir, "dir", "", "where to write the demo route file (default: a new temporary directory)")
	c.Flags().BoolVar(&accessLog, "access-log", false, "print the access log")
	return c
}

type demoOptions struct {
	addr, opsAddr, dir string
	accessLog          bool
}

func runDemo(ctx context.Context, o demoOptions, sio serverIO) error {
	monoURL, mono, err := demo.Listen(demo.Monolith())
	if err != nil {
		return err
	}
	defer mono.Close()
	ordersURL, orders, err := demo.Listen(demo.Service("orders"))
	if err != nil {
		return err
	}
	defer orders.Close()

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ficus-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	rules, err := demo.Routes(monoURL, ordersURL)
	if err != nil {
		return err
	}
	routesFile := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routesFile, rules, 0o644); err != nil {
		return err
	}
	cfg := config.Defaults()
	cfg.Listen.Addr, cfg.Listen.OpsAddr = o.addr, o.opsAddr
	cfg.Routes.File = routesFile
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.Log.Format = "text"
	cfg.Log.Level = "warn"
	cfg.Log.AccessLog = &o.accessLog
	if err := cfg.Validate(); err != nil {
		return err
	}
	sio.started = func(addr, ops string) {
		printDemo(sio.stdout, addr, ops, monoURL, ordersURL, routesFile)
	}
	return runServer(ctx, &cfg, sio)
}

func printDemo(w io.Writer, addr, ops, mono, orders, routesFile string) {
	front := "http://" + addr
	fmt.Fprintf(w, `
ficus demo is running (in-memory store: NOTHING IS KEPT when it stops; Ctrl-C to stop)

  front door     %[1]s
  operations     http://%[2]s   (/healthz /readyz /metrics)
  monolith       %[3]s   (go-httpbin)
  new service    %[4]s   (orders)
  route file     %[5]s
                 edit it and save: ficus reloads it; an invalid edit is rejected, the old rules keep serving

Try:
  curl -s %[1]s/get                                   # the monolith, untouched
  curl -s %[1]s/api/orders/42                         # migrated: the new service, path /orders/42
  curl -s -c /tmp/ficus-jar -b /tmp/ficus-jar %[1]s/anything/cart
                                                      # split 50/50, sticky: repeat it, the side stays
  curl -s -H 'X-Migration-Target: orders' %[1]s/anything/cart   # a tester forces the new side
  curl -s -H 'X-Beta: 1' %[1]s/anything/reports       # beta testers only
  curl -s -o /dev/null -w '%%{http_code}\n' '%[1]s/api/orders/%%2e%%2e/admin%%2f'
                                                      # encoded slash: refused (400)
  curl -s http://%[2]s/metrics | grep '^ficus_requests_total'
  ficus routes validate %[5]s

`, front, ops, mono, orders, routesFile)
}
