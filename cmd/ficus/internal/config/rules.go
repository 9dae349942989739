package config

import (
	"fmt"
	"strings"

	"github.com/ficus-gw/ficus/routes"
)

// CheckRules checks a route file against c: it refuses what would fail on
// every request with this configuration.
func (c *Config) CheckRules(f *routes.File) error {
	var errs []string
	remote := c.Gateway.RemoteIDP.Issuer != ""
	for _, r := range f.Routes {
		if r.Policy() == "session" {
			switch {
			case remote:
				errs = append(errs, fmt.Sprintf("route %s: policy session needs the IDP in this process; gateway.remote_idp is set", r.Name))
			case !c.Sessions.Enabled || !c.IDPEnabled():
				errs = append(errs, fmt.Sprintf("route %s: policy session needs the session layer: set sessions.enabled (with the IDP in this process)", r.Name))
			}
		}
		if !remote {
			continue
		}
		switch r.Policy() {
		case "jwt":
			// The caller's JWT is verified against the remote JWKS, but only
			// an IDP in this process can mint one for a new upstream.
			for _, to := range r.Targets() {
				if to != f.Monolith {
					errs = append(errs, fmt.Sprintf("route %s: policy jwt cannot send to the new upstream %s with gateway.remote_idp: "+
						"only the IDP in this process can exchange a caller's JWT for one for %s (use policy oauth2, or run the IDP here)", r.Name, to, to))
					break
				}
			}
		case "optional":
			errs = append(errs, fmt.Sprintf("route %s: policy optional needs the IDP in this process to mint application tokens for anonymous callers; "+
				"gateway.remote_idp is set", r.Name))
		case "bridge":
			errs = append(errs, fmt.Sprintf("route %s: policy bridge needs the IDP in this process to mint JWTs for the monolith's users; "+
				"gateway.remote_idp is set", r.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: every request on these routes would fail:\n%s", f.Name, strings.Join(errs, "\n"))
	}
	return nil
}
