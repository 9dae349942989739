package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/ficus-gw/ficus/idp"
	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	var addr, opsAddr, dir, credsFile, issuer string
	var accessLog bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run an all-in-one demo on loopback: ficus, a monolith and a new service, in memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), demoOptions{addr: addr, opsAddr: opsAddr, dir: dir, accessLog: accessLog, credsFile: credsFile,
				issuer: issuer, prog: progName()}, serverIO{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "the front door")
	c.Flags().StringVar(&opsAddr, "ops-addr", "127.0.0.1:9090", "the operational listener (/healthz, /readyz, /metrics)")
	c.Flags().StringVar(&issuer, "issuer", "", "the IDP's public URL (default: http:// and the address --addr binds)")
	c.Flags().StringVar(&dir, "dir", "", "where the demo route file lives; an existing routes.yaml there is kept (default: a new temporary directory)")
	c.Flags().BoolVar(&accessLog, "access-log", false, "print the access log")
	c.Flags().StringVar(&credsFile, "credentials-file", "", "also write the demo credentials to this file as JSON (client_id, client_secret, username, password, token_url)")
	return c
}

type demoOptions struct {
	addr, opsAddr, dir, credsFile, issuer string
	accessLog                             bool
	// prog is how the user runs ficus (bin/ficus, ficus), for the hints
	// the demo prints. Default ficus.
	prog string
}

// progName is the binary as the user ran it, when it is ficus.
func progName() string {
	if filepath.Base(os.Args[0]) == "ficus" {
		return os.Args[0]
	}
	return "ficus"
}

func runDemo(ctx context.Context, o demoOptions, sio serverIO) error {
	if o.prog == "" {
		o.prog = "ficus"
	}
	dir := o.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ficus-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	// The front door is bound first, so the issuer (http:// and its
	// address) is right even for --addr 127.0.0.1:0, and the orders
	// service knows where to fetch the keys of its JWTs.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	defer ln.Close()
	sio.front = ln
	// The demo user's password, the same on the monolith and in the IDP.
	password, _, err := readPassword(nil, false)
	if err != nil {
		return err
	}
	cfg := demo.Config(ln.Addr().String(), o.opsAddr, o.issuer, "", o.accessLog)
	front := "http://" + ln.Addr().String()
	up, err := demo.StartUpstreams(demo.Setup{Dir: dir, Password: password, Issuer: cfg.Issuer(),
		JWKSURL: front + "/.well-known/jwks.json", Front: front}, sio.stdout)
	if err != nil {
		return err
	}
	defer up.Close()
	routesFile := up.RoutesFile
	cfg.Routes.File = routesFile

	// The Stripe web-hook adapter's secrets are made up now and passed to
	// the config as references, like real ones.
	whsec, _, _ := readPassword(nil, false)
	adapterSecret, _, _ := readPassword(nil, false)
	whsec = "whsec_demo_" + whsec
	os.Setenv(demo.WebhookSecretEnv, whsec)
	os.Setenv(demo.AdapterSecretEnv, adapterSecret)
	if err := cfg.Validate(config.ForServe); err != nil {
		if strings.Contains(err.Error(), "idp.issuer") {
			return fmt.Errorf("%w\n(set it with --issuer)", err)
		}
		return err
	}
	sec, err := cfg.Resolve(config.ForServe)
	if err != nil {
		return err
	}
	// The demo logs warnings only: say on standard output that an edit
	// was taken (a rejected one is logged with its errors).
	sio.reloaded = func(err error) {
		if err == nil {
			fmt.Fprintf(sio.stdout, "ficus demo: route file reloaded: %s\n", routesFile)
		} else {
			fmt.Fprintln(sio.stdout, "ficus demo: route file rejected (errors above); the previous rules keep serving")
		}
	}
	var creds demo.Credentials
	var seedErr error
	sio.provider = func(p *idp.Provider) { creds, seedErr = demo.Seed(ctx, p, password, adapterSecret) }
	notify := sio.started
	sio.started = func(addr, ops string) {
		if notify != nil {
			defer notify(addr, ops)
		}
		if seedErr != nil {
			fmt.Fprintln(sio.stderr, "ficus demo: seeding the IDP failed:", seedErr)
			return
		}
		creds.TokenURL = "http://" + addr + tokenPath
		if o.credsFile != "" {
			b, _ := json.MarshalIndent(creds, "", "  ")
			if err := os.WriteFile(o.credsFile, append(b, '\n'), 0o600); err != nil {
				fmt.Fprintln(sio.stderr, "ficus demo: writing the credentials file:", err)
			}
		}
		demo.Hints{Prog: o.prog, Addr: addr, OpsAddr: ops, Monolith: up.Monolith, Orders: up.Orders, WebApp: up.WebApp, RoutesFile: routesFile,
			Credentials: creds, WebhookSecret: whsec}.Print(sio.stdout)
	}
	return runServer(ctx, &cfg, sec, sio)
}
