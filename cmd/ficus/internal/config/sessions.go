package config

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ficus-gw/ficus/routes"
)

// Sessions configures the web session layer: policy session routes and the
// login and logout endpoints; see docs/web-sessions.md. Zero values take
// the defaults of strangler/session and idp/session.
type Sessions struct {
	// Enabled turns the session layer on. Default false: a server that
	// does not use sessions does not claim the login and logout paths.
	Enabled bool `yaml:"enabled"`
	// Cookie is the session cookie's name. Default ficus_session.
	Cookie string `yaml:"cookie"`
	// VisitorCookie is the returning-visitor cookie's name. Default
	// ficus_visitor.
	VisitorCookie string `yaml:"visitor_cookie"`
	// Secure is auto (default: Secure on HTTPS, seen directly or from a
	// trusted proxy's X-Forwarded-Proto) or always.
	Secure string `yaml:"secure" validate:"omitempty,oneof=auto always"`
	// AnonymousTTL is the absolute lifetime of a session that is not
	// logged on. Default 24h.
	AnonymousTTL Duration `yaml:"anonymous_ttl" validate:"gte=0"`
	// VisitorTTL is the returning-visitor cookie's lifetime, extended on
	// each visit. Default 168h (a week).
	VisitorTTL Duration `yaml:"visitor_ttl" validate:"gte=0"`
	// LoggedOnMax ends a logged-on session this long after the login,
	// never extended. Default 4h.
	LoggedOnMax Duration `yaml:"logged_on_max" validate:"gte=0"`
	// Idle ends a session not seen for this long. Default 30m.
	Idle Duration `yaml:"idle" validate:"gte=0"`
	// JPTTTL is the lifetime of a JPT. Default 5m.
	JPTTTL Duration `yaml:"jpt_ttl" validate:"gte=0"`
	// CacheTTL bounds how long a session is trusted from the in-process
	// cache; notices of a session's end clear it at once. Default 5s.
	CacheTTL Duration `yaml:"cache_ttl" validate:"gte=0"`
	// Headers name the headers to and from web apps.
	Headers SessionHeaders `yaml:"headers"`
	// UpdateKeys are the session attributes web apps may set. Default
	// none: every context update is refused.
	UpdateKeys []string `yaml:"update_keys"`
	// MaxUpdateBytes bounds a context update and a session's attributes.
	// Default 4KiB.
	MaxUpdateBytes ByteSize `yaml:"max_update_bytes"`
	// LoginPath and LogoutPath are the front door's endpoints. Defaults
	// /auth/login and /auth/logout.
	LoginPath  string `yaml:"login_path"`
	LogoutPath string `yaml:"logout_path"`
	// AllowedOrigins are origins (scheme://host[:port]) besides the
	// request's own whose state-changing requests are accepted.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// RedirectHosts are hosts to which a login or logout may redirect
	// with an absolute return_to URL; paths of the request's own host are
	// always allowed. Default none.
	RedirectHosts []string `yaml:"redirect_hosts" validate:"dive,hostname_rfc1123"`
	// StartsPerMinute bounds the new sessions one client address may start
	// per minute (burst the same); past it, 429. Default 60.
	StartsPerMinute float64 `yaml:"starts_per_minute" validate:"gte=0"`
	// ServiceScope is the scope of the JWT a service receives for a web
	// app's JPT. Default none.
	ServiceScope string `yaml:"service_scope"`
}

// SessionHeaders name the session layer's headers; each one is owned by
// ficus (a browser's copy is removed on every route). Defaults:
// X-Ficus-User, X-Ficus-Customer, X-Ficus-Level, X-Ficus-Login-Time,
// X-Ficus-Session-Attrs, X-Ficus-JPT, X-Ficus-CSRF-Token and, from the
// web app, X-Ficus-Context-Update.
type SessionHeaders struct {
	User      string `yaml:"user"`
	Customer  string `yaml:"customer"`
	Level     string `yaml:"level"`
	LoginTime string `yaml:"login_time"`
	Attrs     string `yaml:"attrs"`
	JPT       string `yaml:"jpt"`
	CSRF      string `yaml:"csrf"`
	Update    string `yaml:"update"`
}

var (
	cookieNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
	attrKeyRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// validateSessions adds the problems of the sessions section.
func (c *Config) validateSessions(add func(field, format string, args ...any)) {
	s := c.Sessions
	if !s.Enabled {
		return
	}
	if !c.IDPEnabled() {
		add("sessions.enabled", "sessions need the IDP in this process (idp.enabled is false)")
	}
	if c.Gateway.RemoteIDP.Issuer != "" {
		add("sessions.enabled", "sessions need the IDP in this process (gateway.remote_idp is set)")
	}
	for _, f := range []struct{ field, v string }{{"sessions.cookie", s.Cookie}, {"sessions.visitor_cookie", s.VisitorCookie}} {
		if f.v != "" && !cookieNameRE.MatchString(f.v) {
			add(f.field, "%q is not a cookie name", f.v)
		}
		if (strings.HasPrefix(f.v, "__Host-") || strings.HasPrefix(f.v, "__Secure-")) && s.Secure != "always" {
			// Browsers drop such a cookie unless it is Secure.
			add(f.field, "%q needs sessions.secure: always (browsers keep __Host- and __Secure- cookies only when Secure)", f.v)
		}
	}
	if session, visitor := c.SessionCookies(); session == visitor {
		add("sessions.visitor_cookie", "must differ from sessions.cookie (both %s)", session)
	}
	seen := map[string]string{}
	h := s.Headers
	for _, f := range []struct{ key, v string }{{"user", h.User}, {"customer", h.Customer}, {"level", h.Level}, {"login_time", h.LoginTime},
		{"attrs", h.Attrs}, {"jpt", h.JPT}, {"csrf", h.CSRF}, {"update", h.Update}} {
		if f.v == "" {
			continue
		}
		field := "sessions.headers." + f.key
		if !cookieNameRE.MatchString(f.v) {
			add(field, "%q is not a header name", f.v)
			continue
		}
		k := http.CanonicalHeaderKey(f.v)
		if other, dup := seen[k]; dup {
			add(field, "%s is also sessions.headers.%s", f.v, other)
		}
		seen[k] = f.key
	}
	for i, k := range s.UpdateKeys {
		if !attrKeyRE.MatchString(k) {
			add(fmt.Sprintf("sessions.update_keys[%d]", i), "%q is not a key (letters, digits, '_', '.', '-'; at most 64)", k)
		}
	}
	if s.MaxUpdateBytes != 0 && (s.MaxUpdateBytes < 64 || s.MaxUpdateBytes > 64<<10) {
		add("sessions.max_update_bytes", "must be between 64 and 64KiB (got %d)", int64(s.MaxUpdateBytes))
	}
	paths := map[string]string{}
	for _, f := range []struct{ field, v, def string }{{"sessions.login_path", s.LoginPath, "/auth/login"}, {"sessions.logout_path", s.LogoutPath, "/auth/logout"}} {
		p := f.v
		if p == "" {
			p = f.def
		}
		n, err := routes.NormalizePath(p)
		switch {
		case err != nil || !strings.HasPrefix(p, "/"):
			add(f.field, "%q is not a path", p)
			continue
		case strings.HasPrefix(n, "/oauth2/") || strings.HasPrefix(n, "/.well-known/"):
			add(f.field, "%s belongs to the IDP", n)
		}
		for i, a := range c.Webhooks.Adapters {
			if a.Path == n {
				add(f.field, "%s is also the path of webhooks.adapters[%d]", n, i)
			}
		}
		if other, dup := paths[n]; dup {
			add(f.field, "%s is also %s", n, other)
		}
		paths[n] = f.field
	}
	cop := http.NewCrossOriginProtection()
	for i, o := range s.AllowedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			add(fmt.Sprintf("sessions.allowed_origins[%d]", i), "must be scheme://host[:port] (got %q)", o)
		}
	}
}
