package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/analysis"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/dashboard"
	"github.com/ficus-gw/ficus/strangler/ops"
)

// adminAPI is the admin API: its routes are added to mux (the web-hook
// inbox by newWebhooks, the rule store by addRouteStore); Handler serves
// them behind the token check.
type adminAPI struct {
	mux   *http.ServeMux
	guard auth.AdminGuard
	// dashboard is the migration dashboard, served beside the API without
	// the token check (it only reads; its buttons call the API).
	dashboard http.Handler
}

// newAdminAPI returns the admin API, its tokens checked by stage (nil:
// every request 503) with admin.scope and admin.read_scope.
func newAdminAPI(cfg *config.Config, stage *auth.Stage, logger *slog.Logger) *adminAPI {
	if stage == nil {
		logger.Warn("admin API: no identity provider (idp.enabled or gateway.remote_idp) to check its tokens; every admin request is refused")
	}
	return &adminAPI{mux: http.NewServeMux(),
		guard: auth.AdminGuard{Stage: stage, Scope: cfg.Admin.Scope, ReadScope: cfg.Admin.ReadScope, Logger: logger}}
}

// addRouteStore adds the rule store's API (routes.source postgres): the
// changes are checked against cfg as ficus routes apply checks them, and
// the author is the token's holder.
func (a *adminAPI) addRouteStore(cfg *config.Config, be *backend, logger *slog.Logger) {
	if !cfg.RoutesFromStore() {
		return
	}
	revisions.AdminRoutes(a.mux, revisions.AdminOptions{
		Store:       revisions.New(be.pool),
		Check:       func(f *routes.File) error { return cfg.CheckRules(f) },
		Caller:      func(r *http.Request) (string, bool) { return auth.AdminCaller(r.Context()) },
		SilentAfter: revisions.SilentAfter(cfg.Routes.PollInterval.Std(0)),
		Logger:      logger,
	})
}

// addAnalysis adds GET /admin/routes/analysis: this instance's canary
// analysis verdicts and its routes' health windows (each instance judges
// its own traffic).
func (a *adminAPI) addAnalysis(e *analysis.Engine, gw *strangler.Gateway) {
	a.mux.HandleFunc("GET /admin/routes/analysis", func(w http.ResponseWriter, _ *http.Request) {
		ops.WriteJSON(w, http.StatusOK, map[string]any{"analysis": nonNilSlice(e.AnalysisStatus()), "health": nonNilSlice(gw.HealthReport())})
	})
}

// nonNilSlice makes a nil slice an empty one (JSON [], not null).
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// addDashboard adds the migration dashboard (dashboard.Path), reading
// the gateway and, with routes.source postgres, the route store.
func (a *adminAPI) addDashboard(cfg *config.Config, gw *strangler.Gateway, canary *analysis.Engine, be *backend, logger *slog.Logger) error {
	o := dashboard.Options{Source: dashSource{gw, canary}, SilentAfter: revisions.SilentAfter(cfg.Routes.PollInterval.Std(0)), Logger: logger}
	if cfg.RoutesFromStore() {
		o.History = revisions.New(be.pool)
	}
	d, err := dashboard.New(o)
	if err != nil {
		return err
	}
	a.dashboard = d
	return nil
}

// Handler is the admin API behind the token check, and the dashboard
// beside it.
func (a *adminAPI) Handler() http.Handler {
	if a.dashboard == nil {
		return a.guard.Wrap(a.mux)
	}
	mux := http.NewServeMux()
	mux.Handle(dashboard.Path, a.dashboard)
	mux.Handle("/", a.guard.Wrap(a.mux))
	return mux
}

// dashSource is what the dashboard reads: the gateway's rules, traffic,
// breakers, shadow results and health windows, and the canary analysis's
// verdicts, each mapped to the dashboard's own types.
type dashSource struct {
	*strangler.Gateway
	canary *analysis.Engine
}

func (d dashSource) Shadow() []dashboard.ShadowReport {
	var out []dashboard.ShadowReport
	for _, r := range d.ShadowReport() {
		dr := dashboard.ShadowReport{Route: r.Route, Target: r.Target, Percent: r.Percent, Compared: r.Compared,
			Matched: r.Matched, Dropped: r.Dropped, Mismatches: r.Mismatches, Parity: r.Parity}
		for _, s := range r.Samples {
			dr.Samples = append(dr.Samples, dashboard.ShadowSample{At: s.At, Method: s.Method, Path: s.Path, Kind: s.Kind,
				Primary: dashboard.ShadowAnswer(s.Primary), Shadow: dashboard.ShadowAnswer(s.Shadow), Diffs: s.Diffs})
		}
		out = append(out, dr)
	}
	return out
}

func (d dashSource) Health() []dashboard.RouteHealth {
	var out []dashboard.RouteHealth
	for _, h := range d.HealthReport() {
		out = append(out, dashboard.RouteHealth{Route: h.Route, Window: h.Window, Legacy: dashboard.HealthSide(h.Legacy), New: dashboard.HealthSide(h.New)})
	}
	return out
}

func (d dashSource) Analysis() []dashboard.AnalysisStatus {
	if d.canary == nil {
		return nil
	}
	var out []dashboard.AnalysisStatus
	for _, s := range d.canary.AnalysisStatus() {
		out = append(out, dashboard.AnalysisStatus{Route: s.Route, Verdict: s.Verdict, Reason: s.Reason, Step: s.Step, Weight: s.Weight, Since: s.Since})
	}
	return out
}

// mount puts the admin API under /admin/ and the dashboard under
// /dashboard/ on the operational listener's mux, unless admin.listen
// gives them a listener of their own, which it binds and returns (served
// over HTTPS with admin.tls when it is set).
func (a *adminAPI) mount(cfg *config.Config, ops *http.ServeMux) (net.Listener, error) {
	if cfg.Admin.Listen == "" {
		ops.Handle("/admin/", a.guard.Wrap(a.mux))
		if a.dashboard != nil {
			ops.Handle(dashboard.Path, a.dashboard)
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	return ln, nil
}
