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
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/ficus-gw/ficus/strangler/pgmigrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// Claim is the token of the claim that returned the event (Claim,
	// InsertClaimed, renewed by Renew); 0 for an event not claimed. Renew,
	// Delivered, Retry and DeadLetter act only while it is still the
	// event's claim, and fail with ErrClaimLost once another claim took it.
	Claim int64
	// LeaseEnds is, on this process's clock, a time before which the
	// claim's lease does not end (it was taken from before the statement
	// that set the lease): an attempt that ends by then is not repeated by
	// another worker.
	LeaseEnds time.Time
}

// ErrClaimLost is returned for an event whose claim is no longer the
// caller's: its lease ran out and another worker claimed it, or it was
// replayed or settled meanwhile. The caller must not deliver it.
var ErrClaimLost = errors.New("the event's claim was lost (its lease ran out and it was claimed again)")

// newClaim returns a claim token: random, never 0.
func newClaim() int64 {
	for {
		if c := rand.Int64(); c != 0 {
			return c
		}
	}
}

// Store is the inbox. Its inserts and delivered marks are group-committed
// (strangler/groupcommit): concurrent calls share one statement and one
// commit, and each returns only once the commit holding its row is done.
// Close stops that.
type Store struct {
	db        *pgxpool.Pool
	inserts   groupcommit.Batcher[insertItem, inserted]
	delivered groupcommit.Batcher[claimRef, bool]
}

// New returns the inbox on pool (call Migrate first), group-committing
// with opts (the defaults when none is given).
func New(pool *pgxpool.Pool, opts ...groupcommit.Options) *Store {
	s := &Store{db: pool}
	s.inserts.Commit, s.inserts.Split = s.commitInserts, isDataError
	s.delivered.Commit = s.commitDelivered
	s.inserts.Name, s.delivered.Name = "inbox", "delivered"
	for _, o := range opts {
		o.Apply(&s.inserts)
		o.Apply(&s.delivered)
	}
	return s
}

// Close commits the inserts and marks already queued and stops taking new
// inserts (they fail with groupcommit.ErrClosed); a delivered mark after
// Close is committed on its own. The pool stays open.
func (s *Store) Close() {
	s.inserts.Close()
	s.delivered.Close()
}

// isDataError reports whether PostgreSQL refused a statement for a value
// in it (classes 22, data exception, and 23, integrity constraint): then
// one row of a batch may be at fault, and each row is tried alone.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// Insert stores an event, due for delivery at once, and reports whether it
// is new; a repeat of the adapter's event id stores nothing and returns
// false. It returns only once the row is committed, and fills in the new
// event's ID, ReceivedAt and Status.
//
// When ctx ends first it returns ctx's error; the event may then still be
// stored (its batch was committing), and a repeat finds it.
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

type insertItem struct {
	adapter, eventID string
	header           []byte
	body             []byte
	orderKey         *string
	traceParent      *string // W3C traceparent of the ingest, for delivery spans
	attempts         int32
	lease            time.Duration
	claim            *int64
}

type inserted struct {
	fresh      bool
	id         int64
	receivedAt time.Time
}

func (s *Store) insert(ctx context.Context, e *Event, lease time.Duration) (bool, error) {
	hdr, err := json.Marshal(e.Header)
	if err != nil {
		return false, err
	}
	it := insertItem{adapter: e.Adapter, eventID: e.EventID, header: hdr, body: e.Body, lease: lease}
	if e.OrderKey != "" {
		it.orderKey = &e.OrderKey
	}
	if e.TraceParent != "" {
		it.traceParent = &e.TraceParent
	}
	var claim int64
	if lease > 0 {
		it.attempts = 1
		claim = newClaim()
		it.claim = &claim
	}
	start := time.Now()
	r, err := s.inserts.Submit(ctx, it)
	if err != nil || !r.fresh {
		return false, err
	}
	e.ID, e.ReceivedAt, e.Status, e.Attempts, e.Claim = r.id, r.receivedAt, "pending", int(it.attempts), claim
	if lease > 0 {
		e.LeaseEnds = start.Add(lease)
	}
	return true, nil
}

// insertRows is one statement for a whole batch: the duplicate check is
// the unique key in the statement itself (ON CONFLICT DO NOTHING), rows go
// in in their order of arrival (ids ascend, which ordered delivery keeps
// to), and what it returns names the rows that were new.
const insertRows = `INSERT INTO webhook_inbox (adapter, event_id, headers, body, order_key, attempts, next_attempt_at, traceparent, claim_token)
	SELECT u.adapter, u.event_id, u.headers::jsonb, u.body, u.order_key, u.attempts, now() + u.lease_us * interval '1 microsecond', u.traceparent, u.claim_token
	FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::int[], $7::bigint[], $8::text[], $9::bigint[]) WITH ORDINALITY
	     AS u(adapter, event_id, headers, body, order_key, attempts, lease_us, traceparent, claim_token, ord)
	ORDER BY u.ord
	ON CONFLICT (adapter, event_id) DO NOTHING
	RETURNING id, received_at, adapter, event_id`

type eventKey struct{ adapter, eventID string }

// commitInserts stores a batch in one statement (one implicit
// transaction). A repeat of an event id within the batch is left out of
// the statement and answered as a repeat: the first arrival wins, as it
// would one statement at a time.
func (s *Store) commitInserts(ctx context.Context, items []insertItem) ([]inserted, error) {
	first := make(map[eventKey]int, len(items))
	n := len(items)
	adapters, ids, hdrs := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	bodies, keys, traces := make([][]byte, 0, n), make([]*string, 0, n), make([]*string, 0, n)
	attempts, leases, claims := make([]int32, 0, n), make([]int64, 0, n), make([]*int64, 0, n)
	for i, it := range items {
		k := eventKey{it.adapter, it.eventID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		adapters, ids, hdrs = append(adapters, it.adapter), append(ids, it.eventID), append(hdrs, string(it.header))
		bodies, keys, traces = append(bodies, it.body), append(keys, it.orderKey), append(traces, it.traceParent)
		attempts, leases, claims = append(attempts, it.attempts), append(leases, it.lease.Microseconds()), append(claims, it.claim)
	}
	rows, err := s.db.Query(ctx, insertRows, adapters, ids, hdrs, bodies, keys, attempts, leases, traces, claims)
	if err != nil {
		return nil, err
	}
	out := make([]inserted, n)
	for rows.Next() {
		var r inserted
		var k eventKey
		if err := rows.Scan(&r.id, &r.receivedAt, &k.adapter, &k.eventID); err != nil {
			rows.Close()
			return nil, err
		}
		r.fresh = true
		out[first[k]] = r
	}
	rows.Close() // the statement's commit is done once its rows are read
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
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
