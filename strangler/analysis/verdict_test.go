package analysis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/analysis"
	"github.com/ficus-gw/ficus/strangler/health"
)

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// parity is a fixed shadow parity score.
type parity float64

func (p parity) RouteParity(string) (float64, bool) { return float64(p), true }

// ruleFile is a rule file whose route orders sends weight% to orders,
// with the analysis rule given (YAML flow mapping).
func ruleFile(t *testing.T, weight int, rule string) *routes.File {
	t.Helper()
	f, err := routes.Parse("rules.yaml", []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
routes:
  - name: orders
    match: {prefix: /orders}
    split: [{to: orders, weight: %d}, {to: legacy, weight: %d}]
    analysis: %s
`, weight, 100-weight, rule)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// record puts n requests on a side of the window, each answered status
// after d, spread over the second after at.
func record(w *health.Route, newSide bool, n, status int, d time.Duration, at time.Time) {
	for i := range n {
		w.Record(newSide, status, d, at.Add(time.Duration(i)*time.Second/time.Duration(n)))
	}
}

// Issue 12: the verdicts on one instance, judged on injected latencies
// and statuses with an injected clock (no store: judge and log only).
func TestVerdicts(t *testing.T) {
	t.Parallel()
	const rule = "{window: 1m, min_requests: 20, max_error_percent: 10, max_p99_ratio: 2, steps: [10, 50, 100], hold_before: [100], interval: 30s, parity_min: 0.9}"
	tests := []struct {
		name    string
		weight  int
		parity  parity
		feed    func(w *health.Route, at time.Time)
		verdict string
		reason  string
	}{
		{"no traffic at 0%", 0, 1, func(*health.Route, time.Time) {}, analysis.VerdictIdle, "orders gets 0%"},
		{"too few requests", 10, 1, func(w *health.Route, at time.Time) { record(w, true, 19, 500, time.Millisecond, at) },
			analysis.VerdictInsufficient, "served 19 of the 20 requests"},
		{"5xx above the limit", 10, 1, func(w *health.Route, at time.Time) {
			record(w, true, 17, 200, time.Millisecond, at)
			record(w, true, 3, 503, time.Millisecond, at)
		}, analysis.VerdictFail, "answered 15.0% 5xx, above 10%"},
		{"4xx are no errors", 10, 1, func(w *health.Route, at time.Time) {
			record(w, true, 10, 200, time.Millisecond, at)
			record(w, true, 10, 404, time.Millisecond, at)
		}, analysis.VerdictPass, "answered 0.0% 5xx"},
		{"slow against the monolith", 10, 1, func(w *health.Route, at time.Time) {
			record(w, true, 20, 200, 50*time.Millisecond, at)
			record(w, false, 20, 200, 10*time.Millisecond, at)
		}, analysis.VerdictFail, "is above 2 × the monolith's"},
		{"as fast as the monolith", 10, 1, func(w *health.Route, at time.Time) {
			record(w, true, 20, 200, 15*time.Millisecond, at)
			record(w, false, 20, 200, 10*time.Millisecond, at)
		}, analysis.VerdictPass, "next step 50% in"},
		{"slow but the monolith served too few", 10, 1, func(w *health.Route, at time.Time) {
			record(w, true, 20, 200, 50*time.Millisecond, at)
			record(w, false, 3, 200, 10*time.Millisecond, at)
		}, analysis.VerdictPass, "the monolith served too few to compare"},
		{"low parity holds", 10, 0.5, func(w *health.Route, at time.Time) { record(w, true, 20, 200, time.Millisecond, at) },
			analysis.VerdictHold, "shadow parity 0.500 is below 0.9"},
		{"a person's gate holds", 50, 1, func(w *health.Route, at time.Time) { record(w, true, 20, 200, time.Millisecond, at) },
			analysis.VerdictHold, "waiting for a person before 100% (ficus routes resume orders"},
		{"the last step passes", 100, 1, func(w *health.Route, at time.Time) { record(w, true, 20, 200, time.Millisecond, at) },
			analysis.VerdictPass, "answered 0.0% 5xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := ruleFile(t, tt.weight, rule)
			set := health.NewSet()
			w := set.Route("orders", time.Minute)
			c := &clock{now: t0}
			e, err := analysis.New(analysis.Options{Rules: func() *routes.File { return f }, Health: set, Now: c.Now, Parity: tt.parity})
			if err != nil {
				t.Fatal(err)
			}
			// The first evaluation starts what counts; the requests come after.
			if err := e.Evaluate(context.Background()); err != nil {
				t.Fatal(err)
			}
			tt.feed(w, t0.Add(10*time.Second))
			c.now = t0.Add(20 * time.Second)
			if err := e.Evaluate(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := e.AnalysisStatus()
			if len(st) != 1 {
				t.Fatalf("status: %+v", st)
			}
			if st[0].Verdict != tt.verdict || !strings.Contains(st[0].Reason, tt.reason) {
				t.Fatalf("verdict %s (%s), want %s (%s)", st[0].Verdict, st[0].Reason, tt.verdict, tt.reason)
			}
			if st[0].Weight != tt.weight || st[0].Target != "orders" || !st[0].Since.Equal(t0) {
				t.Fatalf("status: %+v", st[0])
			}
		})
	}
}

// Requests served before the weight changed do not count after it.
func TestVerdictCountsOnlySinceTheWeightChanged(t *testing.T) {
	t.Parallel()
	const rule = "{window: 1m, min_requests: 20}"
	f := ruleFile(t, 10, rule)
	set := health.NewSet()
	w := set.Route("orders", time.Minute)
	c := &clock{now: t0}
	e, err := analysis.New(analysis.Options{Rules: func() *routes.File { return f }, Health: set, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Evaluate(context.Background())
	record(w, true, 30, 500, time.Millisecond, t0.Add(10*time.Second))
	c.now = t0.Add(20 * time.Second)
	_ = e.Evaluate(context.Background())
	if v := e.AnalysisStatus()[0].Verdict; v != analysis.VerdictFail {
		t.Fatalf("verdict %s", v)
	}
	// A person sets 20%: the failures at 10% are behind it.
	f = ruleFile(t, 20, rule)
	c.now = t0.Add(25 * time.Second)
	_ = e.Evaluate(context.Background())
	st := e.AnalysisStatus()[0]
	if st.Verdict != analysis.VerdictInsufficient || st.Weight != 20 || !st.Since.Equal(c.now) || st.Step != 0 {
		t.Fatalf("after the change: %+v", st)
	}
}
