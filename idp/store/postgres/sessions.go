package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const sessionCols = `hash, visitor_hash, level, user_id, customer_number, login_at, created_at, last_seen, idle_expires, expires, attrs, amr`

func sessionArgs(ss *store.Session) []any {
	attrs := ss.Attrs
	if attrs == nil {
		attrs = map[string]string{}
	}
	b, _ := json.Marshal(attrs)
	return []any{ss.ID, ss.VisitorID, ss.Level, nullStr(ss.UserID), ss.CustomerNumber, nullTime(ss.LoginAt),
		ss.CreatedAt, ss.LastSeen, ss.IdleExpires, ss.Expires, b, ss.AMR}
}

const insertSession = `INSERT INTO idp_sessions (` + sessionCols + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`

func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	_, err := s.db.Exec(ctx, insertSession, sessionArgs(ss)...)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) GetSession(ctx context.Context, hash string) (*store.Session, error) {
	var ss store.Session
	var user *string
	var login *time.Time
	var attrs []byte
	err := s.db.QueryRow(ctx, `SELECT `+sessionCols+` FROM idp_sessions WHERE hash = $1`, hash).Scan(&ss.ID, &ss.VisitorID, &ss.Level,
		&user, &ss.CustomerNumber, &login, &ss.CreatedAt, &ss.LastSeen, &ss.IdleExpires, &ss.Expires, &attrs, &ss.AMR)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	ss.UserID, ss.LoginAt = derefStr(user), deref(login)
	if err := json.Unmarshal(attrs, &ss.Attrs); err != nil {
		return nil, err
	}
	if len(ss.Attrs) == 0 {
		ss.Attrs = nil
	}
	return &ss, nil
}

func (s *Store) ReplaceSession(ctx context.Context, oldHash string, ns *store.Session) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Of two concurrent replacements of one session, the second waits
		// for the first's row lock, then finds the row gone.
		if err := affected(tx.Exec(ctx, `DELETE FROM idp_sessions WHERE hash = $1`, oldHash)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertSession, sessionArgs(ns)...)
		return err
	})
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) TouchSession(ctx context.Context, hash string, lastSeen, idleExpires time.Time) error {
	return affected(s.db.Exec(ctx, `UPDATE idp_sessions SET last_seen = $2, idle_expires = $3 WHERE hash = $1`, hash, lastSeen, idleExpires))
}

func (s *Store) UpdateSessionAttrs(ctx context.Context, hash string, attrs map[string]string) error {
	if attrs == nil {
		attrs = map[string]string{}
	}
	b, _ := json.Marshal(attrs)
	return affected(s.db.Exec(ctx, `UPDATE idp_sessions SET attrs = $2 WHERE hash = $1`, hash, b))
}

func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idp_sessions WHERE hash = $1`, hash)
	return err
}

func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	var out []string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if out, err = hashes(tx.Query(ctx, `DELETE FROM idp_sessions WHERE user_id = $1 RETURNING hash`, userID)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM idp_visitors WHERE user_id = $1`, userID)
		return err
	})
	return out, err
}

func (s *Store) PutVisitor(ctx context.Context, hash, userID string, expires time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO idp_visitors (hash, user_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (hash) DO UPDATE SET user_id = excluded.user_id, expires_at = excluded.expires_at`, hash, nullStr(userID), expires)
	return err
}

func (s *Store) GetVisitor(ctx context.Context, hash string, now time.Time) (string, error) {
	var user *string
	err := s.db.QueryRow(ctx, `SELECT user_id FROM idp_visitors WHERE hash = $1 AND expires_at > $2`, hash, now).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return derefStr(user), err
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM idp_sessions WHERE hash IN
		(SELECT hash FROM idp_sessions WHERE purge_at <= $1 ORDER BY purge_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
	if err != nil {
		return 0, err
	}
	n := int(tag.RowsAffected())
	if n < limit {
		tag, err = s.db.Exec(ctx, `DELETE FROM idp_visitors WHERE hash IN
			(SELECT hash FROM idp_visitors WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit-n)
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}

// JPTKeys returns the storage of the keys that sign JPTs (idp/session):
// a table apart from the JWT signing keys, so that they are never
// published in the JWKS.
func (s *Store) JPTKeys() *JPTKeys { return &JPTKeys{db: s.db} }

// JPTKeys keeps the JPT signing keys (an idp.KeyStorage).
type JPTKeys struct{ db *pgxpool.Pool }

// PutKey stores a key, replacing the one with the same ID.
func (k *JPTKeys) PutKey(ctx context.Context, sk *store.SigningKey) error {
	return putKey(ctx, k.db, "idp_jpt_keys", sk)
}

// ListKeys returns every stored key.
func (k *JPTKeys) ListKeys(ctx context.Context) ([]*store.SigningKey, error) {
	return listKeys(ctx, k.db, "idp_jpt_keys")
}
