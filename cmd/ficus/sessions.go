package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/strangler"
	websession "github.com/ficus-gw/ficus/strangler/session"
	"github.com/prometheus/client_golang/prometheus"
)

// newSessionManager builds the web session layer's manager on the IDP of
// this process, with JPT keys of its own; nil when sessions are off (or
// there is no IDP here, which the configuration refuses with sessions).
// The ends of sessions go through fan: this process's caches at once, the
// other instances by its notices.
func newSessionManager(ctx context.Context, cfg *config.Config, sec *config.Resolved, p *idp.Provider, be *backend,
	fan *revocation.Fanout, logger *slog.Logger) (*idpsession.Manager, error) {
	if !cfg.Sessions.Enabled || p == nil {
		return nil, nil
	}
	s := cfg.Sessions
	jptTTL := s.JPTTTL.Std(idpsession.DefaultJPTTTL)
	keys, err := idp.NewKeyManager(ctx, be.jptKeys, idp.KeyOptions{Alg: cfg.IDP.SigningAlg, KEK: sec.KEK, RetainFor: jptTTL + time.Hour})
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	m, err := idpsession.New(idpsession.Options{Store: be.sessions, Users: p, Keys: keys, Issuer: cfg.Issuer(), Audience: cfg.Gateway.JWTAudience,
		JPTTTL: jptTTL, LoggedOnMax: s.LoggedOnMax.Std(0), Idle: s.Idle.Std(0), AnonymousTTL: s.AnonymousTTL.Std(0),
		VisitorTTL: s.VisitorTTL.Std(0), CacheTTL: s.CacheTTL.Std(0), Notices: fanoutNotices{fan}, Logger: logger})
	if err != nil {
		return nil, err
	}
	// A password change or a disabled user ends every session of the user.
	p.OnUserRevoked(m.EndUser)
	return m, nil
}

// newWebSessions builds the `policy: session` stage and the login and
// logout endpoints on m; nil without m. fed, if set, lets the login go
// through upstream identity providers.
func newWebSessions(cfg *config.Config, m *idpsession.Manager, trusted []netip.Prefix, reg prometheus.Registerer, logger *slog.Logger,
	fed websession.Federation) (*websession.Stage, error) {
	if m == nil {
		return nil, nil
	}
	s := cfg.Sessions
	session, visitor := cfg.SessionCookies()
	return websession.New(websession.Options{Manager: m, Cookie: session, VisitorCookie: visitor, AlwaysSecure: cfg.SessionsAlwaysSecure(),
		VisitorTTL: s.VisitorTTL.Std(0), TrustedProxies: trusted, Headers: sessionHeaders(cfg), UpdateKeys: s.UpdateKeys,
		MaxUpdateBytes: int(s.MaxUpdateBytes), AllowedOrigins: s.AllowedOrigins, RedirectHosts: s.RedirectHosts,
		LoginPath: s.LoginPath, LogoutPath: s.LogoutPath, StartsPerMinute: s.StartsPerMinute, Federation: fed, Registerer: reg, Logger: logger})
}

func sessionHeaders(cfg *config.Config) websession.Headers {
	h := cfg.Sessions.Headers
	return websession.Headers{User: h.User, Customer: h.Customer, Level: h.Level, LoginTime: h.LoginTime,
		Attrs: h.Attrs, JPT: h.JPT, CSRF: h.CSRF, Update: h.Update}
}

// sessionOwned adds to o what the session layer owns: its cookies, which
// reach no upstream, and its headers that are not X-Ficus-* (those are
// always owned), whose browser copies are removed on every route.
func sessionOwned(cfg *config.Config, o *strangler.Options) {
	if !cfg.Sessions.Enabled {
		return
	}
	session, visitor := cfg.SessionCookies()
	o.OwnedCookies = append(o.OwnedCookies, session, visitor)
	for _, h := range sessionHeaders(cfg).Names() {
		if !strings.HasPrefix(h, strangler.OwnedHeaderPrefix) {
			o.OwnedHeaders = append(slices.Clip(o.OwnedHeaders), h)
		}
	}
}

// fanoutNotices hands the ends of sessions, which the session manager
// publishes, to a revocation.Fanout: the caches of this process forget
// them at once (the auth stage's JPT exchanges among them), the other
// instances through the fan-out's notices.
type fanoutNotices struct{ f *revocation.Fanout }

// Publish implements revocation.Notices.
func (n fanoutNotices) Publish(_ context.Context, hashes []string) error {
	n.f.Revoked(hashes)
	return nil
}

// Listen implements revocation.Notices: the fan-out listens itself (Run).
func (n fanoutNotices) Listen(ctx context.Context, _ func([]string), _ func()) { <-ctx.Done() }
