package config

import (
	"strings"
	"time"
)

// The defaults of the process configuration are applied here, and only
// here: by Defaults for keys whose zero value means something else than
// the default (a listener, the store), and by the methods below for keys
// whose zero value stands for a default derived from other keys. The other
// zero values are passed on as they are, to packages that document them as
// their defaults (idp.Config, idp.Housekeeping, auth.Options,
// adapters.Deliverer, inbox.Purger, mobile.Config).

// Defaults returns the configuration used where a file says nothing.
func Defaults() Config {
	return Config{
		Listen: Listen{
			Addr: "127.0.0.1:8080", OpsAddr: "127.0.0.1:9090",
			ReadHeaderTimeout: Duration(10 * time.Second), IdleTimeout: Duration(120 * time.Second),
			MaxHeaderBytes: 1 << 20,
		},
		Store:           Store{Driver: "memory", MaxConns: 16},
		ShutdownTimeout: Duration(30 * time.Second),
		Log:             Log{Level: "info", Format: "json"},
	}
}

// IDPEnabled reports whether the IDP is served.
func (c *Config) IDPEnabled() bool { return c.IDP.Enabled == nil || *c.IDP.Enabled }

// WatchRoutes reports whether the route file is watched.
func (c *Config) WatchRoutes() bool {
	return !c.RoutesFromStore() && (c.Routes.Watch == nil || *c.Routes.Watch)
}

// RoutesFromStore reports whether the route rules come from the rule
// store (routes.source postgres) rather than routes.file.
func (c *Config) RoutesFromStore() bool { return c.Routes.Source == "postgres" }

// DefaultGOGC is runtime.gogc's default: Go's own. 300 took about a tenth
// of the CPU off a proxied request, but the heap may then grow to 4x what
// is live, and measured on a quiet machine (2026-11-30) that put a
// pass-through instance at 68 MiB resident (40 MiB at 100) and one with
// 10,000 routes at 111-118 MiB (79-86 MiB at 100): both over issue 15's
// and 16's memory goals. Operators with memory to spare can raise it.
const DefaultGOGC = 100

// GOGC is runtime.gogc, or its default.
func (c *Config) GOGC() int {
	if c.Runtime.GOGC == 0 {
		return DefaultGOGC
	}
	return c.Runtime.GOGC
}

// AccessLog reports whether the access log is on.
func (c *Config) AccessLog() bool { return c.Log.AccessLog == nil || *c.Log.AccessLog }

// Issuer is the IDP's public base URL, idp.issuer without a trailing
// slash, or by default http://<listen.addr> (Validate refuses the default
// for serve where clients cannot use it).
func (c *Config) Issuer() string {
	if c.IDP.Issuer == "" {
		return "http://" + c.Listen.Addr
	}
	return strings.TrimSuffix(c.IDP.Issuer, "/")
}

// JWTTTL is idp.jwt_ttl, or its default, 5m (the IDP's own): the signing
// keys stay published an hour past it.
func (c *Config) JWTTTL() time.Duration { return c.IDP.JWTTTL.Std(5 * time.Minute) }

// CacheTTL is gateway.cache_ttl, or its default with a remote IDP, 10s (a
// remote IDP sends no revocation notices); 0 otherwise, the auth stage's
// default (60s).
func (c *Config) CacheTTL() time.Duration {
	if c.Gateway.CacheTTL == 0 && c.Gateway.RemoteIDP.Issuer != "" {
		return 10 * time.Second
	}
	return c.Gateway.CacheTTL.Std(0)
}

// SessionCookies are the names of the session and returning-visitor
// cookies: sessions.cookie and sessions.visitor_cookie, or their
// defaults, ficus_session and ficus_visitor.
func (c *Config) SessionCookies() (session, visitor string) {
	session, visitor = c.Sessions.Cookie, c.Sessions.VisitorCookie
	if session == "" {
		session = "ficus_session"
	}
	if visitor == "" {
		visitor = "ficus_visitor"
	}
	return session, visitor
}

// SessionsAlwaysSecure reports whether session cookies are Secure on every
// response (sessions.secure always); by default, auto, only on HTTPS.
func (c *Config) SessionsAlwaysSecure() bool { return c.Sessions.Secure == "always" }
