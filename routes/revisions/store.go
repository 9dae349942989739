package revisions

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/pgmigrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records the applied rule-store migrations.
const VersionTable = "routes_schema_version"

// Channel is the NOTIFY channel that carries the number of each new live
// revision to the instances.
const Channel = "ficus_routes"

// Migrate applies the rule-store migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgmigrate.Apply(ctx, pool, sub, VersionTable)
}

// The actions that make a revision.
const (
	ActionApply     = "apply"
	ActionRollback  = "rollback"
	ActionSetWeight = "set-weight"
	ActionState     = "state"
	// ActionAnalysis is a weight the canary analysis set by itself: a
	// rollback to 0 or the next step (strangler/analysis).
	ActionAnalysis = "analysis"
	// ActionResume and ActionAbort are a person's answer to an analysis
	// that holds: take the next step, or set the weight to 0.
	ActionResume = "resume"
	ActionAbort  = "abort"
)

// Revision is one stored rule set.
type Revision struct {
	Number int64 `json:"number"`
	// Parent is the revision that was live when this one was applied; 0
	// for the first.
	Parent int64 `json:"parent"`
	// Text is the rule file as submitted; empty in History's answers.
	Text   string `json:"text,omitempty"`
	Author string `json:"author"`
	Reason string `json:"reason"`
	// Action is how the revision was made (ActionApply, …) and Detail what
	// it asked, in words ("rollback to 4").
	Action    string    `json:"action"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
}

// Name names the revision in errors and in what an instance reports it
// serves: "revision 7".
func (r *Revision) Name() string { return fmt.Sprintf("revision %d", r.Number) }

// Parse parses and validates the revision's rule file.
func (r *Revision) Parse() (*routes.File, error) { return routes.Parse(r.Name(), []byte(r.Text)) }

// Proposal is a rule set to store as the next live revision.
type Proposal struct {
	// Text is the whole rule file. It must be valid (routes.Parse).
	Text string
	// Parent is the live revision the proposal is based on; 0 when no
	// revision exists yet.
	Parent int64
	// Author and Reason are required: who asks, and why.
	Author string
	Reason string
	// Action is how the proposal was made; empty means ActionApply.
	Action string
	// Detail is what was asked, in words; empty means the list of changes
	// against the parent.
	Detail string
}

var (
	// ErrNotFound is returned for a revision number that does not exist.
	ErrNotFound = errors.New("no such revision")
	// ErrNoRevision is returned when no revision has been applied yet.
	ErrNoRevision = errors.New("no route revision has been applied yet (ficus routes apply FILE)")
)

// ConflictError refuses a proposal whose parent is no longer live.
type ConflictError struct {
	// Parent is the revision the proposal was based on.
	Parent int64
	// Live is the revision live now.
	Live *Revision
	// Changes lead from Parent to Live: what storing the proposal would
	// have silently undone.
	Changes []routes.Change
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d is live, not %d (the base of this change): %s applied it at %s (%q); "+
		"storing this change would undo:\n", e.Live.Number, e.Parent, e.Live.Author,
		e.Live.CreatedAt.UTC().Format(time.RFC3339), e.Live.Reason)
	_ = routes.WriteDiff(&b, e.Changes)
	b.WriteString("start again from the live revision (ficus routes show)")
	return b.String()
}

// Store is the rule store on PostgreSQL. It is safe for concurrent use.
type Store struct{ db *pgxpool.Pool }

// New returns the store on pool (call Migrate first).
func New(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// maxDetail bounds the audit detail written for one change.
const maxDetail = 8 << 10

// Apply stores p as the next live revision, if p.Parent is still the live
// one: else it stores nothing and returns a *ConflictError. The number,
// the live pointer, the audit row and the notice to the instances are
// written in one transaction, under a row lock on the live pointer, so
// concurrent applies are serialised and each one is checked against what
// the previous one left live. An invalid rule file is refused with
// routes.Errors (every problem, with line and column) before anything is
// written.
func (s *Store) Apply(ctx context.Context, p Proposal) (*Revision, error) {
	if strings.TrimSpace(p.Author) == "" || strings.TrimSpace(p.Reason) == "" {
		return nil, errors.New("a change needs an author and a reason")
	}
	if len(p.Text) > routes.MaxFileSize {
		return nil, fmt.Errorf("rule file is larger than %d bytes", routes.MaxFileSize)
	}
	next, err := routes.Parse("proposed rules", []byte(p.Text))
	if err != nil {
		return nil, err
	}
	if p.Action == "" {
		p.Action = ActionApply
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	var live *int64
	if err := tx.QueryRow(ctx, `SELECT revision FROM route_live WHERE id FOR UPDATE`).Scan(&live); err != nil {
		return nil, fmt.Errorf("route store: read the live pointer: %w", err)
	}
	if value(live) != p.Parent {
		return nil, s.conflict(ctx, tx, p.Parent, value(live))
	}
	detail := p.Detail
	if detail == "" {
		prev := &routes.File{}
		if p.Parent != 0 {
			if prev, err = s.parsed(ctx, tx, p.Parent); err != nil {
				return nil, err
			}
		}
		var b strings.Builder
		_ = routes.WriteDiff(&b, routes.Diff(prev, next))
		detail = strings.TrimSpace(b.String())
	}
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "\n…"
	}
	r := &Revision{Parent: p.Parent, Text: p.Text, Author: p.Author, Reason: p.Reason, Action: p.Action, Detail: detail}
	err = tx.QueryRow(ctx, `INSERT INTO route_revisions (number, parent, body, author, reason, action, detail)
		SELECT coalesce(max(number), 0) + 1, $1, $2, $3, $4, $5, $6 FROM route_revisions
		RETURNING number, created_at`, live, p.Text, p.Author, p.Reason, p.Action, detail).Scan(&r.Number, &r.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("route store: insert the revision: %w", err)
	}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE route_live SET revision = $1, changed_at = now() WHERE id`, r.Number)
	batch.Queue(`INSERT INTO route_audit (actor, action, revision, previous, detail, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.Author, p.Action, r.Number, live, detail, p.Reason)
	// Delivered to the listening instances when the transaction commits.
	batch.Queue(`SELECT pg_notify($1, $2)`, Channel, fmt.Sprint(r.Number))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("route store: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("route store: commit: %w", err)
	}
	return r, nil
}

func value(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// conflict builds the refusal of a proposal based on parent while live is
// live: the changes from parent to live.
func (s *Store) conflict(ctx context.Context, q querier, parent, live int64) error {
	lr, err := s.get(ctx, q, live)
	if err != nil {
		return err
	}
	lf, err := lr.Parse()
	if err != nil {
		return err
	}
	pf := &routes.File{}
	if parent != 0 {
		if pf, err = s.parsed(ctx, q, parent); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if pf == nil {
			pf = &routes.File{}
		}
	}
	return &ConflictError{Parent: parent, Live: lr, Changes: routes.Diff(pf, lf)}
}

func (s *Store) parsed(ctx context.Context, q querier, n int64) (*routes.File, error) {
	r, err := s.get(ctx, q, n)
	if err != nil {
		return nil, err
	}
	return r.Parse()
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const revisionColumns = `number, coalesce(parent, 0), body, author, reason, action, detail, created_at`

func scanRevision(row pgx.Row) (*Revision, error) {
	r := &Revision{}
	err := row.Scan(&r.Number, &r.Parent, &r.Text, &r.Author, &r.Reason, &r.Action, &r.Detail, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

func (s *Store) get(ctx context.Context, q querier, n int64) (*Revision, error) {
	r, err := scanRevision(q.QueryRow(ctx, `SELECT `+revisionColumns+` FROM route_revisions WHERE number = $1`, n))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("revision %d: %w", n, ErrNotFound)
	}
	return r, err
}

// Get returns revision n with its text; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, n int64) (*Revision, error) { return s.get(ctx, s.db, n) }

// LiveNumber returns the number of the live revision; 0 when none has
// been applied yet. It is one indexed read, cheap enough to poll.
func (s *Store) LiveNumber(ctx context.Context) (int64, error) {
	var n *int64
	if err := s.db.QueryRow(ctx, `SELECT revision FROM route_live WHERE id`).Scan(&n); err != nil {
		return 0, err
	}
	return value(n), nil
}

// Live returns the live revision with its text; ErrNoRevision when none
// has been applied yet.
func (s *Store) Live(ctx context.Context) (*Revision, error) {
	r, err := scanRevision(s.db.QueryRow(ctx, `SELECT `+revisionColumns+` FROM route_revisions
		WHERE number = (SELECT revision FROM route_live WHERE id)`))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoRevision
	}
	return r, err
}

// History returns the newest revisions, newest first, at most limit, without
// their text.
func (s *Store) History(ctx context.Context, limit int) ([]Revision, error) {
	rows, err := s.db.Query(ctx, `SELECT number, coalesce(parent, 0), '', author, reason, action, detail, created_at
		FROM route_revisions ORDER BY number DESC LIMIT $1`, max(limit, 0))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Revision, error) {
		r, err := scanRevision(row)
		if err != nil {
			return Revision{}, err
		}
		return *r, nil
	})
}

// Instance is one running ficus instance as its heartbeat describes it.
type Instance struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Revision is the revision it serves; 0 when it serves none yet.
	Revision  int64     `json:"revision"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
}

// instanceRetention is how long the row of an instance that stopped
// sending heartbeats is kept (for ficus routes status).
const instanceRetention = 24 * time.Hour

// Heartbeat records that in is running and serves in.Revision (SeenAt is
// the database's clock), and drops rows of instances gone for a day.
func (s *Store) Heartbeat(ctx context.Context, in Instance) error {
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO route_instances (instance_id, hostname, pid, revision, started_at, seen_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (instance_id) DO UPDATE SET revision = excluded.revision, seen_at = now()`,
		in.ID, in.Hostname, in.PID, nullable(in.Revision), in.StartedAt)
	batch.Queue(`DELETE FROM route_instances WHERE seen_at < now() - $1::interval`, instanceRetention.String())
	return s.db.SendBatch(ctx, batch).Close()
}

func nullable(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// Forget removes an instance's heartbeat row (it stops).
func (s *Store) Forget(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM route_instances WHERE instance_id = $1`, id)
	return err
}

// Instances lists the instances that sent a heartbeat in the last day,
// the most recently seen first, and the database's time now (to judge
// SeenAt against).
func (s *Store) Instances(ctx context.Context) ([]Instance, time.Time, error) {
	var now time.Time
	if err := s.db.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, now, err
	}
	rows, err := s.db.Query(ctx, `SELECT instance_id, hostname, pid, coalesce(revision, 0), started_at, seen_at
		FROM route_instances ORDER BY seen_at DESC, instance_id`)
	if err != nil {
		return nil, now, err
	}
	ins, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Instance, error) {
		var in Instance
		err := row.Scan(&in.ID, &in.Hostname, &in.PID, &in.Revision, &in.StartedAt, &in.SeenAt)
		return in, err
	})
	return ins, now, err
}
