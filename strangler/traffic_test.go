package strangler

import "testing"

// Issue 12: the dashboard's traffic and breaker states come from the
// gateway: each route's requests and 5xx answers by side (the unmatched
// ones on the monolith's side), and each upstream's breaker state.
func TestTrafficAndBreakers(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}"}
  orders: {url: "{{.Orders}}"}
  payments: {url: "{{.Dead}}", breaker: {failures: 1, open_for: 1h}}
routes:
  - {name: o, match: {prefix: /o}, to: orders}
  - {name: p, match: {prefix: /p}, to: payments, fallback: {disabled: true}}
  - {name: legacy, match: {prefix: /status}, to: legacy}
`)
	if empty := (&Gateway{}); empty.Traffic() != nil || empty.Breakers() != nil {
		t.Fatal("a gateway without rules reports traffic or breakers")
	}
	for _, rq := range []struct {
		path string
		want int
	}{
		{"/o/1", 200}, {"/o/2?status=503", 503}, {"/o/3", 200},
		{"/status/500", 500}, {"/status/200", 200},
		{"/p/1", 502}, // the dead upstream trips its breaker
		{"/get", 200},
	} {
		if resp, _ := fx.do(t, "GET", rq.path, nil); resp.StatusCode != rq.want {
			t.Fatalf("%s: %d, want %d", rq.path, resp.StatusCode, rq.want)
		}
	}
	want := []RouteTraffic{
		{Route: "o", New: SideTraffic{Requests: 3, Errors: 1}},
		{Route: "p", New: SideTraffic{Requests: 1, Errors: 1}},
		{Route: "legacy", Legacy: SideTraffic{Requests: 2, Errors: 1}},
		{Route: unmatchedRoute, Legacy: SideTraffic{Requests: 1}},
	}
	got := fx.gw.Traffic()
	if len(got) != len(want) {
		t.Fatalf("traffic %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("traffic[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	breakers := fx.gw.Breakers()
	for up, st := range map[string]string{"legacy": BreakerNone, "orders": BreakerClosed, "payments": BreakerOpen} {
		if breakers[up] != st {
			t.Errorf("breaker of %s = %q, want %q (all: %v)", up, breakers[up], st, breakers)
		}
	}
}

// Issue 16 with issue 12: the dashboard's traffic reads the lazy series
// without creating any. A route that served nothing reports zeros, as
// does one with metrics: off (whose health window still counts); the
// routes of a group report zeros each and the group's traffic comes once,
// under its label, before the unmatched requests.
func TestTrafficOfLazyAndGroupedSeries(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, seriesRules)
	for _, p := range []string{"/anything/used", "/anything/quiet", "/anything/shop-a", "/anything/shop-b", "/anything/shop-b"} {
		fx.get(t, p)
	}
	want := []RouteTraffic{
		{Route: "used", New: SideTraffic{Requests: 1}},
		{Route: "idle"},
		{Route: "quiet"},
		{Route: "shop-a"},
		{Route: "shop-b"},
		{Route: "group:shop", Legacy: SideTraffic{Requests: 2}, New: SideTraffic{Requests: 1}},
		{Route: unmatchedRoute},
	}
	got := fx.gw.Traffic()
	if len(got) != len(want) {
		t.Fatalf("traffic %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("traffic[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := seriesCount(t, fx.reg, "ficus_requests_total", map[string]string{"route": "idle"}); n != 0 {
		t.Errorf("reading the traffic created %d series of idle", n)
	}
	found := false
	for _, h := range fx.gw.HealthReport() {
		if h.Route == "quiet" {
			found = true
			if h.New.Requests != 1 {
				t.Errorf("quiet's health window counted %d new-side requests, want 1", h.New.Requests)
			}
		}
	}
	if !found {
		t.Error("quiet has no health window")
	}
}
