package inbox

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claim takes up to limit due events of the adapters given (all when
// empty) for delivery: it pushes their next attempt lease into the future
// and counts the attempt, in one short transaction with FOR UPDATE SKIP
// LOCKED, so that many workers on many instances never take the same
// event, and an event whose worker died comes back when the lease ends.
// For an adapter listed in ordered, only the oldest pending event of each
// order key is due, so those events go out one at a time, in order.
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration, ordered []string) ([]*Event, error) {
	var out []*Event
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, adapter, event_id, received_at, headers, body, status, attempts, order_key, coalesce(traceparent, '')
			FROM webhook_inbox i
			WHERE status = 'pending' AND next_attempt_at <= now()
			  AND (order_key IS NULL OR NOT (adapter = ANY($2)) OR NOT EXISTS (
			        SELECT 1 FROM webhook_inbox o
			        WHERE o.adapter = i.adapter AND o.order_key = i.order_key AND o.status = 'pending' AND o.id < i.id))
			ORDER BY next_attempt_at, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED`, limit, ordered)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			e := &Event{}
			var hdr []byte
			var orderKey *string
			if err := rows.Scan(&e.ID, &e.Adapter, &e.EventID, &e.ReceivedAt, &hdr, &e.Body, &e.Status, &e.Attempts, &orderKey, &e.TraceParent); err != nil {
				rows.Close()
				return err
			}
			if orderKey != nil {
				e.OrderKey = *orderKey
			}
			if err := json.Unmarshal(hdr, &e.Header); err != nil {
				rows.Close()
				return err
			}
			e.Attempts++
			out = append(out, e)
			ids = append(ids, e.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_inbox SET attempts = attempts + 1, next_attempt_at = now() + $2::interval WHERE id = ANY($1)`,
			ids, lease)
		return err
	})
	return out, err
}

// Delivered marks an event delivered. Concurrent marks (of every worker
// of this process) share one statement and one commit.
func (s *Store) Delivered(ctx context.Context, id int64) error {
	_, err := s.delivered.Submit(ctx, id)
	return err
}

func (s *Store) commitDelivered(ctx context.Context, ids []int64) ([]struct{}, error) {
	_, err := s.db.Exec(ctx, `UPDATE webhook_inbox SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return make([]struct{}, len(ids)), nil
}

// Retry schedules another attempt at next.
func (s *Store) Retry(ctx context.Context, id int64, next time.Time, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE webhook_inbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, next, reason)
	return err
}

// DeadLetter gives up on an event (it stays stored for inspection and
// replay).
func (s *Store) DeadLetter(ctx context.Context, id int64, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE webhook_inbox SET status = 'dead', last_error = $2 WHERE id = $1`, id, reason)
	return err
}

// Replay puts an event back to pending, due now.
func (s *Store) Replay(ctx context.Context, adapter, eventID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_inbox SET status = 'pending', next_attempt_at = now(), attempts = 0 WHERE adapter = $1 AND event_id = $2`, adapter, eventID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}
