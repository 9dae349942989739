package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/spf13/cobra"
)

// healthcheckCmd asks a running ficus's operational listener for /readyz
// (or --path) and exits 0 only on 200: the container health check of an
// image that has no shell and no curl (docs/deploy/compose.yaml).
func healthcheckCmd() *cobra.Command {
	var path, probe string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the ficus of this config answers 200 on its operational listener (/readyz)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := config.Load(path, config.ForCheck)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(probe, "/") {
				return fmt.Errorf("--path must start with / (got %q)", probe)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return checkHealth(ctx, cfg.Listen.OpsAddr, probe, cmd.OutOrStdout())
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file (its listen.ops_addr is asked)")
	c.Flags().StringVar(&probe, "path", "/readyz", "path to ask: /readyz (serving) or /healthz (alive)")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

// checkHealth GETs path on the operational listener at opsAddr (a
// wildcard host is asked on loopback) and returns nil only on 200; the
// first line of the answer goes to out.
func checkHealth(ctx context.Context, opsAddr, path string, out io.Writer) error {
	host, port, err := net.SplitHostPort(opsAddr)
	if err != nil {
		return fmt.Errorf("listen.ops_addr: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	u := "http://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	first, _, _ := strings.Cut(string(b), "\n")
	fmt.Fprintf(out, "%s: %d %s\n", u, resp.StatusCode, first)
	if resp.StatusCode != http.StatusOK {
		return errors.New(u + ": " + resp.Status)
	}
	return nil
}
