package strangler

import (
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/health"
	"github.com/sony/gobreaker/v2"
)

// unmatchedRoute names, in metrics and logs, requests that match no route;
// they go to the monolith unchanged.
const unmatchedRoute = "(unmatched)"

// table is one immutable, compiled rule set with its upstreams.
type table struct {
	file      *routes.File
	matcher   *routes.Matcher
	routes    []*liveRoute
	unmatched *liveRoute
	upstreams map[string]*upstream
}

// liveRoute is a route ready to serve.
type liveRoute struct {
	name    string
	cfg     *routes.Route
	policy  string
	targets []*target // new upstreams first, the monolith last
	bounds  []int     // cumulative bucket ends, aligned with targets
	byName  map[string]*target
	// monolith is where requests fall back to; also an override target.
	monolith *target
	metrics  [2]*sideMetrics // SideLegacy, SideNew
	// health is the route's sliding window of both sides; nil for
	// requests that match no route.
	health *health.Route
	// authHeader is the route's custom JWT header (canonical), whose client
	// copies are removed; "" for Authorization or no auth.
	authHeader string
	// overrideHeader is the tester override header (canonical), which is
	// for ficus and never forwarded; "" for none.
	overrideHeader string
	// shadow is the route's shadow rule; nil for none.
	shadow *shadowing
}

// target is a route's way to one upstream: its rewrites and fallback.
type target struct {
	up               *upstream
	route            *liveRoute
	path             pathRewrite
	base             string // the upstream URL's path, escaped
	needsPath        bool   // the outbound path differs from the public one
	rewriteResponses bool
	cookieDomain     string
	// fallback: when this (new) upstream cannot take a request, whether
	// idempotent / other requests go to the monolith.
	fallback, fallbackUnsafe bool
}

func (tg *target) side() int {
	if tg.up.monolith {
		return 0
	}
	return 1
}

// canFallback reports whether a request with method m may go to the
// monolith when this target could not be reached.
func (tg *target) canFallback(m string) bool {
	if tg.up.monolith || !tg.fallback {
		return false
	}
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return tg.fallbackUnsafe
}

// build compiles a rule set, keeping the upstreams of prev whose
// configuration did not change (their pools and breakers live on).
func (g *Gateway) build(f *routes.File, m *routes.Matcher, prev *table) (*table, error) {
	t := &table{file: f, matcher: m, upstreams: map[string]*upstream{}}
	for name, cfg := range f.Upstreams {
		isMono := name == f.Monolith
		if prev != nil {
			if old := prev.upstreams[name]; old != nil && old.sameConfig(cfg, isMono) {
				t.upstreams[name] = old
				continue
			}
		}
		up, err := newUpstream(name, cfg, isMono, func(name string, to gobreaker.State) {
			g.metrics.setBreaker(name, to)
			g.log.Warn("circuit breaker changed state", "upstream", name, "state", to.String())
		})
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		g.metrics.setBreaker(name, gobreaker.StateClosed)
		t.upstreams[name] = up
	}
	mono := t.upstreams[f.Monolith]
	// A route that keeps its name keeps its metric series: looking 10,000
	// routes' series up in the vectors again was most of a reload.
	var series map[string]*[2]*sideMetrics
	if prev != nil {
		series = make(map[string]*[2]*sideMetrics, len(prev.routes))
		for _, rt := range prev.routes {
			series[rt.name] = &rt.metrics
		}
	}
	t.routes = make([]*liveRoute, 0, len(f.Routes))
	for _, rc := range f.Routes {
		rt := g.buildRoute(rc.Name, rc, t, mono, series[rc.Name])
		if rc.Shadow != nil {
			var err error
			if rt.shadow, err = g.newShadowing(rt, rc.Shadow, t); err != nil {
				return nil, fmt.Errorf("route %s: shadow: %w", rc.Name, err)
			}
		}
		t.routes = append(t.routes, rt)
	}
	for _, rt := range t.routes {
		window := health.DefaultWindow
		if a := rt.cfg.Analysis; a != nil {
			window = a.WindowOrDefault()
		}
		rt.health = g.health.Route(rt.name, window)
	}
	t.unmatched = g.buildRoute(unmatchedRoute, &routes.Route{Name: unmatchedRoute, To: f.Monolith}, t, mono, nil)
	return t, nil
}

// sideSeries returns the series of a route's side: those it had in the
// previous table (had), or the vectors' own.
func (g *Gateway) sideSeries(route, side string, had *sideMetrics) *sideMetrics {
	if had != nil {
		return had
	}
	return g.metrics.forRoute(route, side)
}

func (g *Gateway) buildRoute(name string, rc *routes.Route, t *table, mono *upstream, had *[2]*sideMetrics) *liveRoute {
	if had == nil {
		had = &[2]*sideMetrics{}
	}
	rt := &liveRoute{name: name, cfg: rc, policy: rc.Policy(), byName: map[string]*target{}}
	if a := rc.Auth; a != nil && a.Header != "" {
		if h := textproto.CanonicalMIMEHeaderKey(a.Header); h != "Authorization" {
			rt.authHeader = h
		}
	}
	if o := rc.Override; o != nil && o.Header != "" {
		rt.overrideHeader = textproto.CanonicalMIMEHeaderKey(o.Header)
	}
	// Every route can reach the monolith (fallback, overrides); only routes
	// with a new upstream get series for the new side.
	rt.metrics[0] = g.sideSeries(name, SideLegacy, had[0])
	for _, n := range rc.Targets() {
		if n != mono.name {
			rt.metrics[1] = g.sideSeries(name, SideNew, had[1])
			break
		}
	}
	weights := map[string]int{}
	if rc.To != "" {
		weights[rc.To] = 100
	}
	for _, s := range rc.Split {
		weights[s.To] = s.Weight
	}
	// New upstreams first (in file order), the monolith last: see buckets.
	order := rc.Targets()
	var news []string
	hasMono := false
	for _, n := range order {
		if n == mono.name {
			hasMono = true
		} else {
			news = append(news, n)
		}
	}
	if hasMono {
		news = append(news, mono.name)
	}
	end := 0
	for _, n := range news {
		tg := g.newTarget(rt, t.upstreams[n])
		rt.targets = append(rt.targets, tg)
		end += weights[n] * (buckets / 100)
		rt.bounds = append(rt.bounds, end)
		rt.byName[n] = tg
	}
	if tg := rt.byName[mono.name]; tg != nil {
		rt.monolith = tg
	} else {
		rt.monolith = g.newTarget(rt, mono)
		rt.byName[mono.name] = rt.monolith
	}
	return rt
}

func (g *Gateway) newTarget(rt *liveRoute, up *upstream) *target {
	rc := rt.cfg
	tg := &target{up: up, route: rt, fallback: !rc.Fallback.Disabled, fallbackUnsafe: rc.Fallback.NonIdempotent}
	if rw := rc.Rewrite; rw != nil && (!up.monolith || rw.Monolith) {
		tg.path = pathRewrite{strip: rw.StripPrefix, add: rw.AddPrefix}
		tg.rewriteResponses = rw.ResponsesRewritten()
		tg.cookieDomain = rw.CookieDomain
	} else if !up.monolith {
		// New upstreams get their internal host names mapped back by default.
		tg.rewriteResponses = true
	}
	tg.base = up.url.EscapedPath()
	tg.needsPath = !tg.path.empty() || (tg.base != "" && tg.base != "/")
	return tg
}
