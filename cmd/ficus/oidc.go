package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/strangler"
)

// newIDPSessions gives the provider its browser sessions (the single
// sign-on of the authorization endpoint: prompt=none, max_age, logout):
// the web session layer's manager when sessions are on, else a manager of
// its own on the same store, which it returns (the caller runs it and
// lets revocation notices clear it). Nil without a provider.
func newIDPSessions(ctx context.Context, cfg *config.Config, sec *config.Resolved, p *idp.Provider, web *idpsession.Manager, be *backend,
	fan *revocation.Fanout, logger *slog.Logger) (*idpsession.Manager, error) {
	switch {
	case p == nil:
		return nil, nil
	case web != nil:
		p.UseBrowserSessions(web.Browser())
		return nil, nil
	}
	// Its JPT keys sign nothing (no web app gets a JPT from it) but the
	// manager requires them.
	keys, err := idp.NewKeyManager(ctx, be.jptKeys, idp.KeyOptions{Alg: cfg.IDP.SigningAlg, KEK: sec.KEK, RetainFor: time.Hour})
	if err != nil {
		return nil, fmt.Errorf("idp session keys: %w", err)
	}
	s := cfg.Sessions
	m, err := idpsession.New(idpsession.Options{Store: be.sessions, Users: p, Keys: keys, Issuer: cfg.Issuer(), Audience: cfg.Gateway.JWTAudience,
		LoggedOnMax: s.LoggedOnMax.Std(0), Idle: s.Idle.Std(0), CacheTTL: s.CacheTTL.Std(0), Notices: fanoutNotices{fan}, Logger: logger})
	if err != nil {
		return nil, err
	}
	p.OnUserRevoked(m.EndUser)
	p.UseBrowserSessions(m.Browser())
	return m, nil
}

// idpOwned adds the IDP's session cookie to what the gateway strips: it
// is the IDP's alone and reaches no upstream.
func idpOwned(cfg *config.Config, o *strangler.Options) {
	if cfg.IDPEnabled() {
		o.OwnedCookies = append(o.OwnedCookies, idp.SessionCookie(cfg.Issuer()))
	}
}
