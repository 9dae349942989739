package strangler

import (
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/health"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// Issue 12: each route's two sides are counted in its sliding window: the
// new service's 5xx are errors, a client's fault (4xx) is not, a request
// that fell back to the monolith counts as a failure of the new side, and
// the window outlives a reload that keeps it.
func TestHealthWindowsPerSide(t *testing.T) {
	t.Parallel()
	rules := `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}"}
  orders: {url: "{{.Orders}}"}
  dead: {url: "{{.Dead}}"}
routes:
  - name: orders
    match: {prefix: /anything/orders}
    split: [{to: orders, weight: 50}, {to: legacy, weight: 50}]
    override: {header: X-Side}
    analysis: {window: 30s}
  - name: dead
    match: {prefix: /anything/dead}
    to: dead
`
	fx := newTestGateway(t, rules)
	for _, c := range []struct{ side, query string }{
		{"orders", "?status=200"}, {"orders", "?status=200"}, {"orders", "?status=503"}, {"orders", "?status=404"},
		{"legacy", ""}, {"legacy", ""},
	} {
		fx.do(t, "GET", "/anything/orders"+c.query, nil, "X-Side", c.side)
	}
	fx.do(t, "GET", "/anything/dead/x", nil)
	report := func(route string) health.RouteHealth {
		for _, h := range fx.gw.HealthReport() {
			if h.Route == route {
				return h
			}
		}
		t.Fatalf("no health of route %s in %+v", route, fx.gw.HealthReport())
		return health.RouteHealth{}
	}
	// Accounting follows the response: wait for it.
	waittest.For(t, "6 requests of route orders in its window", func() bool {
		h := report("orders")
		return h.New.Requests+h.Legacy.Requests == 6
	})
	h := report("orders")
	if h.Window != 30*time.Second || h.New.Requests != 4 || h.New.ErrorRate != 0.25 || h.Legacy.Requests != 2 || h.Legacy.ErrorRate != 0 {
		t.Fatalf("orders: %+v", h)
	}
	if h.New.P99 <= 0 || h.New.Rate <= 0 {
		t.Fatalf("no latency or rate: %+v", h.New)
	}
	waittest.For(t, "the dead route's fallback and its answer", func() bool {
		d := report("dead")
		return d.New.Requests == 1 && d.Legacy.Requests == 1
	})
	if d := report("dead"); d.New.ErrorRate != 1 || d.Legacy.ErrorRate != 0 || d.Window != health.DefaultWindow {
		t.Fatalf("dead: %+v", d)
	}

	// A reload with the same window keeps the counts; a route that goes
	// leaves the report.
	fx.load(t, rules[:len(rules)-len("  - name: dead\n    match: {prefix: /anything/dead}\n    to: dead\n")])
	if got := fx.gw.HealthReport(); len(got) != 1 || got[0].New.Requests != 4 {
		t.Fatalf("after the reload: %+v", got)
	}
	if fx.gw.Health().Get("orders") == nil {
		t.Fatal("Health().Get")
	}
}
