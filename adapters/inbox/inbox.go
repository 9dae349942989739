// Package inbox is the durable web-hook inbox on PostgreSQL: an accepted
// event is a committed row before its sender gets a 2xx, and a repeat of
// an event id is recognised by a unique key in the same statement as the
// insert (never look-then-insert).
package inbox

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/ficus-gw/ficus/strangler/pgmigrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records the applied inbox migrations.
const VersionTable = "adapters_schema_version"

// Migrate applies the inbox migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgmigrate.Apply(ctx, pool, sub, VersionTable)
}

// Event is one received web-hook.
type Event struct {
	ID         int64
	Adapter    string
	EventID    string
	ReceivedAt time.Time
	Header     http.Header
	Body       []byte
	Status     string
	Attempts   int
	OrderKey   string
	LastError  string
	// TraceParent is the W3C traceparent of the span that ingested the
	// event, "" when tracing was off: deliveries continue its trace.
	TraceParent string
}

// Store is the inbox.
type Store struct{ db *pgxpool.Pool }

// New returns the inbox on pool (call Migrate first).
func New(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// Insert stores an event, due for delivery at once, and reports whether it
// is new; a repeat of the adapter's event id stores nothing and returns
// false. It returns only once the row is committed, and fills in the new
// event's ID, ReceivedAt and Status.
func (s *Store) Insert(ctx context.Context, e *Event) (bool, error) {
	return s.insert(ctx, e, 0)
}

// InsertClaimed is Insert for an event that its caller delivers at once
// (synchronous mode): the event is stored already claimed, its first
// attempt counted and its lease running, so no worker takes it unless the
// caller reports a failure (Retry) or never reports back before the lease
// ends.
func (s *Store) InsertClaimed(ctx context.Context, e *Event, lease time.Duration) (bool, error) {
	return s.insert(ctx, e, max(lease, time.Millisecond))
}

func (s *Store) insert(ctx context.Context, e *Event, lease time.Duration) (bool, error) {
	hdr, err := json.Marshal(e.Header)
	if err != nil {
		return false, err
	}
	var orderKey, traceParent *string
	if e.OrderKey != "" {
		orderKey = &e.OrderKey
	}
	if e.TraceParent != "" {
		traceParent = &e.TraceParent
	}
	attempts := 0
	if lease > 0 {
		attempts = 1
	}
	err = s.db.QueryRow(ctx, `INSERT INTO webhook_inbox (adapter, event_id, headers, body, order_key, attempts, next_attempt_at, traceparent)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval, $8) ON CONFLICT (adapter, event_id) DO NOTHING
		RETURNING id, received_at`, e.Adapter, e.EventID, hdr, e.Body, orderKey, attempts, lease, traceParent).Scan(&e.ID, &e.ReceivedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // a repeat
	}
	if err != nil {
		return false, err
	}
	e.Status, e.Attempts = "pending", attempts
	return true, nil
}

// Get returns the stored event of an adapter by its event id.
func (s *Store) Get(ctx context.Context, adapter, eventID string) (*Event, error) {
	e := &Event{}
	var hdr []byte
	var orderKey *string
	var lastErr *string
	err := s.db.QueryRow(ctx, `SELECT id, adapter, event_id, received_at, headers, body, status, attempts, order_key, last_error, coalesce(traceparent, '')
		FROM webhook_inbox WHERE adapter = $1 AND event_id = $2`, adapter, eventID).
		Scan(&e.ID, &e.Adapter, &e.EventID, &e.ReceivedAt, &hdr, &e.Body, &e.Status, &e.Attempts, &orderKey, &lastErr, &e.TraceParent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if lastErr != nil {
		e.LastError = *lastErr
	}
	if orderKey != nil {
		e.OrderKey = *orderKey
	}
	return e, json.Unmarshal(hdr, &e.Header)
}

// Count returns how many events an adapter has stored.
func (s *Store) Count(ctx context.Context, adapter string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM webhook_inbox WHERE adapter = $1`, adapter).Scan(&n)
	return n, err
}

// List returns the newest events (without bodies), optionally of one
// adapter and one status.
func (s *Store) List(ctx context.Context, adapter, status string, limit int) ([]*Event, error) {
	rows, err := s.db.Query(ctx, `SELECT id, adapter, event_id, received_at, status, attempts, coalesce(last_error, '')
		FROM webhook_inbox WHERE ($1 = '' OR adapter = $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3`, adapter, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		e := &Event{}
		if err := rows.Scan(&e.ID, &e.Adapter, &e.EventID, &e.ReceivedAt, &e.Status, &e.Attempts, &e.LastError); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Purge deletes delivered and dead events received before cutoff (their
// ids stop counting as duplicates) and returns how many went. Pending
// events are never purged.
func (s *Store) Purge(ctx context.Context, adapter string, cutoff time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM webhook_inbox WHERE ($1 = '' OR adapter = $1) AND status IN ('delivered', 'dead') AND received_at < $2`,
		adapter, cutoff)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
