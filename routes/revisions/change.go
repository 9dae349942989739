package revisions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
)

// This file is what the CLI (ficus routes …) and the admin API share
// between asking for a change and storing it: the drafts of rollbacks and
// quick flips, the whole-set validation with the diff against the live
// revision (Plan), and the fleet's status.

// Draft is a rule set someone wants stored, before it is validated.
type Draft struct {
	// Name names the text in errors: a file name, "revision 4", "the
	// proposed rules".
	Name string
	// Proposal is what Apply stores; Author and Reason are filled by the
	// caller, who knows them.
	Proposal
}

// InvalidError refuses a rule set as a whole before anything is stored:
// Err is routes.Errors (every problem, with line and column) or the
// process configuration's refusal.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }

func (e *InvalidError) Unwrap() error { return e.Err }

// Plan is a draft validated as a whole, with its changes against the live
// revision.
type Plan struct {
	Draft
	// File is the parsed rule set.
	File *routes.File
	// Live is the live revision when the plan was made; nil when none has
	// been applied yet.
	Live *Revision
	// Changes lead from Live to File; none means storing is pointless.
	Changes []routes.Change
}

// LiveNumber is the number of Live; 0 when there is none.
func (p *Plan) LiveNumber() int64 {
	if p.Live == nil {
		return 0
	}
	return p.Live.Number
}

// Stale reports whether the draft is based on a revision that is no
// longer live: Apply will refuse it with a *ConflictError.
func (p *Plan) Stale() bool { return p.Parent != p.LiveNumber() }

// Plan validates d as a whole (the rule file, then check, this process
// configuration's own refusals; nil checks nothing more) and diffs it
// against the live revision. A refusal is an *InvalidError.
func (s *Store) Plan(ctx context.Context, d Draft, check func(*routes.File) error) (*Plan, error) {
	if len(d.Text) > routes.MaxFileSize {
		return nil, &InvalidError{fmt.Errorf("%s: rule file is larger than %d bytes", d.Name, routes.MaxFileSize)}
	}
	f, err := routes.Parse(d.Name, []byte(d.Text))
	if err != nil {
		return nil, &InvalidError{err}
	}
	if check != nil {
		if err := check(f); err != nil {
			return nil, &InvalidError{err}
		}
	}
	live, err := s.liveOrNone(ctx)
	if err != nil {
		return nil, err
	}
	old := &routes.File{}
	if live != nil {
		if old, err = live.Parse(); err != nil {
			return nil, err
		}
	}
	return &Plan{Draft: d, File: f, Live: live, Changes: routes.Diff(old, f)}, nil
}

func (s *Store) liveOrNone(ctx context.Context) (*Revision, error) {
	live, err := s.Live(ctx)
	if errors.Is(err, ErrNoRevision) {
		return nil, nil
	}
	return live, err
}

// ApplyDraft is the draft of applying text, based on parent; parent < 0
// means the live revision (0 when there is none).
func (s *Store) ApplyDraft(ctx context.Context, name, text string, parent int64) (Draft, error) {
	if parent < 0 {
		n, err := s.LiveNumber(ctx)
		if err != nil {
			return Draft{}, err
		}
		parent = n
	}
	return Draft{Name: name, Proposal: Proposal{Text: text, Parent: parent, Action: ActionApply}}, nil
}

// ErrNothingBefore refuses a rollback to the parent of the first revision.
var ErrNothingBefore = errors.New("there is nothing to roll back to")

// RollbackDraft is the draft of a new revision with the rules of revision
// to, based on the live one; to 0 means the live revision's parent.
func (s *Store) RollbackDraft(ctx context.Context, to int64) (Draft, error) {
	live, err := s.Live(ctx)
	if err != nil {
		return Draft{}, err
	}
	if to == 0 {
		if live.Parent == 0 {
			return Draft{}, fmt.Errorf("revision %d is the first: %w", live.Number, ErrNothingBefore)
		}
		to = live.Parent
	}
	r, err := s.Get(ctx, to)
	if err != nil {
		return Draft{}, err
	}
	return Draft{Name: r.Name(), Proposal: Proposal{Text: r.Text, Parent: live.Number, Action: ActionRollback,
		Detail: fmt.Sprintf("rollback to %d", r.Number)}}, nil
}

// NoChangeError says a quick flip asked what the live revision already
// says: there is nothing to store.
type NoChangeError struct{ Live *Revision }

func (e *NoChangeError) Error() string { return e.Live.Name() + " (live) already says so" }

func (e *NoChangeError) Unwrap() error { return routes.ErrNoChange }

// SetWeightDraft is the draft of the live rules with route's two-way
// split rebalanced so that target gets percent (routes.SetWeight). A flip
// the live rules already say is a *NoChangeError.
func (s *Store) SetWeightDraft(ctx context.Context, route, target string, percent int) (Draft, error) {
	return s.flip(ctx, ActionSetWeight, fmt.Sprintf("set-weight %s %s %d%%", route, target, percent),
		func(name string, text []byte) ([]byte, error) {
			return routes.SetWeight(name, text, route, target, percent)
		})
}

// StateDraft is the draft of the live rules with route put in state st
// (routes.SetState: target is its new upstream, needed when it has none;
// percent the canary's share). A flip the live rules already say is a
// *NoChangeError.
func (s *Store) StateDraft(ctx context.Context, route string, st routes.State, target string, percent int) (Draft, error) {
	detail := fmt.Sprintf("state %s %s", route, st)
	if percent != 0 {
		detail += fmt.Sprintf(" %d%%", percent)
	}
	return s.flip(ctx, ActionState, detail, func(name string, text []byte) ([]byte, error) {
		return routes.SetState(name, text, route, st, target, percent)
	})
}

// ErrNotHeld refuses a resume of a route that is not waiting for a
// person at a step of its analysis.
var ErrNotHeld = errors.New("not held")

// ResumeDraft is the draft of the live rules with route's new upstream
// raised to the next step of its analysis, which must be one ficus waits
// for a person to take (hold_before). Anything else is refused with an
// error wrapping ErrNotHeld that says why.
func (s *Store) ResumeDraft(ctx context.Context, route string) (Draft, error) {
	live, err := s.Live(ctx)
	if err != nil {
		return Draft{}, err
	}
	f, err := live.Parse()
	if err != nil {
		return Draft{}, err
	}
	r := routeNamed(f, route)
	if r == nil {
		return Draft{}, &InvalidError{fmt.Errorf("%s has no route %q", live.Name(), route)}
	}
	a := r.Analysis
	if a == nil || len(a.Steps) == 0 {
		return Draft{}, fmt.Errorf("route %s has no analysis steps to resume: %w", route, ErrNotHeld)
	}
	up := r.NewUpstream(f.Monolith)
	w := r.Weight(up)
	next, hold, ok := a.NextStep(w)
	switch {
	case w == 0:
		return Draft{}, fmt.Errorf("route %s sends 0%% to %s (rolled back, aborted or not started): start it with ficus routes state %s canary --percent %d: %w",
			route, up, route, a.Steps[0], ErrNotHeld)
	case !ok:
		return Draft{}, fmt.Errorf("route %s is at %d%%, its last step: %w", route, w, ErrNotHeld)
	case !hold:
		return Draft{}, fmt.Errorf("route %s does not wait for a person before %d%%: ficus takes that step by itself while the analysis passes: %w",
			route, next, ErrNotHeld)
	}
	return s.flip(ctx, ActionResume, fmt.Sprintf("resume %s: %s %d%% -> %d%%", route, up, w, next),
		func(name string, text []byte) ([]byte, error) { return routes.SetWeight(name, text, route, up, next) })
}

// AbortDraft is the draft of the live rules with route's new upstream
// (its one target besides the monolith) at 0%. A route already at 0% is
// a *NoChangeError.
func (s *Store) AbortDraft(ctx context.Context, route string) (Draft, error) {
	return s.flip(ctx, ActionAbort, "abort "+route, func(name string, text []byte) ([]byte, error) {
		f, err := routes.Parse(name, text)
		if err != nil {
			return nil, err
		}
		r := routeNamed(f, route)
		if r == nil {
			return nil, fmt.Errorf("%s has no route %q", name, route)
		}
		up := r.NewUpstream(f.Monolith)
		if up == "" {
			return nil, fmt.Errorf("route %s has no one new upstream besides the monolith %s to abort", route, f.Monolith)
		}
		return routes.SetWeight(name, text, route, up, 0)
	})
}

func routeNamed(f *routes.File, name string) *routes.Route {
	for _, r := range f.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// flip drafts the live revision's text as edited by edit. The edit's
// refusals (an unknown route, a split it cannot rebalance) are
// *InvalidErrors.
func (s *Store) flip(ctx context.Context, action, detail string, edit func(name string, text []byte) ([]byte, error)) (Draft, error) {
	live, err := s.Live(ctx)
	if err != nil {
		return Draft{}, err
	}
	text, err := edit(live.Name(), []byte(live.Text))
	if errors.Is(err, routes.ErrNoChange) {
		return Draft{}, &NoChangeError{Live: live}
	}
	if err != nil {
		return Draft{}, &InvalidError{err}
	}
	return Draft{Name: "the proposed rules", Proposal: Proposal{Text: string(text), Parent: live.Number, Action: action, Detail: detail}}, nil
}

// The states of an instance in a Status.
const (
	InstanceCurrent = "current"
	InstanceBehind  = "behind"
	InstanceSilent  = "silent"
)

// InstanceStatus is an instance and how it stands against the live
// revision.
type InstanceStatus struct {
	Instance
	// State is InstanceCurrent, InstanceBehind (it serves another
	// revision) or InstanceSilent (no heartbeat for a while: stopped?).
	State string
	// Silence is how long no heartbeat came (database clock).
	Silence time.Duration
}

// Status is the live revision and the instances that report.
type Status struct {
	// Live is nil when no revision has been applied yet.
	Live      *Revision
	Instances []InstanceStatus
}

// SilentAfter is how long an instance polling every poll (0:
// DefaultPollInterval) may go without a heartbeat before a Status calls it
// silent.
func SilentAfter(poll time.Duration) time.Duration {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	return max(30*time.Second, 3*poll)
}

// Status returns the live revision and the instances, each judged against
// it; an instance without a heartbeat for longer than silentAfter is
// InstanceSilent.
func (s *Store) Status(ctx context.Context, silentAfter time.Duration) (*Status, error) {
	live, err := s.liveOrNone(ctx)
	if err != nil {
		return nil, err
	}
	ins, now, err := s.Instances(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Live: live, Instances: make([]InstanceStatus, 0, len(ins))}
	var liveNumber int64
	if live != nil {
		liveNumber = live.Number
	}
	for _, in := range ins {
		is := InstanceStatus{Instance: in, State: InstanceCurrent, Silence: now.Sub(in.SeenAt)}
		switch {
		case is.Silence > silentAfter:
			is.State = InstanceSilent
		case in.Revision != liveNumber:
			is.State = InstanceBehind
		}
		st.Instances = append(st.Instances, is)
	}
	return st, nil
}

// DiffText is changes as routes.WriteDiff writes them.
func DiffText(changes []routes.Change) string {
	var b strings.Builder
	_ = routes.WriteDiff(&b, changes)
	return b.String()
}
