package strangler

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Side labels: where a request was served.
const (
	SideLegacy = "legacy"
	SideNew    = "new"
)

// Metrics are the gateway's Prometheus collectors.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inflight      prometheus.Gauge
	breakerState  *prometheus.GaugeVec
	fallbacks     *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	routesLoaded  prometheus.Gauge
	lastReload    prometheus.Gauge
	rejectedPaths prometheus.Counter
	buildSeconds  prometheus.Gauge
	buildBytes    prometheus.Gauge
	rateLimited   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ficus_requests_total", Help: "Requests by route, side (legacy or new) and status class.",
		}, []string{"route", "side", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ficus_request_duration_seconds", Help: "Time to the end of the response, by route and side.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "side"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_inflight_requests", Help: "Requests being served.",
		}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ficus_upstream_breaker_state", Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ficus_fallbacks_total", Help: "Requests sent to the monolith because a new upstream could not take them.",
		}, []string{"route", "upstream"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ficus_route_reloads_total", Help: "Rule set loads by result (ok or error).",
		}, []string{"result"}),
		routesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_routes", Help: "Routes in the live rule set.",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_route_reload_timestamp_seconds", Help: "When the live rule set was loaded.",
		}),
		rejectedPaths: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ficus_rejected_paths_total", Help: "Requests refused with 400 for a path ficus will not normalise.",
		}),
		buildSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_routes_build_seconds", Help: "Time the last rule set took to compile into a route table (from a file or the route store).",
		}),
		buildBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_routes_build_bytes", Help: "Bytes the process allocated while it compiled the last route table.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ficus_rate_limited_total", Help: "Requests refused (429) by a route's rate limit, by route and the key they were counted by (client, address, header, shared); the limits are per instance.",
		}, []string{"route", "by"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.inflight, m.breakerState, m.fallbacks, m.reloads,
			m.routesLoaded, m.lastReload, m.rejectedPaths, m.buildSeconds, m.buildBytes, m.rateLimited)
	}
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// sideMetrics are one route's collectors for one side, resolved once so
// that a request pays no label lookups.
type sideMetrics struct {
	codes    [6]prometheus.Counter // index: status / 100 (0 for aborted)
	duration prometheus.Observer
}

// sides are the side labels by target.side().
var sides = [2]string{SideLegacy, SideNew}

// routeSeries are the series of one route label (a route's name, a
// metrics group's label, "(unmatched)"), per side. A side's series are
// created by its first request, so a rule set of thousands of routes of
// which few see traffic has few series.
type routeSeries struct {
	label string
	side  [2]atomic.Pointer[sideMetrics]
	// fellBack is set by the label's first fallback: its
	// ficus_fallbacks_total series exist (perhaps without a side's).
	fellBack atomic.Bool
}

// fallback counts a fallback from upstream under the label.
func (s *routeSeries) fallback(m *Metrics, upstream string) {
	m.fallbacks.WithLabelValues(s.label, upstream).Inc()
	s.fellBack.Store(true)
}

// get returns the series of side, creating them on first use. Racing
// first requests may both look the series up: the vectors hand both the
// same counters, and one pointer wins.
func (s *routeSeries) get(m *Metrics, side int) *sideMetrics {
	if sm := s.side[side].Load(); sm != nil {
		return sm
	}
	sm := m.forRoute(s.label, sides[side])
	if s.side[side].CompareAndSwap(nil, sm) {
		return sm
	}
	return s.side[side].Load()
}

// created reports whether any side's series exist.
func (s *routeSeries) created() bool {
	return s.side[0].Load() != nil || s.side[1].Load() != nil || s.fellBack.Load()
}

// takeOver starts s with the series old created (a reload).
func (s *routeSeries) takeOver(old *routeSeries) {
	for i := range s.side {
		if sm := old.side[i].Load(); sm != nil {
			s.side[i].Store(sm)
		}
	}
	if old.fellBack.Load() {
		s.fellBack.Store(true)
	}
}

func (m *Metrics) forRoute(route, side string) *sideMetrics {
	sm := &sideMetrics{duration: m.duration.WithLabelValues(route, side)}
	for i, c := range codeLabels {
		sm.codes[i] = m.requests.WithLabelValues(route, side, c)
	}
	return sm
}

// codeLabels are the code label's values, indexed as sideMetrics.codes.
var codeLabels = [6]string{"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"}

// forget drops the series of a route label that left the rule set: those
// forRoute made for either side and its fallbacks from upstreams (the
// previous rule set's), each deleted by its exact labels.
// (DeletePartialMatch scans every series of a vector under its lock: for
// the thousands of routes a large rule set drops, that held Load, and the
// route store's follower, for minutes.)
func (m *Metrics) forget(route string, upstreams []string) {
	for _, side := range sides {
		m.duration.DeleteLabelValues(route, side)
		for _, c := range codeLabels {
			m.requests.DeleteLabelValues(route, side, c)
		}
	}
	for _, up := range upstreams {
		m.fallbacks.DeleteLabelValues(route, up)
	}
}

// forgetLimited drops the ficus_rate_limited_total series of a route
// whose limit left the rule set, each by its exact labels.
func (m *Metrics) forgetLimited(route string) {
	for _, by := range keyKinds {
		m.rateLimited.DeleteLabelValues(route, by)
	}
}

func (m *Metrics) setBreaker(upstream string, s gobreaker.State) {
	v := 0.0
	switch s {
	case gobreaker.StateHalfOpen:
		v = 1
	case gobreaker.StateOpen:
		v = 2
	}
	m.breakerState.WithLabelValues(upstream).Set(v)
}
