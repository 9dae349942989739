package strangler

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/routes"
	"github.com/prometheus/client_golang/prometheus"
)

const seriesRules = baseRules + `  - {name: used, match: {prefix: /anything/used}, to: orders}
  - {name: idle, match: {prefix: /anything/idle}, to: orders}
  - {name: quiet, match: {prefix: /anything/quiet}, to: orders, metrics: off}
  - {name: shop-a, match: {prefix: /anything/shop-a}, to: orders, metrics_group: shop}
  - {name: shop-b, match: {prefix: /anything/shop-b}, to: legacy, metrics_group: shop}
`

// seriesCount counts the series of the metric name whose labels include
// labels.
func seriesCount(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			n++
		}
	}
	return n
}

func (fx *fixture) get(t testing.TB, path string) {
	t.Helper()
	if resp, _ := fx.do(t, "GET", path, nil); resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

// A route has no series until its first request; metrics: off gives it
// none at all, and the routes of a metrics group share the group's.
func TestSeriesAreCreatedByTheFirstRequest(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, seriesRules)
	if n := seriesCount(t, fx.reg, "ficus_requests_total", nil); n != 0 {
		t.Fatalf("%d request series before any request, want 0", n)
	}
	for _, p := range []string{"/anything/used", "/anything/used", "/anything/quiet", "/anything/shop-a", "/anything/shop-b"} {
		fx.get(t, p)
	}
	tests := []struct {
		labels map[string]string
		series int
		count  float64
	}{
		{map[string]string{"route": "used"}, 6, 2},
		{map[string]string{"route": "used", "side": "legacy"}, 0, 0},
		{map[string]string{"route": "idle"}, 0, 0},
		{map[string]string{"route": "quiet"}, 0, 0},
		{map[string]string{"route": "shop-a"}, 0, 0},
		{map[string]string{"route": "group:shop", "side": "new"}, 6, 1},
		{map[string]string{"route": "group:shop", "side": "legacy"}, 6, 1},
	}
	for _, tt := range tests {
		if n := seriesCount(t, fx.reg, "ficus_requests_total", tt.labels); n != tt.series {
			t.Errorf("%v: %d series, want %d", tt.labels, n, tt.series)
		}
		if v := counterValue(t, fx.reg, "ficus_requests_total", tt.labels); v != tt.count {
			t.Errorf("%v: counted %v, want %v", tt.labels, v, tt.count)
		}
	}
	if n := seriesCount(t, fx.reg, "ficus_request_duration_seconds", map[string]string{"route": "used"}); n != 1 {
		t.Errorf("duration series of used: %d, want 1", n)
	}
}

// A reload keeps the series a route created while it keeps its label (the
// counts go on), and deletes those of labels that left: a removed route,
// a route whose metrics went off, an emptied group.
func TestReloadKeepsAndDeletesSeries(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, seriesRules)
	for _, p := range []string{"/anything/used", "/anything/idle", "/anything/shop-a"} {
		fx.get(t, p)
	}
	kept := fx.gw.table.Load().routes[0].series.side[1].Load()
	fx.load(t, baseRules+`  - {name: used, match: {prefix: /anything/used}, to: orders}
  - {name: idle, match: {prefix: /anything/idle}, to: orders, metrics: off}
  - {name: shop-a, match: {prefix: /anything/shop-a}, to: orders}
`)
	if got := fx.gw.table.Load().routes[0].series.side[1].Load(); got != kept {
		t.Error("route used looked its series up again")
	}
	for route, want := range map[string]int{"used": 6, "idle": 0, "group:shop": 0, "shop-a": 0} {
		if n := seriesCount(t, fx.reg, "ficus_requests_total", map[string]string{"route": route}); n != want {
			t.Errorf("route %s: %d series after the reload, want %d", route, n, want)
		}
	}
	fx.get(t, "/anything/used")
	if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": "used"}); v != 2 {
		t.Errorf("used counted %v across the reload, want 2", v)
	}
	fx.load(t, baseRules)
	if n := seriesCount(t, fx.reg, "ficus_requests_total", map[string]string{"route": "used"}); n != 0 {
		t.Errorf("removed route keeps %d series", n)
	}
	if n := seriesCount(t, fx.reg, "ficus_request_duration_seconds", map[string]string{"route": "used"}); n != 0 {
		t.Errorf("removed route keeps %d duration series", n)
	}
}

// Racing first requests of one route end with one set of series, and
// every request counted.
func TestFirstRequestsRaceForTheSeries(t *testing.T) {
	t.Parallel()
	m := newMetrics(prometheus.NewRegistry())
	s := &routeSeries{label: "r"}
	const n = 16
	got := make([]*sideMetrics, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i] = s.get(m, 1)
			got[i].codes[2].Inc()
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatal("racing requests got different series")
		}
	}
	if v := counterValue(t, prometheusRegistryOf(t, m), "ficus_requests_total", map[string]string{"route": "r", "code": "2xx"}); v != n {
		t.Fatalf("counted %v, want %d", v, n)
	}
}

// prometheusRegistryOf registers m's request counter alone.
func prometheusRegistryOf(t testing.TB, m *Metrics) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.requests); err != nil {
		t.Fatal(err)
	}
	return reg
}

// Routes without a rewrite share their upstream's target; a route with a
// rewrite has its own.
func TestPlainRoutesShareTheirUpstreamsTarget(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, seriesRules+`  - {name: moved, match: {prefix: /anything/moved}, to: orders, rewrite: {strip_prefix: /anything}}
`)
	tb := fx.gw.table.Load()
	used, idle, moved := &tb.routes[0], &tb.routes[1], &tb.routes[5]
	if used.targets[0] != idle.targets[0] || used.monolith != idle.monolith {
		t.Error("two plain routes to one upstream have targets of their own")
	}
	if moved.targets[0] == used.targets[0] {
		t.Error("a rewriting route shares the plain target")
	}
	if resp, body := fx.do(t, "GET", "/anything/moved/x", nil); resp.StatusCode != 200 || decodeSeen(t, body).Path != "/moved/x" {
		t.Fatalf("rewritten route: %d %s", resp.StatusCode, body)
	}
}

// Every load reports its build time and allocations, in a log line and
// in metrics. (The runtime counts allocations a span at a time: a rule
// set of some size makes them visible.)
func TestLoadReportsBuildTimeAndMemory(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	reg := prometheus.NewRegistry()
	gw, err := New(Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\nroutes:\n")
	for i := range 2000 {
		fmt.Fprintf(&sb, "  - {name: r%d, match: {prefix: /r%d}, to: legacy, rewrite: {strip_prefix: /r%d, monolith: true}}\n", i, i, i)
	}
	f, err := routes.Parse("r.yaml", []byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ficus_routes_build_seconds", "ficus_routes_build_bytes"} {
		if v := counterValue(t, reg, name, nil); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if l := logs.String(); !strings.Contains(l, "route table built") || !strings.Contains(l, "routes=2000") || !strings.Contains(l, "alloc_bytes=") || !strings.Contains(l, "build_ms=") {
		t.Fatalf("no build log line: %s", l)
	}
}

// Fallbacks are counted under the route's label: its group's, or not at
// all when its metrics are off (the request is still served).
func TestFallbacksCountUnderTheSeriesLabel(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`  - {name: down-a, match: {prefix: /anything/down-a}, to: down, metrics_group: down}
  - {name: down-b, match: {prefix: /anything/down-b}, to: down, metrics: off}
`)
	fx.get(t, "/anything/down-a")
	fx.get(t, "/anything/down-b")
	if v := counterValue(t, fx.reg, "ficus_fallbacks_total", map[string]string{"route": "group:down", "upstream": "down"}); v != 1 {
		t.Errorf("group fallbacks = %v, want 1", v)
	}
	if n := seriesCount(t, fx.reg, "ficus_fallbacks_total", nil); n != 1 {
		t.Errorf("%d fallback series, want the group's alone", n)
	}
	if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": "group:down", "side": "legacy", "code": "2xx"}); v != 1 {
		t.Errorf("group requests on the monolith = %v, want 1", v)
	}
}
