package strangler

import (
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
	// Route is the route's name; "(unmatched)" for requests that matched
	// no route (they go to the monolith).
	Route string
	// Legacy is what the monolith served, New what new upstreams served
	// (zero for a route without a new upstream).
	Legacy, New SideTraffic
}

// Traffic returns the live rule set's routes (in file order, then the
// unmatched requests) with what each side served, read from the
// gateway's counters; nil before the first Load. Counters live as long as
// their route: a reload keeps them, a route that leaves the rules loses
// them.
func (g *Gateway) Traffic() []RouteTraffic {
	t := g.table.Load()
	if t == nil {
		return nil
	}
	out := make([]RouteTraffic, 0, len(t.routes)+1)
	for _, rt := range append(t.routes[:len(t.routes):len(t.routes)], t.unmatched) {
		out = append(out, RouteTraffic{Route: rt.name, Legacy: rt.metrics[0].traffic(), New: rt.metrics[1].traffic()})
	}
	return out
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
