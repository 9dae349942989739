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
	file    *routes.File
	matcher *routes.Matcher
	// routes are in file order (the matcher's indexes), in one allocation.
	routes    []liveRoute
	unmatched *liveRoute
	upstreams map[string]*upstream
	// plain holds, per upstream, the target of every route that sends to
	// it without a rewrite: nothing in it is route-specific, so 10,000
	// routes to two upstreams share two targets.
	plain map[string]*plainTarget
	// groups are the series of metrics groups, by label.
	groups map[string]*routeSeries
	// limits are the rate limits in force, by route:NAME for a route's
	// own and named:NAME for one of the file's rate_limits; nil for none.
	limits map[string]*limiter
}

// plainTarget is an upstream's shared target, with the one-target list
// of the routes that send everything to it.
type plainTarget struct {
	tg   target
	only []*target
}

// wholeRange is the bucket bounds of a route with one target; shared,
// never changed.
var wholeRange = []int{buckets}

// liveRoute is a route ready to serve.
type liveRoute struct {
	name    string
	cfg     *routes.Route
	policy  string
	targets []*target // new upstreams first, the monolith last
	bounds  []int     // cumulative bucket ends, aligned with targets
	// monolith is where requests fall back to; also an override target.
	monolith *target
	// series are where the route's requests are counted: own, its
	// group's, or nil when its metrics are off.
	series *routeSeries
	own    routeSeries
	// fallback: when a new upstream cannot take a request, whether
	// idempotent / other requests go to the monolith.
	fallback, fallbackUnsafe bool
	// health is the route's sliding window of both sides, kept whatever
	// its metrics setting; nil for requests that match no route.
	health *health.Route
	// authHeader is the route's custom JWT header (canonical), whose client
	// copies are removed; "" for Authorization or no auth.
	authHeader string
	// overrideHeader is the tester override header (canonical), which is
	// for ficus and never forwarded; "" for none.
	overrideHeader string
	// shadow is the route's shadow rule; nil for none.
	shadow *shadowing
	// limit is the route's rate limit; nil for none (which costs a
	// request nothing but this nil check).
	limit *limiter
}

// target is a way to one upstream: its rewrites. Targets without a
// rewrite are shared by every route of the table (see table.plain).
type target struct {
	up               *upstream
	path             pathRewrite
	base             string // the upstream URL's path, escaped
	needsPath        bool   // the outbound path differs from the public one
	rewriteResponses bool
	cookieDomain     string
}

func (tg *target) side() int {
	if tg.up.monolith {
		return 0
	}
	return 1
}

// canFallback reports whether a request with method m that target tg
// could not take may go to the route's monolith.
func (rt *liveRoute) canFallback(tg *target, m string) bool {
	if tg.up.monolith || !rt.fallback {
		return false
	}
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return rt.fallbackUnsafe
}

// target returns the route's target for the upstream named name (a tester
// override), or nil.
func (rt *liveRoute) target(name string) *target {
	for _, tg := range rt.targets {
		if tg.up.name == name {
			return tg
		}
	}
	if rt.monolith.up.name == name {
		return rt.monolith
	}
	return nil
}

// build compiles a rule set, keeping the upstreams of prev whose
// configuration did not change (their pools and breakers live on) and
// the series that prev's routes created, for the routes, groups and
// unmatched requests that keep their label. It returns the labels of
// series that prev created and the new table no longer has.
func (g *Gateway) build(f *routes.File, m *routes.Matcher, prev *table) (*table, []string, error) {
	t := &table{file: f, matcher: m, upstreams: make(map[string]*upstream, len(f.Upstreams)),
		plain: make(map[string]*plainTarget, len(f.Upstreams))}
	for name, cfg := range f.Upstreams {
		isMono := name == f.Monolith
		// The TLS files are read on every build, kept upstream or not: a
		// rule set whose files cannot be read is refused.
		tc, err := loadTLS(f, name, cfg.TLS, g.log.Warn)
		if err != nil {
			return nil, nil, err
		}
		if prev != nil {
			if old := prev.upstreams[name]; old != nil && old.sameConfig(cfg, isMono, tc) {
				t.upstreams[name] = old
				continue
			}
		}
		up, err := newUpstream(name, cfg, isMono, tc, func(name string, to gobreaker.State) {
			g.metrics.setBreaker(name, to)
			g.log.Warn("circuit breaker changed state", "upstream", name, "state", to.String())
		})
		if err != nil {
			return nil, nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		g.metrics.setBreaker(name, gobreaker.StateClosed)
		t.upstreams[name] = up
	}
	for name, up := range t.upstreams {
		p := &plainTarget{}
		initTarget(&p.tg, up, nil)
		p.only = []*target{&p.tg}
		t.plain[name] = p
	}
	// Series are created by a route's first request (routeSeries.get); a
	// reload hands on those that exist, usually a few among thousands.
	had := prev.createdSeries()
	mono := t.upstreams[f.Monolith]
	t.routes = make([]liveRoute, len(f.Routes))
	for i, rc := range f.Routes {
		rt := &t.routes[i]
		g.initRoute(rt, rc.Name, rc, t, mono, had)
		if l := rc.Limit(); l != nil {
			rt.limit = t.limiterFor(rc.Name, l, prev)
		}
		if rc.Shadow != nil {
			var err error
			if rt.shadow, err = g.newShadowing(rt, rc.Shadow, t); err != nil {
				return nil, nil, fmt.Errorf("route %s: shadow: %w", rc.Name, err)
			}
		}
	}
	// Health windows once the table is sure to build (a failed build
	// leaves the set alone).
	for i := range t.routes {
		rt := &t.routes[i]
		window := health.DefaultWindow
		if a := rt.cfg.Analysis; a != nil {
			window = a.WindowOrDefault()
		}
		rt.health = g.health.Route(rt.name, window)
	}
	t.unmatched = &liveRoute{}
	g.initRoute(t.unmatched, unmatchedRoute, &routes.Route{Name: unmatchedRoute, To: f.Monolith}, t, mono, had)
	var gone []string
	for label := range had {
		gone = append(gone, label)
	}
	return t, gone, nil
}

// createdSeries returns the series that t's routes created, by label; nil
// for no table.
func (t *table) createdSeries() map[string]*routeSeries {
	if t == nil {
		return nil
	}
	had := map[string]*routeSeries{}
	add := func(s *routeSeries) {
		if s != nil && s.created() {
			had[s.label] = s
		}
	}
	for i := range t.routes {
		if rt := &t.routes[i]; rt.series == &rt.own {
			add(rt.series)
		}
	}
	for _, s := range t.groups {
		add(s)
	}
	add(t.unmatched.series)
	return had
}

// seriesFor returns the series of a route with the given label ("" for
// none), taking over those of had that exist and removing them from had.
func (t *table) seriesFor(rt *liveRoute, label string, group bool, had map[string]*routeSeries) *routeSeries {
	if label == "" {
		return nil
	}
	s := &rt.own
	if group {
		if s = t.groups[label]; s != nil {
			return s
		}
		if t.groups == nil {
			t.groups = map[string]*routeSeries{}
		}
		s = &routeSeries{}
		t.groups[label] = s
	}
	s.label = label
	if old := had[label]; old != nil {
		s.takeOver(old)
		delete(had, label)
	}
	return s
}

func (g *Gateway) initRoute(rt *liveRoute, name string, rc *routes.Route, t *table, mono *upstream, had map[string]*routeSeries) {
	rt.name, rt.cfg, rt.policy = name, rc, rc.Policy()
	rt.fallback, rt.fallbackUnsafe = !rc.Fallback.Disabled, rc.Fallback.NonIdempotent
	if a := rc.Auth; a != nil && a.Header != "" {
		if h := textproto.CanonicalMIMEHeaderKey(a.Header); h != "Authorization" {
			rt.authHeader = h
		}
	}
	if o := rc.Override; o != nil && o.Header != "" {
		rt.overrideHeader = textproto.CanonicalMIMEHeaderKey(o.Header)
	}
	rt.series = t.seriesFor(rt, rc.MetricsLabel(), rc.MetricsGroup != "" && rc.Metrics != "off", had)
	if rc.To != "" && rc.Rewrite == nil {
		// The common route: all to one upstream, nothing to rewrite.
		p := t.plain[rc.To]
		rt.targets, rt.bounds = p.only, wholeRange
		if p.tg.up == mono {
			rt.monolith = &p.tg
		} else {
			rt.monolith = &t.plain[mono.name].tg
		}
		return
	}
	// New upstreams first (in file order), the monolith last: see buckets.
	order := rc.Targets()
	rt.targets = make([]*target, 0, len(order))
	rt.bounds = make([]int, 0, len(order))
	end, monoWeight := 0, -1
	weight := func(n string) int {
		if rc.To != "" {
			return 100
		}
		for _, s := range rc.Split {
			if s.To == n {
				return s.Weight
			}
		}
		return 0
	}
	for _, n := range order {
		if n == mono.name {
			monoWeight = weight(n)
			continue
		}
		end += weight(n) * (buckets / 100)
		rt.targets = append(rt.targets, t.targetFor(rc, t.upstreams[n]))
		rt.bounds = append(rt.bounds, end)
	}
	rt.monolith = t.targetFor(rc, mono)
	if monoWeight >= 0 {
		end += monoWeight * (buckets / 100)
		rt.targets = append(rt.targets, rt.monolith)
		rt.bounds = append(rt.bounds, end)
	}
}

// targetFor returns route rc's target for up: the shared one unless the
// route rewrites what goes to up.
func (t *table) targetFor(rc *routes.Route, up *upstream) *target {
	if rw := rc.Rewrite; rw == nil || (up.monolith && !rw.Monolith) {
		return &t.plain[up.name].tg
	}
	tg := &target{}
	initTarget(tg, up, rc.Rewrite)
	return tg
}

// initTarget sets tg up for up with the route's rewrite rw (nil for none).
func initTarget(tg *target, up *upstream, rw *routes.Rewrite) {
	tg.up = up
	if rw != nil {
		tg.path = pathRewrite{strip: rw.StripPrefix, add: rw.AddPrefix}
		tg.rewriteResponses = rw.ResponsesRewritten()
		tg.cookieDomain = rw.CookieDomain
	} else if !up.monolith {
		// New upstreams get their internal host names mapped back by default.
		tg.rewriteResponses = true
	}
	tg.base = up.url.EscapedPath()
	tg.needsPath = !tg.path.empty() || (tg.base != "" && tg.base != "/")
}
