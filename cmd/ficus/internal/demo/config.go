package demo

import (
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
)

// The environment variables that hold the secrets of the demo's Stripe
// web-hook adapter, named by Config as references.
const (
	WebhookSecretEnv = "FICUS_DEMO_STRIPE_WHSEC"
	AdapterSecretEnv = "FICUS_DEMO_ADAPTER_SECRET"
)

// Config is the demo's process configuration: the front door on addr
// (bound already, so that the default issuer is right), the operational
// listener on opsAddr, the IDP (issuer: "" is the default), routesFile,
// warnings only in text, the access log if accessLog, the password grant,
// web sessions for the web app, and a Stripe web-hook adapter delivering
// to the orders service.
func Config(addr, opsAddr, issuer, routesFile string, accessLog bool) config.Config {
	cfg := config.Defaults()
	cfg.Listen.Addr, cfg.Listen.OpsAddr = addr, opsAddr
	cfg.IDP.Issuer = issuer
	cfg.Routes.File = routesFile
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.Log.Format = "text"
	cfg.Log.Level = "warn"
	cfg.Log.AccessLog = &accessLog
	cfg.IDP.AllowPassword = true
	// Web sessions for the new web app: its JPT becomes a JWT with
	// orders.read for the orders service; it counts page views.
	cfg.Sessions.Enabled = true
	cfg.Sessions.ServiceScope = "orders.read"
	cfg.Sessions.UpdateKeys = []string{VisitsKey}
	cfg.Webhooks.Adapters = []adapters.Config{{
		Name: "stripe", Path: "/webhooks/stripe",
		Schemes:  []adapters.SchemeConfig{{Type: "stripe", Secrets: []string{"env:" + WebhookSecretEnv}}},
		Target:   "/internal/payments/stripe",
		ClientID: "demo-stripe-adapter", ClientSecret: "env:" + AdapterSecretEnv,
	}}
	return cfg
}
