package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/analysis"
	"github.com/ficus-gw/ficus/strangler/health"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// instance is one ficus instance in a test: a gateway serving the rule
// store's live revision, its follower and its analysis engine.
type instance struct {
	gw     *strangler.Gateway
	front  *httptest.Server
	follow *revisions.Follower
	engine *analysis.Engine
}

// newInstance starts an instance on st; health, if set, replaces the
// gateway's windows in the engine (for injected latencies), now its clock.
func newInstance(t *testing.T, st *revisions.Store, name string, set *health.Set, now func() time.Time) *instance {
	t.Helper()
	gw, err := strangler.New(strangler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := revisions.NewFollower(revisions.FollowerOptions{Store: st, Load: gw.Load, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if set == nil {
		set = gw.Health()
	}
	e, err := analysis.New(analysis.Options{Rules: gw.Rules, Health: set, Store: st, Served: f.Revision, Instance: name, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	t.Cleanup(front.Close)
	return &instance{gw: gw, front: front, follow: f, engine: e}
}

func (in *instance) weight() int { return in.gw.Rules().Routes[0].Weight("orders") }

func (in *instance) verdict(t *testing.T) analysis.RouteStatus {
	t.Helper()
	st := in.engine.AnalysisStatus()
	if len(st) != 1 {
		t.Fatalf("status: %+v", st)
	}
	return st[0]
}

func newStore(t *testing.T) *revisions.Store {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := revisions.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return revisions.New(pool)
}

func storeRules(legacy, orders string, weight int, rule string) string {
	return fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: %q}
  orders: {url: %q}
routes:
  - name: orders
    match: {prefix: /orders}
    split: [{to: orders, weight: %d}, {to: legacy, weight: %d}]
    override: {header: X-Side}
    analysis: %s
`, legacy, orders, weight, 100-weight, rule)
}

func applyText(t *testing.T, st *revisions.Store, text string, parent int64) {
	t.Helper()
	if _, err := st.Apply(context.Background(), revisions.Proposal{Text: text, Parent: parent, Author: "alice", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

// analysisRevisions returns the revisions the analysis wrote.
func analysisRevisions(t *testing.T, st *revisions.Store) []revisions.Revision {
	t.Helper()
	revs, err := st.History(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []revisions.Revision
	for _, r := range revs {
		if r.Action == revisions.ActionAnalysis {
			out = append(out, r)
		}
	}
	return out
}

func upstream(t *testing.T, name string, status *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if status != nil {
			w.WriteHeader(int(status.Load()))
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// send makes n requests to the new side of instance in and waits until its
// window counts them.
func send(t *testing.T, in *instance, n int) {
	t.Helper()
	before := newRequests(in)
	for range n {
		req, _ := http.NewRequest("GET", in.front.URL+"/orders/1", nil)
		req.Header.Set("X-Side", "orders")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waittest.For(t, "the requests in the window", func() bool { return newRequests(in) >= before+uint64(n) })
}

func newRequests(in *instance) uint64 {
	for _, h := range in.gw.HealthReport() {
		if h.Route == "orders" {
			return h.New.Requests
		}
	}
	return 0
}

// Issue 12: three instances on one PostgreSQL and a new service that
// answers 500: too few requests roll nothing back; then every instance
// judges it failing at once, exactly one rollback revision is written
// (the others' conflict or find it done), every instance follows it, and
// judging again writes nothing more.
func TestRollbackOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	var status atomic.Int32
	status.Store(500)
	legacy, orders := upstream(t, "legacy", nil), upstream(t, "orders", &status)
	applyText(t, st, storeRules(legacy, orders, 50, "{window: 12s, min_requests: 20, max_error_percent: 10}"), 0)
	var ins []*instance
	for i := range 3 {
		ins = append(ins, newInstance(t, st, fmt.Sprintf("i%d", i), nil, nil))
	}
	evaluateAll := func() {
		var wg sync.WaitGroup
		for _, in := range ins {
			wg.Go(func() {
				if err := in.engine.Evaluate(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	evaluateAll() // what counts starts now
	// The slot the start fell in is left out: wait for the next (1 s).
	since := ins[0].verdict(t).Since
	waittest.For(t, "the next slot of the window", func() bool { return time.Since(since) > time.Second })

	for _, in := range ins {
		send(t, in, 5)
	}
	evaluateAll()
	for _, in := range ins {
		if v := in.verdict(t); v.Verdict != analysis.VerdictInsufficient || v.Health.New.Requests != 5 {
			t.Fatalf("after 5 failures: %+v", v)
		}
	}
	if got := analysisRevisions(t, st); len(got) != 0 {
		t.Fatalf("rolled back on too few requests: %+v", got)
	}

	for _, in := range ins {
		send(t, in, 20)
	}
	evaluateAll()
	for _, in := range ins {
		if v := in.verdict(t); v.Verdict != analysis.VerdictFail || !strings.Contains(v.Reason, "answered 100.0% 5xx") {
			t.Fatalf("after 25 failures: %+v", v)
		}
	}
	got := analysisRevisions(t, st)
	if len(got) != 1 {
		t.Fatalf("%d rollback revisions: %+v", len(got), got)
	}
	r := got[0]
	if !strings.HasPrefix(r.Author, "ficus-analysis@i") || !strings.Contains(r.Reason, "canary analysis: rollback: orders answered 100.0% 5xx, above 10%") ||
		r.Detail != "analysis rollback orders: orders 50% -> 0%" || r.Parent != 1 {
		t.Fatalf("rollback revision: %+v", r)
	}
	for _, in := range ins {
		waittest.For(t, "every instance to serve weight 0", func() bool { return in.weight() == 0 })
		if resp, err := http.Get(in.front.URL + "/orders/1"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after the rollback: %v %v", resp, err)
		}
	}
	evaluateAll()
	for _, in := range ins {
		if v := in.verdict(t); v.Verdict != analysis.VerdictIdle {
			t.Fatalf("after the rollback: %+v", v)
		}
	}
	if got := analysisRevisions(t, st); len(got) != 1 {
		t.Fatalf("written again: %+v", got)
	}
}

// Issue 12: steps advance while the analysis passes, once the interval has
// passed; before a hold_before step ficus waits for a person, who resumes
// (the next step) or aborts (0%, after which nothing happens). Latencies
// and the clock are injected.
func TestStepsHoldResumeAbort(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	legacy, orders := upstream(t, "legacy", nil), upstream(t, "orders", nil)
	applyText(t, st, storeRules(legacy, orders, 10, "{window: 1m, min_requests: 20, steps: [10, 50, 100], hold_before: [100], interval: 30s}"), 0)
	set := health.NewSet()
	w := set.Route("orders", time.Minute)
	c := &clock{now: t0}
	in := newInstance(t, st, "only", set, c.Now)
	ctx := context.Background()
	step := func(at time.Duration) {
		t.Helper()
		c.now = t0.Add(at)
		if err := in.engine.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
	}

	step(0)
	record(w, true, 30, 200, time.Millisecond, t0.Add(5*time.Second))
	step(10 * time.Second)
	if v := in.verdict(t); v.Verdict != analysis.VerdictPass || !strings.Contains(v.Reason, "next step 50% in 20s") || v.Step != 1 {
		t.Fatalf("before the interval: %+v", v)
	}
	step(31 * time.Second)
	revs := analysisRevisions(t, st)
	if len(revs) != 1 || revs[0].Detail != "analysis step orders: orders 10% -> 50%" {
		t.Fatalf("step revisions: %+v", revs)
	}
	waittest.For(t, "the instance to serve 50%", func() bool { return in.weight() == 50 })

	// At 50%, the counting starts over; passing, it waits for a person.
	step(32 * time.Second)
	record(w, true, 30, 200, time.Millisecond, t0.Add(40*time.Second))
	step(80 * time.Second)
	if v := in.verdict(t); v.Verdict != analysis.VerdictHold || !strings.Contains(v.Reason, "waiting for a person before 100%") || v.Step != 2 {
		t.Fatalf("at 50%%: %+v", v)
	}
	if revs := analysisRevisions(t, st); len(revs) != 1 {
		t.Fatalf("a held step was taken: %+v", revs)
	}

	// A person resumes: 100%.
	d, err := st.ResumeDraft(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	d.Author, d.Reason = "alice", "numbers look fine"
	if rev, err := st.Apply(ctx, d.Proposal); err != nil || rev.Action != revisions.ActionResume || rev.Detail != "resume orders: orders 50% -> 100%" {
		t.Fatalf("resume: %+v %v", rev, err)
	}
	waittest.For(t, "the instance to serve 100%", func() bool { return in.weight() == 100 })
	if _, err := st.ResumeDraft(ctx, "orders"); !errors.Is(err, revisions.ErrNotHeld) || !strings.Contains(err.Error(), "its last step") {
		t.Fatalf("resume at the last step: %v", err)
	}

	// A person aborts: 0%, and the analysis stays idle.
	d, err = st.AbortDraft(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	d.Author, d.Reason = "alice", "stop"
	if rev, err := st.Apply(ctx, d.Proposal); err != nil || rev.Action != revisions.ActionAbort {
		t.Fatalf("abort: %+v %v", rev, err)
	}
	waittest.For(t, "the instance to serve 0%", func() bool { return in.weight() == 0 })
	if _, err := st.AbortDraft(ctx, "orders"); !errors.As(err, new(*revisions.NoChangeError)) {
		t.Fatalf("abort at 0%%: %v", err)
	}
	if _, err := st.ResumeDraft(ctx, "orders"); !errors.Is(err, revisions.ErrNotHeld) || !strings.Contains(err.Error(), "ficus routes state orders canary --percent 10") {
		t.Fatalf("resume at 0%%: %v", err)
	}
	record(w, true, 30, 500, time.Millisecond, t0.Add(100*time.Second))
	step(110 * time.Second)
	if v := in.verdict(t); v.Verdict != analysis.VerdictIdle {
		t.Fatalf("after the abort: %+v", v)
	}
	if revs := analysisRevisions(t, st); len(revs) != 1 {
		t.Fatalf("written after the abort: %+v", revs)
	}
}

// Resume refuses a step ficus takes by itself.
func TestResumeRefusesAnAutomaticStep(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	applyText(t, st, storeRules("http://127.0.0.1:1", "http://127.0.0.1:2", 10, "{steps: [10, 50, 100], hold_before: [100]}"), 0)
	_, err := st.ResumeDraft(context.Background(), "orders")
	if !errors.Is(err, revisions.ErrNotHeld) || !strings.Contains(err.Error(), "ficus takes that step by itself") {
		t.Fatalf("resume at 10%%: %v", err)
	}
	var invalid *revisions.InvalidError
	if _, err := st.ResumeDraft(context.Background(), "nope"); !errors.As(err, &invalid) {
		t.Fatalf("unknown route: %v", err)
	}
}
