// Package frontdoor composes ficus's front door: the one place that
// decides which handler serves a request that arrives on listen.addr, the
// IDP's endpoints, a web-hook adapter's endpoint, the web session layer's
// login and logout, or the gateway, by the
// request's normalised path (routes.NormalizePath), as routing does.
package frontdoor

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ficus-gw/ficus/routes"
)

// Options name the handlers behind the front door.
type Options struct {
	// Gateway serves every request nobody else claims: the strangler
	// gateway, or the mobile adapter in front of it. Required.
	Gateway http.Handler
	// IDP, if set, serves /oauth2/… and the authorization-server metadata
	// and JWKS documents under /.well-known/. Nil: those go to Gateway.
	IDP http.Handler
	// Hooks are the web-hook adapters' endpoints by their path, matched
	// exactly after normalisation. Nil: none.
	Hooks map[string]http.Handler
	// Sessions, if set, serves the web session layer's login and logout
	// endpoints: the requests whose normalised path is one of
	// SessionPaths.
	Sessions     http.Handler
	SessionPaths []string
}

// Door is the front door: an http.Handler.
type Door struct {
	gateway, idp http.Handler
	hooks        map[string]http.Handler
	sessions     http.Handler
	sessionPaths map[string]bool
}

// New returns the front door. A hook path is normalised here; one that
// cannot be, or two that are the same path, are errors.
func New(o Options) (*Door, error) {
	if o.Gateway == nil {
		return nil, errors.New("frontdoor: a gateway is required")
	}
	d := &Door{gateway: o.Gateway, idp: o.IDP, hooks: make(map[string]http.Handler, len(o.Hooks))}
	for p, h := range o.Hooks {
		n, err := routes.NormalizePath(p)
		if err != nil {
			return nil, fmt.Errorf("frontdoor: web-hook path %q: %w", p, err)
		}
		if d.hooks[n] != nil {
			return nil, fmt.Errorf("frontdoor: two web-hook adapters on the path %s", n)
		}
		d.hooks[n] = h
	}
	if o.Sessions != nil {
		d.sessions, d.sessionPaths = o.Sessions, map[string]bool{}
		for _, p := range o.SessionPaths {
			n, err := routes.NormalizePath(p)
			switch {
			case err != nil:
				return nil, fmt.Errorf("frontdoor: session endpoint %q: %w", p, err)
			case d.hooks[n] != nil:
				return nil, fmt.Errorf("frontdoor: %s is both a session endpoint and a web-hook path", n)
			case IsIDPPath(n):
				return nil, fmt.Errorf("frontdoor: the session endpoint %s is a path of the IDP", n)
			}
			d.sessionPaths[n] = true
		}
	}
	return d, nil
}

// ServeHTTP sends the IDP's endpoints to the IDP and web-hook endpoints to
// their adapters, each with the normalised path it was chosen by (their
// routers match paths as written), and everything else, including a path
// that cannot be normalised, to the gateway as it came: the gateway
// normalises, or refuses, by itself.
func (d *Door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.idp != nil || len(d.hooks) > 0 || d.sessions != nil {
		if p, err := routes.NormalizePath(r.URL.EscapedPath()); err == nil {
			if h := d.hooks[p]; h != nil {
				h.ServeHTTP(w, routes.WithPath(r, p))
				return
			}
			if d.sessionPaths[p] {
				d.sessions.ServeHTTP(w, routes.WithPath(r, p))
				return
			}
			if d.idp != nil && IsIDPPath(p) {
				d.idp.ServeHTTP(w, routes.WithPath(r, p))
				return
			}
		}
	}
	d.gateway.ServeHTTP(w, r)
}

// IsIDPPath reports whether the normalised path p is one of the IDP's.
func IsIDPPath(p string) bool {
	return strings.HasPrefix(p, "/oauth2/") || p == "/.well-known/oauth-authorization-server" || p == "/.well-known/jwks.json" ||
		p == "/.well-known/openid-configuration"
}
