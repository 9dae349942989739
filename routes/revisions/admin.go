package revisions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/ops"
)

// AdminOptions configure the rule store's admin API.
type AdminOptions struct {
	// Store is the rule store. Required.
	Store *Store
	// Check is the process configuration's own refusal of a rule set
	// (what would fail on every request); nil checks nothing more than
	// the rule file's validation.
	Check func(*routes.File) error
	// Caller names who sends a request: the author of the revisions and
	// audit rows it writes. Required; a request it cannot name is refused.
	Caller func(*http.Request) (string, bool)
	// SilentAfter is how long an instance may go without a heartbeat
	// before the status calls it silent. Zero means
	// SilentAfter(DefaultPollInterval).
	SilentAfter time.Duration
	// Logger receives the causes of 5xx answers; nil discards.
	Logger *slog.Logger
}

// maxBody bounds a request body: a rule file of routes.MaxFileSize, JSON
// escaped.
const maxBody = 2*routes.MaxFileSize + 64<<10

// AdminRoutes adds the rule store's admin API to mux, the same operations
// as ficus routes … (the same store functions):
//
//	GET  /admin/routes/revisions?limit=      newest revisions, without text
//	GET  /admin/routes/revisions/{rev}       one revision (a number, or live) with its text
//	GET  /admin/routes/diff?from=&to=        changes between two revisions
//	POST /admin/routes/revisions?dry_run=1   apply a rule file (YAML body, or JSON {rules, reason, parent})
//	POST /admin/routes/rollback?dry_run=1    JSON {rev, reason}; rev 0 or absent: the live one's parent
//	POST /admin/routes/weight?dry_run=1      JSON {route, target, percent, reason}
//	POST /admin/routes/state?dry_run=1       JSON {route, state, target, percent, reason}
//	POST /admin/routes/resume?dry_run=1      JSON {route, reason}: the analysis's next step, held for a person
//	POST /admin/routes/abort?dry_run=1       JSON {route, reason}: the route's new upstream to 0%
//	GET  /admin/routes/status                the live revision and each instance
//
// A change answers 201 with the stored revision and its diff, 200 when
// nothing is stored (a dry run, no change), 409 with the changes it would
// undo when its parent is no longer live, 422 with every problem
// (file:line:column) for a rule set refused as a whole, 400 for a
// malformed request. Authentication is the caller's (auth.AdminGuard).
func AdminRoutes(mux *http.ServeMux, o AdminOptions) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SilentAfter == 0 {
		o.SilentAfter = SilentAfter(0)
	}
	a := &admin{o: o}
	mux.HandleFunc("GET /admin/routes/revisions", a.history)
	mux.HandleFunc("GET /admin/routes/revisions/{rev}", a.show)
	mux.HandleFunc("GET /admin/routes/diff", a.diff)
	mux.HandleFunc("POST /admin/routes/revisions", a.apply)
	mux.HandleFunc("POST /admin/routes/rollback", a.rollback)
	mux.HandleFunc("POST /admin/routes/weight", a.weight)
	mux.HandleFunc("POST /admin/routes/state", a.state)
	mux.HandleFunc("POST /admin/routes/resume", a.resume)
	mux.HandleFunc("POST /admin/routes/abort", a.abort)
	mux.HandleFunc("GET /admin/routes/status", a.status)
}

type admin struct{ o AdminOptions }

// fail answers err: the store's refusals with their status, anything else
// 500 (the cause logged, never sent).
func (a *admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *InvalidError
	var conflict *ConflictError
	var rerrs routes.Errors
	switch {
	case errors.As(err, &conflict):
		ops.WriteJSON(w, http.StatusConflict, map[string]any{"error": conflict.Error(), "parent": conflict.Parent,
			"live": conflict.Live.Number, "changes": nonNil(conflict.Changes), "diff": DiffText(conflict.Changes)})
	case errors.As(err, &invalid):
		// Every problem, one line each: file:line:column: field: reason.
		problems := strings.Split(invalid.Err.Error(), "\n")
		if errors.As(invalid.Err, &rerrs) {
			problems = problems[:0]
			for _, e := range rerrs {
				problems = append(problems, e.Error())
			}
		}
		ops.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "the rule set is refused: nothing stored", "problems": problems})
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoRevision):
		ops.WriteError(w, r, a.o.Logger, &ops.Error{Status: http.StatusNotFound, Message: err.Error(), Cause: err})
	case errors.Is(err, ErrNothingBefore), errors.Is(err, ErrNotHeld):
		ops.WriteError(w, r, a.o.Logger, &ops.Error{Status: http.StatusConflict, Message: err.Error(), Cause: err})
	default:
		ops.WriteError(w, r, a.o.Logger, err)
	}
}

func badRequest(msg string, cause error) error {
	return &ops.Error{Status: http.StatusBadRequest, Message: msg, Cause: cause}
}

func nonNil(c []routes.Change) []routes.Change {
	if c == nil {
		return []routes.Change{}
	}
	return c
}

// revisionParam reads a revision named in a request: a number, or live.
func (a *admin) revisionParam(r *http.Request, name, v string) (*Revision, error) {
	if v == "live" {
		return a.o.Store.Live(r.Context())
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return nil, badRequest(fmt.Sprintf("%s must be a revision number or live (got %q)", name, v), err)
	}
	return a.o.Store.Get(r.Context(), n)
}

func (a *admin) history(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			a.fail(w, r, badRequest("limit must be a number from 1 to 1000", err))
			return
		}
		limit = n
	}
	live, err := a.o.Store.LiveNumber(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	revs, err := a.o.Store.History(r.Context(), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if revs == nil {
		revs = []Revision{}
	}
	ops.WriteJSON(w, http.StatusOK, map[string]any{"live": live, "revisions": revs})
}

func (a *admin) show(w http.ResponseWriter, r *http.Request) {
	rev, err := a.revisionParam(r, "the revision", r.PathValue("rev"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	live, err := a.o.Store.LiveNumber(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, struct {
		*Revision
		Live bool `json:"live"`
	}{rev, rev.Number == live})
}

func (a *admin) diff(w http.ResponseWriter, r *http.Request) {
	var files [2]*routes.File
	for i, name := range []string{"from", "to"} {
		v := r.URL.Query().Get(name)
		if v == "" {
			v = "live"
		}
		rev, err := a.revisionParam(r, name, v)
		if err == nil {
			files[i], err = rev.Parse()
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	changes := routes.Diff(files[0], files[1])
	ops.WriteJSON(w, http.StatusOK, map[string]any{"from": files[0].Name, "to": files[1].Name, "changes": nonNil(changes),
		"diff": DiffText(changes)})
}

// decode reads r's JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &ops.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", maxBody)}
		}
		return badRequest("the body is not the JSON object expected: "+err.Error(), err)
	}
	// Whatever follows the object would be silently ignored: refuse it.
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body must be one JSON object, with nothing after it", err)
	}
	return nil
}

// dryRun reads the dry_run parameter.
func dryRun(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("dry_run")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("dry_run must be 1, true, 0 or false", err)
	}
	return b, nil
}

func (a *admin) apply(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Rules  string `json:"rules"`
		Reason string `json:"reason"`
		// Parent nil means the live revision.
		Parent *int64 `json:"parent"`
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		if err := decode(w, r, &in); err != nil {
			a.fail(w, r, err)
			return
		}
	} else {
		// The rule file as it is; the rest in the query.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, routes.MaxFileSize))
		if err != nil {
			a.fail(w, r, &ops.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("a rule file is at most %d bytes", routes.MaxFileSize), Cause: err})
			return
		}
		in.Rules, in.Reason = string(body), r.URL.Query().Get("reason")
		if v := r.URL.Query().Get("parent"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				a.fail(w, r, badRequest("parent must be a revision number (0: none yet)", err))
				return
			}
			in.Parent = &n
		}
	}
	if len(bytes.TrimSpace([]byte(in.Rules))) == 0 {
		a.fail(w, r, badRequest("no rules: send the rule file as the body, or JSON {rules, reason, parent}", nil))
		return
	}
	parent := int64(-1)
	if in.Parent != nil {
		if *in.Parent < 0 {
			a.fail(w, r, badRequest("parent must be a revision number (0: none yet)", nil))
			return
		}
		parent = *in.Parent
	}
	a.change(w, r, in.Reason, func() (Draft, error) { return a.o.Store.ApplyDraft(r.Context(), "body", in.Rules, parent) })
}

func (a *admin) rollback(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Rev    int64  `json:"rev"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.Rev < 0 {
		a.fail(w, r, badRequest("rev must be a revision number (0 or absent: the live one's parent)", nil))
		return
	}
	a.change(w, r, in.Reason, func() (Draft, error) { return a.o.Store.RollbackDraft(r.Context(), in.Rev) })
}

func (a *admin) weight(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Route   string `json:"route"`
		Target  string `json:"target"`
		Percent *int   `json:"percent"`
		Reason  string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.Route == "" || in.Target == "" || in.Percent == nil {
		a.fail(w, r, badRequest("route, target and percent are required", nil))
		return
	}
	a.change(w, r, in.Reason, func() (Draft, error) {
		return a.o.Store.SetWeightDraft(r.Context(), in.Route, in.Target, *in.Percent)
	})
}

func (a *admin) state(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Route   string `json:"route"`
		State   string `json:"state"`
		Target  string `json:"target"`
		Percent int    `json:"percent"`
		Reason  string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := routes.ParseState(in.State)
	if in.Route == "" || err != nil {
		a.fail(w, r, badRequest("route and state (legacy, canary or migrated) are required", err))
		return
	}
	a.change(w, r, in.Reason, func() (Draft, error) {
		return a.o.Store.StateDraft(r.Context(), in.Route, st, in.Target, in.Percent)
	})
}

func (a *admin) resume(w http.ResponseWriter, r *http.Request) {
	a.routeChange(w, r, a.o.Store.ResumeDraft)
}

func (a *admin) abort(w http.ResponseWriter, r *http.Request) {
	a.routeChange(w, r, a.o.Store.AbortDraft)
}

// routeChange reads {route, reason} and stores the draft that draft makes.
func (a *admin) routeChange(w http.ResponseWriter, r *http.Request, draft func(context.Context, string) (Draft, error)) {
	var in struct {
		Route  string `json:"route"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.Route == "" {
		a.fail(w, r, badRequest("route is required", nil))
		return
	}
	a.change(w, r, in.Reason, func() (Draft, error) { return draft(r.Context(), in.Route) })
}

// changeAnswer is the answer to a change.
type changeAnswer struct {
	// Stored is the new revision; absent when nothing was stored.
	Stored *Revision `json:"stored,omitempty"`
	DryRun bool      `json:"dry_run,omitempty"`
	// Live is the revision live before the change; Parent the one the
	// change is based on (a dry run based on another one would be
	// refused).
	Live    int64           `json:"live"`
	Parent  int64           `json:"parent"`
	Changes []routes.Change `json:"changes"`
	Diff    string          `json:"diff"`
	Message string          `json:"message"`
}

// change validates the draft that draft makes as a whole, diffs it
// against the live revision and stores it (unless dry_run), with the
// caller as author and reason: the steps of ficus routes apply.
func (a *admin) change(w http.ResponseWriter, r *http.Request, reason string, draft func() (Draft, error)) {
	dry, err := dryRun(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	author, ok := a.o.Caller(r)
	if !ok || author == "" {
		a.fail(w, r, errors.New("admin API: no caller for the audit trail (the route store API is not behind auth.AdminGuard)"))
		return
	}
	if reason = strings.TrimSpace(reason); reason == "" && !dry {
		a.fail(w, r, badRequest("a reason is required: say why (it is kept with the revision and in the audit trail)", nil))
		return
	}
	d, err := draft()
	var same *NoChangeError
	if errors.As(err, &same) {
		ops.WriteJSON(w, http.StatusOK, changeAnswer{Live: same.Live.Number, Parent: same.Live.Number, Changes: []routes.Change{},
			Message: same.Error() + ": nothing stored"})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	plan, err := a.o.Store.Plan(r.Context(), d, a.o.Check)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := changeAnswer{Live: plan.LiveNumber(), Parent: d.Parent, Changes: nonNil(plan.Changes), Diff: DiffText(plan.Changes)}
	switch {
	case len(plan.Changes) == 0:
		out.Message = "no changes: nothing stored"
	case dry:
		out.DryRun = true
		out.Message = fmt.Sprintf("dry run: nothing stored (it would be revision %d)", plan.LiveNumber()+1)
		if plan.Stale() {
			out.Message += fmt.Sprintf("; it is based on revision %d but revision %d is live: storing it would be refused", d.Parent, plan.LiveNumber())
		}
	}
	if out.Message != "" {
		ops.WriteJSON(w, http.StatusOK, out)
		return
	}
	p := d.Proposal
	p.Author, p.Reason = author, reason
	rev, err := a.o.Store.Apply(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rev.Text = ""
	out.Stored = rev
	out.Message = fmt.Sprintf("stored revision %d (parent %d, by %s)", rev.Number, rev.Parent, author)
	ops.WriteJSON(w, http.StatusCreated, out)
}

func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	st, err := a.o.Store.Status(r.Context(), a.o.SilentAfter)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type instance struct {
		Instance
		State          string  `json:"state"`
		SilenceSeconds float64 `json:"silence_seconds"`
	}
	ins := make([]instance, 0, len(st.Instances))
	for _, in := range st.Instances {
		ins = append(ins, instance{Instance: in.Instance, State: in.State, SilenceSeconds: in.Silence.Seconds()})
	}
	var live *Revision
	if st.Live != nil {
		l := *st.Live
		l.Text = ""
		live = &l
	}
	ops.WriteJSON(w, http.StatusOK, map[string]any{"live": live, "instances": ins})
}
