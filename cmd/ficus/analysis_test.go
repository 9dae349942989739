package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

// withAnalysis is the rule file at p with rule as the analysis of its
// last route (orders).
func withAnalysis(t *testing.T, p, rule string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "    analysis: " + rule + "\n"
}

// Issue 12: resume and abort on the admin API, and this instance's
// verdicts and windows on GET /admin/routes/analysis.
func TestAdminResumeAbortAnalysis(t *testing.T) {
	t.Parallel()
	s := newAdminSetup(t, "")
	v1 := withAnalysis(t, s.rules(t, "v1.yaml", 10), "{steps: [10, 50, 100], hold_before: [50]}")
	if code, body := s.call(t, "POST", "/admin/routes/revisions?reason=start", "release-bot", v1); code != 201 {
		t.Fatalf("apply: %d %s", code, body)
	}
	for i, tc := range []struct {
		client, path, body string
		want               int
		wantBody           string
	}{
		{"dashboard", "/admin/routes/resume", `{"route": "orders", "reason": "go"}`, 403, ""},
		{"release-bot", "/admin/routes/resume", `{"reason": "go"}`, 400, "route is required"},
		{"release-bot", "/admin/routes/resume", `{"route": "orders"}`, 400, "a reason is required"},
		{"release-bot", "/admin/routes/resume?dry_run=1", `{"route": "orders"}`, 200, `"dry_run":true`},
		{"release-bot", "/admin/routes/resume", `{"route": "orders", "reason": "numbers are fine"}`, 201,
			`"action":"resume","detail":"resume orders: orders 10% -\u003e 50%"`},
		{"release-bot", "/admin/routes/resume", `{"route": "orders", "reason": "again"}`, 409, "ficus takes that step by itself"},
		{"release-bot", "/admin/routes/abort", `{"route": "orders", "reason": "stop"}`, 201, `"action":"abort","detail":"abort orders"`},
		{"release-bot", "/admin/routes/abort", `{"route": "orders", "reason": "stop"}`, 200, "already says so"},
		{"release-bot", "/admin/routes/resume", `{"route": "orders", "reason": "go"}`, 409, "ficus routes state orders canary --percent 10"},
		{"release-bot", "/admin/routes/abort", `{"route": "nope", "reason": "x"}`, 422, `no route \"nope\"`},
	} {
		if code, body := s.call(t, "POST", tc.path, tc.client, tc.body); code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%d %s %s: %d %s, want %d with %s", i, tc.path, tc.body, code, body, tc.want, tc.wantBody)
		}
	}
	waittest.For(t, "the instance to judge route orders at 0%", func() bool {
		code, body := s.call(t, "GET", "/admin/routes/analysis", "dashboard", "")
		return code == 200 && strings.Contains(body, `"route":"orders","target":"orders","verdict":"idle"`) &&
			strings.Contains(body, `"health":[{"route":"orders","window":60000000000,`)
	})
}

// Issue 12: three ficus instances on one PostgreSQL in front of a new
// service that answers well, then starts failing: the instances' analysis
// rolls the route back with exactly one revision, written by
// ficus-analysis, and every instance follows it to the monolith.
func TestAutomaticRollbackAcrossInstances(t *testing.T) {
	t.Parallel()
	s := newStoreSetup(t, "1h")
	var failing atomic.Bool
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "orders")
	}))
	t.Cleanup(svc.Close)
	s.orders = svc.URL
	rules := filepath.Join(s.dir, "canary.yaml")
	os.WriteFile(rules, []byte(withAnalysis(t, s.rules(t, "v1.yaml", 50), "{window: 30s, min_requests: 20, max_error_percent: 20}")+
		"    override: {header: X-Side}\n"), 0o600)
	s.cli(t, "routes", "apply", rules, "--reason", "canary at 50%", "--yes")
	var fronts []string
	for range 3 {
		front, _, _ := testServer(t, s.cfgText)
		fronts = append(fronts, front)
	}
	s.waitListening(t, 3)
	hit := func(front string, n int) {
		for range n {
			req, _ := http.NewRequest("GET", front+"/api/orders/1", nil)
			req.Header.Set("X-Side", "orders")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// Healthy: 30 answers per instance.
	for _, f := range fronts {
		hit(f, 30)
	}
	// Failing: every instance sees far more than 20% 5xx once it has
	// served enough failures; it rolls back within its next evaluations.
	failing.Store(true)
	for _, f := range fronts {
		hit(f, 40)
	}
	waittest.For(t, "the rollback revision", func() bool { return strings.Contains(s.cli(t, "routes", "history"), "analysis rollback") })
	for range 5 {
		allServe(t, fronts, "legacy", "the automatic rollback")
	}
	hist := s.cli(t, "routes", "history")
	if n := strings.Count(hist, "analysis rollback orders: orders 50% -> 0%"); n != 1 || !strings.Contains(hist, "ficus-analysis@") ||
		!strings.Contains(hist, "canary analysis: rollback: orders answered") {
		t.Fatalf("%d rollbacks in the history:\n%s", n, hist)
	}
	// More failures change nothing: the route is at 0% (idle).
	for _, f := range fronts {
		hit(f, 10)
	}
	for _, f := range fronts {
		if _, body := get(t, f+"/api/orders/1"); body != "legacy" {
			t.Fatalf("after the rollback: %s", body)
		}
	}
	if out := s.cli(t, "routes", "history"); strings.Count(out, "\n") != 3 {
		t.Fatalf("more revisions:\n%s", out)
	}
}
