package strangler

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sony/gobreaker/v2"
)

// SideTraffic counts the requests one side of a route served since the
// process started (the ficus_requests_total series).
type SideTraffic struct {
	// Requests is every answered or aborted request.
	Requests uint64
	// Errors is the 5xx answers among them.
	Errors uint64
}

// RouteTraffic is one route's traffic by side.
type RouteTraffic struct {
	// Route is the route's name; a metrics group's label ("group:NAME")
	// for the traffic of its routes; "(unmatched)" for requests that
	// matched no route (they go to the monolith).
	Route string
	// Legacy is what the monolith served, New what new upstreams served
	// (zero for a route without a new upstream).
	Legacy, New SideTraffic
}

// Traffic returns the live rule set's routes (in file order), then its
// metrics groups (by label, "group:NAME", sorted), then the unmatched
// requests, with what each side served, read from the gateway's counters;
// nil before the first Load. Counters live as long as their label: a
// reload keeps them, a label that leaves the rules loses them.
//
// Series are created by a route's first request: a route that has none
// yet reports zeros. A route with metrics: off has no counters and always
// reports zeros. The routes of a metrics group share its counters, which
// cannot be split between them: each of them reports zeros, and the
// group's traffic is reported once, under its label, so that summing the
// entries (the dashboard's overall share) counts every request once.
func (g *Gateway) Traffic() []RouteTraffic {
	t := g.table.Load()
	if t == nil {
		return nil
	}
	out := make([]RouteTraffic, 0, len(t.routes)+len(t.groups)+1)
	for i := range t.routes {
		rt := &t.routes[i]
		rtf := RouteTraffic{Route: rt.name}
		if rt.series == &rt.own {
			rtf.Legacy, rtf.New = rt.own.traffic()
		}
		out = append(out, rtf)
	}
	for _, label := range slices.Sorted(maps.Keys(t.groups)) {
		rtf := RouteTraffic{Route: label}
		rtf.Legacy, rtf.New = t.groups[label].traffic()
		out = append(out, rtf)
	}
	rtf := RouteTraffic{Route: t.unmatched.name}
	if s := t.unmatched.series; s != nil {
		rtf.Legacy, rtf.New = s.traffic()
	}
	return append(out, rtf)
}

// traffic reads the counters of both sides; a side without series served
// nothing. It creates none.
func (s *routeSeries) traffic() (legacy, next SideTraffic) {
	return s.side[0].Load().traffic(), s.side[1].Load().traffic()
}

// traffic reads a side's counters; a nil side served nothing.
func (sm *sideMetrics) traffic() SideTraffic {
	var s SideTraffic
	if sm == nil {
		return s
	}
	for i, c := range sm.codes {
		n := readCounter(c)
		s.Requests += n
		if i == 5 {
			s.Errors += n
		}
	}
	return s
}

func readCounter(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return uint64(m.Counter.GetValue())
}

// Breaker states as Breakers reports them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
	// BreakerNone is an upstream without a breaker (the monolith unless
	// the rule file gives it one).
	BreakerNone = "none"
)

// Breakers returns the state of each upstream's circuit breaker in the
// live rule set (BreakerClosed, BreakerHalfOpen, BreakerOpen or
// BreakerNone), by upstream name; nil before the first Load.
func (g *Gateway) Breakers() map[string]string {
	t := g.table.Load()
	if t == nil {
		return nil
	}
	out := make(map[string]string, len(t.upstreams))
	for name, up := range t.upstreams {
		out[name] = breakerName(up.breaker)
	}
	return out
}

func breakerName(b *gobreaker.TwoStepCircuitBreaker[struct{}]) string {
	if b == nil {
		return BreakerNone
	}
	switch b.State() {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}
