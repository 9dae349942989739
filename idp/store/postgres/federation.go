package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/jackc/pgx/v5"
)

// The federated login's storage (idp/federation.Storage).

const linkCols = `issuer, subject, user_id, provider, tokens, created_at, last_login`

func (s *Store) GetFederatedLink(ctx context.Context, issuer, subject string) (*store.FederatedLink, error) {
	var l store.FederatedLink
	err := s.db.QueryRow(ctx, `SELECT `+linkCols+` FROM idp_federated_links WHERE issuer = $1 AND subject = $2`, issuer, subject).
		Scan(&l.Issuer, &l.Subject, &l.UserID, &l.Provider, &l.Tokens, &l.CreatedAt, &l.LastLogin)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func (s *Store) CreateFederatedLink(ctx context.Context, l *store.FederatedLink) error {
	_, err := s.db.Exec(ctx, `INSERT INTO idp_federated_links (`+linkCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		l.Issuer, l.Subject, l.UserID, l.Provider, l.Tokens, l.CreatedAt, l.LastLogin)
	switch {
	case isUnique(err):
		return store.ErrExists
	case isForeignKey(err):
		return store.ErrNotFound
	}
	return err
}

func (s *Store) TouchFederatedLink(ctx context.Context, issuer, subject string, at time.Time, tokens []byte) error {
	return affected(s.db.Exec(ctx, `UPDATE idp_federated_links SET last_login = $3, tokens = $4 WHERE issuer = $1 AND subject = $2`,
		issuer, subject, at, tokens))
}

func (s *Store) UsersByEmail(ctx context.Context, email string, limit int) ([]*store.User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+userCols+` FROM idp_users WHERE claims ? 'email' AND lower(claims->>'email') = lower($1)
		ORDER BY created_at, id LIMIT $2`, email, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *Store) SetUserClaims(ctx context.Context, id string, claims map[string]any) error {
	b, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	if claims == nil {
		b = []byte("{}")
	}
	return affected(s.db.Exec(ctx, `UPDATE idp_users SET claims = $2 WHERE id = $1`, id, b))
}

func (s *Store) CreateFederatedLogin(ctx context.Context, l *store.FederatedLogin) error {
	_, err := s.db.Exec(ctx, `INSERT INTO idp_federated_logins (id, provider, pending, expires_at) VALUES ($1,$2,$3,$4)`,
		l.ID, l.Provider, l.Pending, l.ExpiresAt)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) ConsumeFederatedLogin(ctx context.Context, id string, now time.Time) (*store.FederatedLogin, error) {
	var l store.FederatedLogin
	err := s.db.QueryRow(ctx, `DELETE FROM idp_federated_logins WHERE id = $1 RETURNING id, provider, pending, expires_at`, id).
		Scan(&l.ID, &l.Provider, &l.Pending, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !now.Before(l.ExpiresAt) {
		return &l, store.ErrInactive
	}
	return &l, nil
}

func (s *Store) deleteExpiredFederatedLogins(ctx context.Context, before time.Time, batch int) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM idp_federated_logins WHERE id IN
		(SELECT id FROM idp_federated_logins WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, batch)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
