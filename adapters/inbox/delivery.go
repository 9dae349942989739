package inbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/jackc/pgx/v5"
)

// Claim takes up to limit due events of the adapters given (all when
// empty) for delivery: it pushes their next attempt lease into the future
// and counts the attempt, in one statement (one round trip, one commit)
// that picks them with FOR UPDATE SKIP LOCKED, so that many workers on
// many instances never take the same event, and an event whose worker
// died comes back when the lease ends. For an adapter listed in ordered,
// only the oldest pending event of each order key is due, so those events
// go out one at a time, in order (a claim holds at most one event of each
// order key). The events come oldest first.
//
// The claim writes a new claim token (Event.Claim) on its events:
// settling an event (Delivered, Retry, DeadLetter) acts only under it, and
// ends it, so a worker whose lease ran out (it stalled) and whose event
// another worker claimed meanwhile cannot settle it.
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration, ordered []string) ([]*Event, error) {
	claim, start := newClaim(), time.Now()
	rows, err := s.db.Query(ctx, `
		WITH due AS (
			SELECT id FROM webhook_inbox i
			WHERE status = 'pending' AND next_attempt_at <= now()
			  AND (order_key IS NULL OR NOT (adapter = ANY($2)) OR NOT EXISTS (
			        SELECT 1 FROM webhook_inbox o
			        WHERE o.adapter = i.adapter AND o.order_key = i.order_key AND o.status = 'pending' AND o.id < i.id))
			ORDER BY next_attempt_at, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED)
		UPDATE webhook_inbox w SET attempts = w.attempts + 1, next_attempt_at = now() + $3::interval, claim_token = $4
		FROM due WHERE w.id = due.id
		RETURNING w.id, w.adapter, w.event_id, w.received_at, w.headers, w.body, w.status, w.attempts, w.order_key, coalesce(w.traceparent, '')`,
		limit, ordered, lease, claim)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		e := &Event{}
		var hdr []byte
		var orderKey *string
		if err := rows.Scan(&e.ID, &e.Adapter, &e.EventID, &e.ReceivedAt, &hdr, &e.Body, &e.Status, &e.Attempts, &orderKey, &e.TraceParent); err != nil {
			return nil, err
		}
		if orderKey != nil {
			e.OrderKey = *orderKey
		}
		if err := json.Unmarshal(hdr, &e.Header); err != nil {
			return nil, err
		}
		e.Claim, e.LeaseEnds = claim, start.Add(lease)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Event) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Renew starts the lease of claimed events afresh, for lease from now:
// those of evs still pending under the claim that returned them. It
// returns those, in their order; the others' claims were lost (their lease
// ran out and another worker claimed them, or they were settled or
// replayed meanwhile) and the caller must not deliver them. A worker
// delivering a claimed batch one event after another renews the rest of
// the batch before each, so the batch stays its own while it progresses.
func (s *Store) Renew(ctx context.Context, evs []*Event, lease time.Duration) ([]*Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	ids, claims := make([]int64, len(evs)), make([]int64, len(evs))
	for i, e := range evs {
		ids[i], claims[i] = e.ID, e.Claim
	}
	start := time.Now()
	rows, err := s.db.Query(ctx, `UPDATE webhook_inbox w SET next_attempt_at = now() + $3::interval
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, claim)
		WHERE w.id = u.id AND w.claim_token = u.claim AND w.status = 'pending'
		RETURNING w.id`, ids, claims, lease)
	if err != nil {
		return nil, err
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	return keep(evs, held, start.Add(lease)), nil
}

// keep returns the events of evs whose ids are in held, in order, with
// their lease ending at ends.
func keep(evs []*Event, held []int64, ends time.Time) []*Event {
	out := make([]*Event, 0, len(held))
	for _, e := range evs {
		if slices.Contains(held, e.ID) {
			e.LeaseEnds = ends
			out = append(out, e)
		}
	}
	return out
}

// claimRef names an event under one claim.
type claimRef struct{ id, claim int64 }

// Delivered marks an event delivered, if it is still under e's claim
// (ErrClaimLost otherwise). Concurrent marks (of every worker of this
// process) share one statement and one commit. After Close (the process
// is stopping while a worker still records the outcome of an attempt the
// target answered) the mark is committed on its own: refusing it would
// leave a delivered event pending, and another instance would deliver it
// again once its lease ends.
func (s *Store) Delivered(ctx context.Context, e *Event) error {
	ref := claimRef{e.ID, e.Claim}
	ok, err := s.delivered.Submit(ctx, ref)
	if errors.Is(err, groupcommit.ErrClosed) {
		var oks []bool
		if oks, err = s.commitDelivered(ctx, []claimRef{ref}); err == nil {
			ok = oks[0]
		}
	}
	if err == nil && !ok {
		err = ErrClaimLost
	}
	return err
}

func (s *Store) commitDelivered(ctx context.Context, refs []claimRef) ([]bool, error) {
	ids, claims := make([]int64, len(refs)), make([]int64, len(refs))
	for i, r := range refs {
		ids[i], claims[i] = r.id, r.claim
	}
	rows, err := s.db.Query(ctx, `UPDATE webhook_inbox w SET status = 'delivered', delivered_at = now(), last_error = NULL, claim_token = NULL
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, claim)
		WHERE w.id = u.id AND w.claim_token = u.claim AND w.status = 'pending'
		RETURNING w.id, u.claim`, ids, claims)
	if err != nil {
		return nil, err
	}
	done := map[claimRef]bool{}
	for rows.Next() {
		var r claimRef
		if err := rows.Scan(&r.id, &r.claim); err != nil {
			rows.Close()
			return nil, err
		}
		done[r] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]bool, len(refs))
	for i, r := range refs {
		out[i] = done[r]
	}
	return out, nil
}

// Retry schedules another attempt at next, if the event is still under
// e's claim (ErrClaimLost otherwise).
func (s *Store) Retry(ctx context.Context, e *Event, next time.Time, reason string) error {
	return s.settle(ctx, e, `UPDATE webhook_inbox SET next_attempt_at = $3, last_error = $4, claim_token = NULL
		WHERE id = $1 AND claim_token = $2 AND status = 'pending'`, next, reason)
}

// DeadLetter gives up on an event (it stays stored for inspection and
// replay), if it is still under e's claim (ErrClaimLost otherwise).
func (s *Store) DeadLetter(ctx context.Context, e *Event, reason string) error {
	return s.settle(ctx, e, `UPDATE webhook_inbox SET status = 'dead', last_error = $3, claim_token = NULL
		WHERE id = $1 AND claim_token = $2 AND status = 'pending'`, reason)
}

func (s *Store) settle(ctx context.Context, e *Event, sql string, args ...any) error {
	tag, err := s.db.Exec(ctx, sql, append([]any{e.ID, e.Claim}, args...)...)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrClaimLost
	}
	return err
}

// Replay puts an event back to pending, due now.
func (s *Store) Replay(ctx context.Context, adapter, eventID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_inbox SET status = 'pending', next_attempt_at = now(), attempts = 0, claim_token = NULL WHERE adapter = $1 AND event_id = $2`, adapter, eventID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}
