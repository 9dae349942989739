package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/routes"
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

// demoCredentials are what `ficus demo` seeds, for people and scripts.
type demoCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	TokenURL     string `json:"token_url"`
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
	// An existing route file (an edit from an earlier run) is kept, and
	// the demo's monolith and service listen where it says, if they can.
	routesFile := filepath.Join(dir, "routes.yaml")
	monoAddr, ordersAddr := "127.0.0.1:0", "127.0.0.1:0"
	_, err := os.Stat(routesFile)
	kept := err == nil
	if kept {
		if f, err := routes.ParseFile(routesFile); err == nil {
			monoAddr, ordersAddr = demo.LoopbackAddr(f, "legacy"), demo.LoopbackAddr(f, "orders")
		}
		fmt.Fprintf(sio.stdout, "ficus demo: keeping the existing route file %s (delete it to start from the demo's)\n", routesFile)
	}
	monoURL, mono, err := demo.Listen(monoAddr, demo.Monolith())
	if err != nil {
		return fmt.Errorf("the demo monolith on %s (named in %s): %w", monoAddr, routesFile, err)
	}
	defer mono.Close()
	ordersURL, orders, err := demo.Listen(ordersAddr, demo.Service("orders", sio.stdout))
	if err != nil {
		return fmt.Errorf("the demo orders service on %s (named in %s): %w", ordersAddr, routesFile, err)
	}
	defer orders.Close()
	if !kept {
		rules, err := demo.Routes(monoURL, ordersURL)
		if err != nil {
			return err
		}
		if err := os.WriteFile(routesFile, rules, 0o644); err != nil {
			return err
		}
	}

	// The front door is bound first, so the issuer (http:// and its
	// address) is right even for --addr 127.0.0.1:0.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	defer ln.Close()
	sio.front = ln
	cfg := config.Defaults()
	cfg.Listen.Addr, cfg.Listen.OpsAddr = ln.Addr().String(), o.opsAddr
	cfg.IDP.Issuer = o.issuer
	cfg.Routes.File = routesFile
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.Log.Format = "text"
	cfg.Log.Level = "warn"
	cfg.Log.AccessLog = &o.accessLog
	cfg.IDP.AllowPassword = true
	// A Stripe web-hook adapter; its secrets are made up now and passed to
	// the config as references, like real ones.
	whsec, _, _ := readPassword(nil, false)
	adapterSecret, _, _ := readPassword(nil, false)
	whsec = "whsec_demo_" + whsec
	os.Setenv("FICUS_DEMO_STRIPE_WHSEC", whsec)
	os.Setenv("FICUS_DEMO_ADAPTER_SECRET", adapterSecret)
	cfg.Webhooks.Adapters = []adapters.Config{{
		Name: "stripe", Path: "/webhooks/stripe",
		Schemes:  []adapters.SchemeConfig{{Type: "stripe", Secrets: []string{"env:FICUS_DEMO_STRIPE_WHSEC"}}},
		Target:   "/internal/payments/stripe",
		ClientID: "demo-stripe-adapter", ClientSecret: "env:FICUS_DEMO_ADAPTER_SECRET",
	}}
	if err := cfg.Validate(config.ForServe); err != nil {
		if strings.Contains(err.Error(), "idp.issuer") {
			return fmt.Errorf("%w\n(set it with --issuer)", err)
		}
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
	var creds demoCredentials
	var seedErr error
	sio.provider = func(p *idp.Provider) {
		creds, seedErr = seedDemo(ctx, p)
		if seedErr == nil {
			_, seedErr = p.CreateClient(ctx, idp.NewClient{ID: "demo-stripe-adapter", Name: "Stripe web-hook adapter", Secret: adapterSecret,
				Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"payments.notify"}})
		}
	}
	notify := sio.started
	sio.started = func(addr, ops string) {
		if notify != nil {
			defer notify(addr, ops)
		}
		if seedErr != nil {
			fmt.Fprintln(sio.stderr, "ficus demo: seeding the IDP failed:", seedErr)
			return
		}
		creds.TokenURL = "http://" + addr + "/oauth2/token"
		if o.credsFile != "" {
			b, _ := json.MarshalIndent(creds, "", "  ")
			if err := os.WriteFile(o.credsFile, append(b, '\n'), 0o600); err != nil {
				fmt.Fprintln(sio.stderr, "ficus demo: writing the credentials file:", err)
			}
		}
		printDemo(sio.stdout, o.prog, addr, ops, monoURL, ordersURL, routesFile, creds)
		fmt.Fprintf(sio.stdout, `A Stripe web-hook adapter (signing secret %[2]s) delivers to the orders service:
  BODY='{"id":"evt_demo_1","type":"payment_intent.succeeded"}'; T=$(date +%%s)
  SIG=$(printf '%%s.%%s' "$T" "$BODY" | openssl dgst -sha256 -hmac '%[2]s' | sed 's/^.* //')
  curl -s -i -H "Stripe-Signature: t=$T,v1=$SIG" -H 'Content-Type: application/json' -d "$BODY" http://%[1]s/webhooks/stripe
  (post it twice: one delivery; change the body: 401; the orders service reports each delivery below)

`, addr, whsec)
	}
	return runServer(ctx, &cfg, sio)
}

// seedDemo creates the demo client and user with fresh random secrets.
func seedDemo(ctx context.Context, p *idp.Provider) (demoCredentials, error) {
	secret, err := p.CreateClient(ctx, idp.NewClient{ID: "demo-app", Name: "Demo app", FirstParty: true,
		Grants: []string{idp.GrantClientCredentials, idp.GrantPassword, idp.GrantRefreshToken, idp.PermissionIntrospect},
		Scopes: []string{"orders.read", "orders.write", "profile"}})
	if err != nil {
		return demoCredentials{}, err
	}
	pw, _, err := readPassword(nil, false)
	if err != nil {
		return demoCredentials{}, err
	}
	if _, err := p.CreateUser(ctx, idp.NewUser{Username: "demo", Password: pw, CustomerNumber: "C-0001",
		Claims: map[string]any{"name": "Demo User"}}); err != nil {
		return demoCredentials{}, err
	}
	return demoCredentials{ClientID: "demo-app", ClientSecret: secret, Username: "demo", Password: pw}, nil
}

func printDemo(w io.Writer, prog, addr, ops, mono, orders, routesFile string, c demoCredentials) {
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
  %[10]s routes validate %[5]s

The identity provider (demo client %[6]s, user %[8]s):
  client secret  %[7]s
  password       %[9]s
  curl -s -u %[6]s:%[7]s -d grant_type=client_credentials %[1]s/oauth2/token
  curl -s -u %[6]s:%[7]s -d grant_type=password -d username=%[8]s -d password=%[9]s %[1]s/oauth2/token
  curl -s -u %[6]s:%[7]s -d token=TOKEN %[1]s/oauth2/introspect
  curl -s %[1]s/.well-known/oauth-authorization-server
  curl -s %[1]s/.well-known/jwks.json

The exchange (opaque token in, JWT to the service):
  TOKEN=$(curl -s -u %[6]s:%[7]s -d grant_type=client_credentials %[1]s/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/me/orders   # the service prints the JWT claims it got
  curl -s -i %[1]s/api/me/orders                                   # no token: 401 with WWW-Authenticate

`, front, ops, mono, orders, routesFile, c.ClientID, c.ClientSecret, c.Username, c.Password, prog)
}
