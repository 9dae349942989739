package strangler

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func served(t testing.TB, resp *http.Response, b []byte) string {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), `"service":"orders"`) {
		return "orders"
	}
	if strings.Contains(string(b), `"service":"payments"`) {
		return "payments"
	}
	return "legacy"
}

const splitRules = baseRules + `  - name: checkout
    match: {prefix: /anything/checkout}
    split:
      - {to: legacy, weight: 70}
      - {to: orders, weight: 30}
    sticky: {header: X-User-Id}
    override: {header: X-Migration-Target, cookie: migration_target}
  - name: cart
    match: {prefix: /anything/cart}
    split:
      - {to: orders, weight: 25}
      - {to: legacy, weight: 75}
    sticky: {cookie: ficus_cohort}
`

func TestSplitDistributionOverCohorts(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, splitRules)
	const n = 10000
	var toNew, failed atomic.Int64
	var wg sync.WaitGroup
	ids := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				req, _ := http.NewRequest("GET", fx.srv.URL+"/anything/checkout/x", nil)
				req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i))
				resp, err := noRedirect.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode != 200:
					failed.Add(1)
				case strings.Contains(string(b), `"service":"orders"`):
					toNew.Add(1)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	pct := float64(toNew.Load()) * 100 / n
	if pct < 28 || pct > 32 {
		t.Fatalf("%.2f%% of %d cohorts went to the new service, want 30 ± 2", pct, n)
	}
	t.Logf("%.2f%% to the new service", pct)
}

func TestStickyCohorts(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, splitRules)
	t.Run("cookie set when absent and honoured", func(t *testing.T) {
		sides := map[string]int{}
		for i := 0; i < 60; i++ {
			resp, b := fx.do(t, "GET", "/anything/cart", nil)
			var cohort *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "ficus_cohort" {
					cohort = c
				}
			}
			if cohort == nil || !cohort.HttpOnly || cohort.MaxAge <= 0 || cohort.Path != "/" {
				t.Fatalf("cohort cookie = %+v", cohort)
			}
			first := served(t, resp, b)
			sides[first]++
			for j := 0; j < 5; j++ {
				resp, b := fx.do(t, "GET", "/anything/cart/items", nil, "Cookie", "ficus_cohort="+cohort.Value)
				if got := served(t, resp, b); got != first {
					t.Fatalf("cohort %s flipped from %s to %s", cohort.Value, first, got)
				}
				if len(resp.Cookies()) != 0 {
					t.Fatalf("cookie set again for a known cohort")
				}
			}
		}
		if sides["orders"] == 0 || sides["legacy"] == 0 {
			t.Fatalf("60 new visitors all on one side: %v", sides)
		}
	})
	t.Run("header cohort stable", func(t *testing.T) {
		for i := 0; i < 30; i++ {
			id := fmt.Sprintf("customer-%d", i)
			resp, b := fx.do(t, "GET", "/anything/checkout", nil, "X-User-Id", id)
			first := served(t, resp, b)
			for j := 0; j < 3; j++ {
				if got := fx.side(t, "/anything/checkout/pay", "X-User-Id", id); got != first {
					t.Fatalf("%s flipped", id)
				}
			}
		}
	})
	t.Run("raising the percent only moves monolith cohorts", func(t *testing.T) {
		before := map[string]string{}
		for i := 0; i < 300; i++ {
			id := fmt.Sprintf("u%d", i)
			before[id] = fx.side(t, "/anything/checkout", "X-User-Id", id)
		}
		fx.load(t, strings.Replace(splitRules, "{to: legacy, weight: 70}\n      - {to: orders, weight: 30}", "{to: legacy, weight: 40}\n      - {to: orders, weight: 60}", 1))
		for id, was := range before {
			if now := fx.side(t, "/anything/checkout", "X-User-Id", id); was == "orders" && now != "orders" {
				t.Fatalf("%s moved back from the new service to %s when its share grew", id, now)
			}
		}
	})
}

// side GETs path and says which side served it.
func (fx *fixture) side(t testing.TB, path string, hdr ...string) string {
	t.Helper()
	resp, b := fx.do(t, "GET", path, nil, hdr...)
	return served(t, resp, b)
}

func TestTesterOverrides(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, splitRules)
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("tester-%d", i)
		if got := fx.side(t, "/anything/checkout", "X-User-Id", id, "X-Migration-Target", "orders"); got != "orders" {
			t.Fatalf("header override to orders served by %s", got)
		}
		if got := fx.side(t, "/anything/checkout", "X-User-Id", id, "Cookie", "migration_target=legacy"); got != "legacy" {
			t.Fatalf("cookie override to legacy served by %s", got)
		}
	}
	// An override naming something else is ignored; the override header
	// itself never reaches the upstream.
	_, b := fx.do(t, "GET", "/anything/checkout", nil, "X-User-Id", "x", "X-Migration-Target", "orders")
	if s := decodeSeen(t, b); s.Header.Get("X-Migration-Target") != "" {
		t.Error("override header forwarded")
	}
	if got := fx.side(t, "/anything/checkout", "X-Migration-Target", "payments", "X-User-Id", "user-1"); got == "payments" {
		t.Error("override to an upstream outside the route was honoured")
	}
	// Routes without overrides ignore them.
	resp, b := fx.do(t, "GET", "/anything/cart", nil, "X-Migration-Target", "orders", "Cookie", "ficus_cohort=fixed-cohort")
	first := served(t, resp, b)
	for i := 0; i < 5; i++ {
		if got := fx.side(t, "/anything/cart", "X-Migration-Target", "legacy", "Cookie", "ficus_cohort=fixed-cohort"); got != first {
			t.Fatal("override honoured on a route that does not enable it")
		}
	}
}

const fallbackRules = baseRules + `  - {name: down-get, match: {prefix: /down}, to: down}
  - {name: down-post, match: {prefix: /anything/unsafe}, to: down}
  - {name: down-post-ok, match: {prefix: /anything/safe}, to: down, fallback: {non_idempotent: true}}
  - {name: down-nofallback, match: {prefix: /strict}, to: down, fallback: {disabled: true}}
  - {name: flaky, match: {prefix: /anything/flaky}, to: orders}
`

func TestFallbackToMonolith(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, fallbackRules)
	t.Run("connection refused, idempotent", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/down/../get?x=1", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"url"`) {
			t.Fatalf("GET to a dead upstream: %d %s", resp.StatusCode, b)
		}
		if v := counterValue(t, fx.reg, "ficus_fallbacks_total", map[string]string{"route": "down-get"}); v != 0 {
			t.Fatalf("normalised path matched the wrong route")
		}
		resp, _ = fx.do(t, "GET", "/down/status/204", nil)
		if resp.StatusCode != 404 && resp.StatusCode != 204 {
			t.Fatalf("fallback status %d", resp.StatusCode)
		}
		if v := counterValue(t, fx.reg, "ficus_fallbacks_total", map[string]string{"route": "down-get", "upstream": "down"}); v != 1 {
			t.Fatalf("ficus_fallbacks_total = %v, want 1", v)
		}
		if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": "down-get", "side": "legacy"}); v < 1 {
			t.Fatalf("fallback not counted on the legacy side")
		}
	})
	t.Run("non-idempotent without permission", func(t *testing.T) {
		resp, _ := fx.do(t, "POST", "/anything/unsafe", strings.NewReader("a=1"))
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("POST fell back without permission: %d", resp.StatusCode)
		}
	})
	t.Run("non-idempotent with permission keeps its body", func(t *testing.T) {
		resp, b := fx.do(t, "POST", "/anything/safe", strings.NewReader("payload=keep-me"), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != 200 || !strings.Contains(string(b), "keep-me") {
			t.Fatalf("POST fallback: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("fallback disabled", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/strict", nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	})
	t.Run("breaker opens, then requests go to the monolith", func(t *testing.T) {
		// orders answers 503 three times: the breaker (failures: 3) opens.
		for i := 0; i < 3; i++ {
			resp, b := fx.do(t, "GET", "/anything/flaky?status=503", nil)
			if resp.StatusCode != 503 || !strings.Contains(string(b), `"service":"orders"`) {
				t.Fatalf("before opening: %d %s", resp.StatusCode, b)
			}
		}
		if v := counterValue(t, fx.reg, "ficus_upstream_breaker_state", map[string]string{"upstream": "orders"}); v != 2 {
			t.Fatalf("breaker state = %v, want 2 (open)", v)
		}
		resp, b := fx.do(t, "GET", "/anything/flaky", nil)
		if resp.StatusCode != 200 || strings.Contains(string(b), `"service":"orders"`) {
			t.Fatalf("with the breaker open: %d %s", resp.StatusCode, b)
		}
		resp, _ = fx.do(t, "POST", "/anything/flaky", strings.NewReader("x"))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("POST with the breaker open and no permission: %d, want 503", resp.StatusCode)
		}
	})
}

func TestNoRulesAnswers503(t *testing.T) {
	t.Parallel()
	gw, _ := New(Options{})
	rec := &respRecorder{h: http.Header{}}
	gw.ServeHTTP(rec, mustRequest(t, "GET", "http://x/"))
	if rec.code != 503 || gw.Ready() {
		t.Fatalf("code %d ready %v", rec.code, gw.Ready())
	}
}

type respRecorder struct {
	h    http.Header
	code int
}

func (r *respRecorder) Header() http.Header         { return r.h }
func (r *respRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *respRecorder) WriteHeader(c int)           { r.code = c }

func mustRequest(t testing.TB, method, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:1234"
	return r
}

var _ = time.Second
