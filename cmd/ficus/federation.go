package main

import (
	"github.com/ficus-gw/ficus/routes"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/federation"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	websession "github.com/ficus-gw/ficus/strangler/session"
)

// newFederation builds the federated login of idp.federation on the IDP
// of this process and puts its buttons on the login page; nil without
// providers or without an IDP here.
func newFederation(cfg *config.Config, sec *config.Resolved, p *idp.Provider, be *backend, trusted []netip.Prefix, logger *slog.Logger) (*federation.Federation, error) {
	if p == nil || len(cfg.IDP.Federation.Providers) == 0 {
		return nil, nil
	}
	addr := clientaddr.New(trusted)
	f, err := federation.New(federation.Options{Config: cfg.IDP.Federation, Secret: sec.Secret, Store: be.federation, IDP: p,
		BaseURL: cfg.Issuer(), KEK: sec.KEK, ClientAddr: func(r *http.Request) string { return addr.Addr(r).String() }, Logger: logger})
	if err != nil {
		return nil, err
	}
	p.SetUpstreamLogins(f)
	for _, pc := range cfg.IDP.Federation.Providers {
		logger.Info("federated login: upstream provider", "name", pc.Name, "issuer", pc.Issuer, "redirect_uri", f.RedirectURI(pc.Name))
	}
	return f, nil
}

// sessionFederation is fed as the web session layer's login sees it; nil
// without federated login.
func sessionFederation(fed *federation.Federation) websession.Federation {
	if fed == nil {
		return nil
	}
	return fed
}

// withFederation serves the upstreams' callbacks (/oauth2/federation/…)
// beside the IDP's endpoints.
func withFederation(h http.Handler, fed *federation.Federation) http.Handler {
	if h == nil || fed == nil {
		return h
	}
	callbacks := fed.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The front door chose the IDP on the normalised path; this
		// decides on the same form (routes.NormalizePath), never the raw one.
		if p, err := routes.NormalizePath(r.URL.EscapedPath()); err == nil && strings.HasPrefix(p, "/oauth2/federation/") {
			callbacks.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
