// Package analysis enforces the routes' canary analysis (the analysis:
// rule of routes.Route): it judges each route's new side against its
// legacy side in the instance's sliding windows (strangler/health), rolls
// a failing route back to 0% and raises a passing one along its steps, by
// writing a revision of the rule store (routes/revisions), which every
// instance then follows.
//
// Every instance evaluates; only one revision is written per decision.
// An instance writes only on top of the revision it serves, and the
// store refuses a revision whose parent is no longer live, so when two
// instances decide at once the second write conflicts and is dropped,
// and an instance that is behind writes nothing until it has followed.
//
// The state of the steps is the live weight itself: a route at 0% is idle
// (rolled back, aborted or not started: a person starts it), a route at a
// weight below a step marked hold_before waits for ficus routes resume.
// Nothing else is stored, so restarts and other instances agree. What an
// instance remembers is when it first served the route's current weight
// (or started): only requests since then count, and a step waits
// Interval from then.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler/health"
	"github.com/prometheus/client_golang/prometheus"
)

// The verdicts of a route.
const (
	// VerdictPass: the new side is within the rule (and, with steps, the
	// next one is taken once Interval has passed).
	VerdictPass = "pass"
	// VerdictFail: the new side broke the rule; its weight goes to 0.
	VerdictFail = "fail"
	// VerdictHold: it passes but the next step waits for a person (or for
	// the shadow parity to rise).
	VerdictHold = "hold"
	// VerdictIdle: the new side gets no traffic (0%).
	VerdictIdle = "idle"
	// VerdictInsufficient: the new side served fewer than min_requests
	// since its weight last changed.
	VerdictInsufficient = "insufficient"
)

// RouteStatus is a route's analysis as this instance sees it.
type RouteStatus struct {
	Route string `json:"route"`
	// Target is the route's new upstream.
	Target  string `json:"target"`
	Verdict string `json:"verdict"`
	// Reason says why, with the numbers.
	Reason string `json:"reason"`
	// Step is the 1-based step the weight is at; 0 when at none.
	Step int `json:"step"`
	// Weight is the new upstream's live share, in percent.
	Weight int `json:"weight"`
	// Since is when this instance first served that weight (or started):
	// the start of what the verdict counts and of the step's interval.
	Since time.Time `json:"since"`
	// Health is the route's two sides since then.
	Health health.RouteHealth `json:"health"`
}

// Parity is the shadow comparison's score of a route (0..1); ok is false
// when it has none.
type Parity interface {
	RouteParity(route string) (score float64, ok bool)
}

// Options configure an Engine.
type Options struct {
	// Rules returns the live rule set (strangler.Gateway.Rules). Required.
	Rules func() *routes.File
	// Health holds the routes' windows (strangler.Gateway.Health). Required.
	Health *health.Set
	// Store is the rule store the decisions are written to. Nil (routes
	// from a file) makes the engine judge and log only: it cannot change
	// the rules of every instance.
	Store *revisions.Store
	// Served returns the revision this instance serves
	// (revisions.Follower.Revision). Required with Store.
	Served func() int64
	// Instance names this instance in the author of its revisions:
	// ficus-analysis@Instance.
	Instance string
	// Parity, if set, is read for routes with parity_min. Nil ignores
	// parity_min.
	Parity Parity
	// Logger receives verdict changes and decisions. Nil discards.
	Logger *slog.Logger
	// Registerer receives ficus_analysis_changes_total. Nil keeps it
	// unregistered.
	Registerer prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Every is how often Run evaluates. Zero means 1s.
	Every time.Duration
}

// writeTimeout bounds one decision's reads and write in the store.
const writeTimeout = 10 * time.Second

// Engine evaluates the analysis rules of the live rule set. It is safe
// for concurrent use.
type Engine struct {
	o       Options
	changes *prometheus.CounterVec

	mu        sync.Mutex // serialises Evaluate
	seen      map[string]*seen
	status    []RouteStatus
	evaluated bool // Evaluate ran before
}

// seen is what an instance remembers of a route: the weight it served
// last and since when, and the last verdict (to log changes).
type seen struct {
	target string
	weight int
	// since is when this instance first served the weight: the requests
	// before it do not count. Zero for the routes of the first
	// evaluation: everything in the window counts (it began with the
	// process). start is since, or the first evaluation: the start of the
	// step interval.
	since, start time.Time
	verdict      string
	warned       bool // logged that it cannot write (no store)
}

// New returns an Engine.
func New(o Options) (*Engine, error) {
	if o.Rules == nil || o.Health == nil || (o.Store != nil && o.Served == nil) {
		return nil, errors.New("analysis: an engine needs the rules, the health windows and, with a store, the revision served")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
	e := &Engine{o: o, seen: map[string]*seen{}, changes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ficus_analysis_changes_total",
		Help: "Revisions the canary analysis of this instance wrote, by route and action (rollback or step).",
	}, []string{"route", "action"})}
	if o.Registerer != nil {
		if err := o.Registerer.Register(e.changes); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// AnalysisStatus returns the verdict of every route with an analysis
// rule, by route name, as of the last evaluation.
func (e *Engine) AnalysisStatus() []RouteStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]RouteStatus(nil), e.status...)
}

// Run evaluates every Options.Every until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					e.o.Logger.Error("canary analysis panicked", "panic", fmt.Sprint(p))
				}
			}()
			if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
				e.o.Logger.Warn("canary analysis: a decision was not written; it is tried again", "error", err.Error())
			}
		}()
	}
}

// decision is a weight to write.
type decision struct {
	route, target, action, reason string
	from, to                      int
}

// Evaluate judges every route with an analysis rule and writes what the
// verdicts call for: a rollback to 0% for a failing route, the next step
// for a passing one whose interval has passed. The errors are the
// store's; the verdicts are kept either way.
func (e *Engine) Evaluate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.o.Rules()
	if f == nil {
		return nil
	}
	now := e.o.Now()
	var out []RouteStatus
	var todo []decision
	live := map[string]bool{}
	for _, r := range f.Routes {
		a := r.Analysis
		if a == nil {
			continue
		}
		live[r.Name] = true
		up := r.NewUpstream(f.Monolith)
		w := r.Weight(up)
		s := e.seen[r.Name]
		if s == nil || s.weight != w || s.target != up {
			s = &seen{target: up, weight: w, since: now, start: now}
			if !e.evaluated {
				s.since = time.Time{}
			}
			e.seen[r.Name] = s
		}
		st, d := e.judge(r, a, s, now)
		out = append(out, st)
		if d != nil {
			todo = append(todo, *d)
		}
		if st.Verdict != s.verdict {
			level := slog.LevelInfo
			if st.Verdict == VerdictFail {
				level = slog.LevelWarn
			}
			e.o.Logger.Log(ctx, level, "canary analysis verdict", "route", r.Name, "verdict", st.Verdict, "reason", st.Reason)
			s.verdict = st.Verdict
		}
	}
	for name := range e.seen {
		if !live[name] {
			delete(e.seen, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	e.status, e.evaluated = out, true
	var errs []error
	for _, d := range todo {
		if err := e.write(ctx, f, d); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", d.route, err))
		}
	}
	return errors.Join(errs...)
}

// judge returns a route's status and what to write, if anything.
func (e *Engine) judge(r *routes.Route, a *routes.Analysis, s *seen, now time.Time) (RouteStatus, *decision) {
	st := RouteStatus{Route: r.Name, Target: s.target, Weight: s.weight, Step: a.StepIndex(s.weight), Since: s.start}
	if s.weight == 0 {
		st.Verdict, st.Reason = VerdictIdle, fmt.Sprintf("%s gets 0%%: nothing to judge (a person starts or resumes the canary)", s.target)
		return st, nil
	}
	win := e.o.Health.Get(r.Name)
	if win == nil {
		st.Verdict, st.Reason = VerdictInsufficient, "no window yet"
		return st, nil
	}
	h := win.Report(now, s.since)
	st.Health = h
	n, l := h.New, h.Legacy
	minReq := uint64(a.MinRequestsOrDefault())
	if n.Requests < minReq {
		st.Verdict = VerdictInsufficient
		st.Reason = fmt.Sprintf("%s served %d of the %d requests a verdict needs at %d%% (since %s)", s.target, n.Requests, minReq,
			s.weight, s.start.UTC().Format(time.RFC3339))
		return st, nil
	}
	maxErr := a.MaxErrorPercentOrDefault()
	numbers := fmt.Sprintf("over %d requests to %s and %d to the monolith in %s", n.Requests, s.target, l.Requests, h.Window)
	if pct := n.ErrorRate * 100; pct > maxErr {
		st.Verdict = VerdictFail
		st.Reason = fmt.Sprintf("%s answered %.1f%% 5xx, above %g%% (monolith %.1f%%), %s", s.target, pct, maxErr, l.ErrorRate*100, numbers)
		return st, e.rollback(r, s, st.Reason)
	}
	latency := ""
	if ratio := a.MaxP99Ratio; ratio > 0 {
		if l.Requests >= minReq && l.P99 > 0 {
			if float64(n.P99) > ratio*float64(l.P99) {
				st.Verdict = VerdictFail
				st.Reason = fmt.Sprintf("%s p99 %s is above %g × the monolith's %s, %s", s.target, n.P99.Round(time.Microsecond),
					ratio, l.P99.Round(time.Microsecond), numbers)
				return st, e.rollback(r, s, st.Reason)
			}
			latency = fmt.Sprintf(", p99 %s (monolith %s)", n.P99.Round(time.Microsecond), l.P99.Round(time.Microsecond))
		} else {
			latency = fmt.Sprintf(", p99 %s (the monolith served too few to compare)", n.P99.Round(time.Microsecond))
		}
	}
	st.Verdict = VerdictPass
	st.Reason = fmt.Sprintf("%s answered %.1f%% 5xx (at most %g%%)%s, %s", s.target, n.ErrorRate*100, maxErr, latency, numbers)
	next, hold, ok := a.NextStep(s.weight)
	if !ok {
		return st, nil
	}
	if a.ParityMin > 0 && e.o.Parity != nil {
		if p, has := e.o.Parity.RouteParity(r.Name); has && p < a.ParityMin {
			st.Verdict = VerdictHold
			st.Reason = fmt.Sprintf("shadow parity %.3f is below %g: no step to %d%% until it rises; %s", p, a.ParityMin, next, st.Reason)
			return st, nil
		}
	}
	if hold {
		st.Verdict = VerdictHold
		st.Reason = fmt.Sprintf("waiting for a person before %d%% (ficus routes resume %s, or abort); %s", next, r.Name, st.Reason)
		return st, nil
	}
	if wait := s.start.Add(a.IntervalOrDefault()).Sub(now); wait > 0 {
		st.Reason += fmt.Sprintf("; next step %d%% in %s", next, wait.Round(time.Second))
		return st, nil
	}
	return st, &decision{route: r.Name, target: s.target, action: "step", from: s.weight, to: next,
		reason: fmt.Sprintf("canary analysis: step to %d%%: %s", next, st.Reason)}
}

func (e *Engine) rollback(r *routes.Route, s *seen, reason string) *decision {
	return &decision{route: r.Name, target: s.target, action: "rollback", from: s.weight, to: 0,
		reason: "canary analysis: rollback: " + reason}
}

// write stores d as the next revision, once: only on top of the revision
// this instance serves (f), which must still be live.
func (e *Engine) write(ctx context.Context, f *routes.File, d decision) error {
	log := e.o.Logger.With("route", d.route, "target", d.target, "action", d.action, "from", d.from, "to", d.to)
	if e.o.Store == nil {
		if s := e.seen[d.route]; s != nil && !s.warned {
			s.warned = true
			log.Warn("canary analysis cannot change the rules with routes.source file: change the route file by hand", "reason", d.reason)
		}
		return nil
	}
	served := e.o.Served()
	if served == 0 || f.Name != (&revisions.Revision{Number: served}).Name() {
		return nil // between two loads: judged again on the next tick
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	draft, err := e.o.Store.SetWeightDraft(ctx, d.route, d.target, d.to)
	var same *revisions.NoChangeError
	if errors.As(err, &same) {
		return nil // already written (by another instance)
	}
	if err != nil {
		return err
	}
	if draft.Parent != served {
		return nil // the rules changed: follow them first, then judge again
	}
	p := draft.Proposal
	p.Action = revisions.ActionAnalysis
	p.Detail = fmt.Sprintf("analysis %s %s: %s %d%% -> %d%%", d.action, d.route, d.target, d.from, d.to)
	p.Author = "ficus-analysis@" + e.o.Instance
	p.Reason = d.reason
	rev, err := e.o.Store.Apply(ctx, p)
	var conflict *revisions.ConflictError
	if errors.As(err, &conflict) {
		log.Info("canary analysis: another change went live first; not written", "live", conflict.Live.Number)
		return nil
	}
	if err != nil {
		return err
	}
	e.changes.WithLabelValues(d.route, d.action).Inc()
	log.Warn("canary analysis changed the route's weight", "revision", rev.Number, "reason", d.reason)
	return nil
}
