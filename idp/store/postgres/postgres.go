// Package postgres is the PostgreSQL Store of the identity provider, on
// pgx v5 (pgxpool). Its schema migrations are embedded and applied with
// jackc/tern under an advisory lock, so many instances may start at once.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"slices"

	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/strangler/pgmigrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records the applied IDP migrations.
const VersionTable = "idp_schema_version"

// Migrate applies the embedded migrations that are not applied yet.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fsSub()
	if err != nil {
		return err
	}
	return pgmigrate.Apply(ctx, pool, sub, VersionTable)
}

// Store is a store.Store on PostgreSQL.
type Store struct{ db *pgxpool.Pool }

// New returns a store on pool. Call Migrate first.
func New(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func nullStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

const clientCols = `id, name, secrets, grants, scopes, redirect_uris, audiences, first_party, access_ttl, logged_on_refresh_ttl, returning_refresh_ttl, created_at`

func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	secrets, _ := json.Marshal(c.Secrets)
	_, err := s.db.Exec(ctx, `INSERT INTO idp_clients (`+clientCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		c.ID, c.Name, secrets, nz(c.Grants), nz(c.Scopes), nz(c.RedirectURIs), nz(c.Audiences), c.FirstParty,
		int64(c.AccessTTL), int64(c.LoggedOnRefreshTTL), int64(c.ReturningRefreshTTL), c.CreatedAt)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func nz(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanClient(row pgx.Row) (*store.Client, error) {
	var c store.Client
	var secrets []byte
	var a, l, r int64
	if err := row.Scan(&c.ID, &c.Name, &secrets, &c.Grants, &c.Scopes, &c.RedirectURIs, &c.Audiences, &c.FirstParty, &a, &l, &r, &c.CreatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.AccessTTL, c.LoggedOnRefreshTTL, c.ReturningRefreshTTL = time.Duration(a), time.Duration(l), time.Duration(r)
	if err := json.Unmarshal(secrets, &c.Secrets); err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	return scanClient(s.db.QueryRow(ctx, `SELECT `+clientCols+` FROM idp_clients WHERE id = $1`, id))
}

func (s *Store) ListClients(ctx context.Context) ([]*store.Client, error) {
	rows, err := s.db.Query(ctx, `SELECT `+clientCols+` FROM idp_clients ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return affected(s.db.Exec(ctx, `DELETE FROM idp_clients WHERE id = $1`, id))
}

func (s *Store) SetClientSecrets(ctx context.Context, id string, secrets []store.Secret) error {
	b, _ := json.Marshal(secrets)
	return affected(s.db.Exec(ctx, `UPDATE idp_clients SET secrets = $2 WHERE id = $1`, id, b))
}

const userCols = `id, username, password_hash, customer_number, claims, enabled, created_at`

func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	claims, _ := json.Marshal(u.Claims)
	if u.Claims == nil {
		claims = []byte("{}")
	}
	_, err := s.db.Exec(ctx, `INSERT INTO idp_users (`+userCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		u.ID, u.Username, u.PasswordHash, u.CustomerNumber, claims, u.Enabled, u.CreatedAt)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func scanUser(row pgx.Row) (*store.User, error) {
	var u store.User
	var claims []byte
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.CustomerNumber, &claims, &u.Enabled, &u.CreatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if err := json.Unmarshal(claims, &u.Claims); err != nil {
		return nil, err
	}
	if len(u.Claims) == 0 {
		u.Claims = nil
	}
	return &u, nil
}

func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	return scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+` FROM idp_users WHERE id = $1`, id))
}

func (s *Store) GetUserByName(ctx context.Context, username string) (*store.User, error) {
	return scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+` FROM idp_users WHERE username = $1`, username))
}

func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	return affected(s.db.Exec(ctx, `UPDATE idp_users SET password_hash = $2 WHERE id = $1`, id, hash))
}

func (s *Store) SetUserEnabled(ctx context.Context, id string, enabled bool) error {
	return affected(s.db.Exec(ctx, `UPDATE idp_users SET enabled = $2 WHERE id = $1`, id, enabled))
}

const tokenCols = `hash, kind, client_id, user_id, scope, level, family_id, issued_at, expires_at, absolute_expires_at, revoked_at, used_at, extra`

func tokenArgs(t *store.Token) []any {
	var extra []byte
	if len(t.Extra) > 0 {
		extra, _ = json.Marshal(t.Extra)
	}
	return []any{t.Hash, t.Kind, t.ClientID, nullStr(t.UserID), t.Scope, t.Level, nullStr(t.FamilyID), t.IssuedAt, t.ExpiresAt,
		nullTime(t.AbsoluteExpiresAt), nullTime(t.RevokedAt), nullTime(t.UsedAt), extra}
}

const insertToken = `INSERT INTO idp_tokens (` + tokenCols + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func insertTokens(ctx context.Context, db execer, ts []*store.Token) error {
	if len(ts) == 1 {
		_, err := db.Exec(ctx, insertToken, tokenArgs(ts[0])...)
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	}
	b := &pgx.Batch{}
	for _, t := range ts {
		b.Queue(insertToken, tokenArgs(t)...)
	}
	err := db.SendBatch(ctx, b).Close()
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) InsertTokens(ctx context.Context, ts ...*store.Token) error {
	if len(ts) <= 1 {
		return insertTokens(ctx, s.db, ts)
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return insertTokens(ctx, tx, ts) })
}

func scanToken(row pgx.Row) (*store.Token, error) {
	var t store.Token
	var user, family *string
	var abs, revoked, used *time.Time
	var extra []byte
	if err := row.Scan(&t.Hash, &t.Kind, &t.ClientID, &user, &t.Scope, &t.Level, &family, &t.IssuedAt, &t.ExpiresAt, &abs, &revoked, &used, &extra); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	t.UserID, t.FamilyID = derefStr(user), derefStr(family)
	t.AbsoluteExpiresAt, t.RevokedAt, t.UsedAt = deref(abs), deref(revoked), deref(used)
	if len(extra) > 0 {
		if err := json.Unmarshal(extra, &t.Extra); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

func (s *Store) GetToken(ctx context.Context, hash string) (*store.Token, error) {
	return scanToken(s.db.QueryRow(ctx, `SELECT `+tokenCols+` FROM idp_tokens WHERE hash = $1`, hash))
}

func (s *Store) RotateRefresh(ctx context.Context, hash string, now time.Time, issue func(old *store.Token) ([]*store.Token, error)) (*store.Token, error) {
	var result *store.Token
	var outcome error
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// The row lock makes concurrent rotations of one token take turns:
		// the second sees it used.
		t, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenCols+` FROM idp_tokens WHERE hash = $1 AND kind = 'refresh' FOR UPDATE`, hash))
		if err != nil {
			return err
		}
		result = t
		switch {
		case !t.UsedAt.IsZero():
			outcome = store.ErrTokenUsed
			return nil
		case !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt):
			outcome = store.ErrInactive
			return nil
		}
		issued, err := issue(t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE idp_tokens SET used_at = $2 WHERE hash = $1`, hash, now); err != nil {
			return err
		}
		result.UsedAt = now
		return insertTokens(ctx, tx, issued)
	})
	if err != nil {
		return nil, err
	}
	return result, outcome
}

func (s *Store) RevokeToken(ctx context.Context, hash string, now time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE idp_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE hash = $1`, hash, now)
	return affected(tag, err)
}

// hashes collects the sorted hashes a RETURNING hash query yields.
func hashes(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

func (s *Store) revokeWhere(ctx context.Context, where string, arg any, now time.Time) ([]string, error) {
	return hashes(s.db.Query(ctx, `UPDATE idp_tokens SET revoked_at = $2 WHERE `+where+` AND revoked_at IS NULL RETURNING hash`, arg, now))
}

func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]string, error) {
	if familyID == "" {
		return nil, nil
	}
	return s.revokeWhere(ctx, `family_id = $1`, familyID, now)
}

func (s *Store) RevokeUser(ctx context.Context, userID string, now time.Time) ([]string, error) {
	if userID == "" {
		return nil, nil
	}
	return s.revokeWhere(ctx, `user_id = $1`, userID, now)
}

func (s *Store) RevokeClient(ctx context.Context, clientID string, now time.Time) ([]string, error) {
	if clientID == "" {
		return nil, nil
	}
	return s.revokeWhere(ctx, `client_id = $1`, clientID, now)
}

func (s *Store) EvictOldest(ctx context.Context, userID string, keep int, now time.Time) ([]string, error) {
	return hashes(s.db.Query(ctx, `
		WITH fam AS (
			SELECT family_id, min(issued_at) AS started,
			       bool_or(kind = 'refresh' AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2) AS live
			FROM idp_tokens WHERE user_id = $1 AND family_id IS NOT NULL GROUP BY family_id
		), live AS (
			SELECT family_id, row_number() OVER (ORDER BY started DESC, family_id DESC) AS n FROM fam WHERE live
		)
		UPDATE idp_tokens t SET revoked_at = $2
		FROM live WHERE t.family_id = live.family_id AND live.n > $3 AND t.revoked_at IS NULL
		RETURNING t.hash`, userID, now, keep))
}

func (s *Store) CreateCode(ctx context.Context, c *store.AuthCode) error {
	_, err := s.db.Exec(ctx, `INSERT INTO idp_codes (hash, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, expires_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`, c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.Scope, c.CodeChallenge, c.CodeChallengeMethod, c.ExpiresAt)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) ConsumeCode(ctx context.Context, hash string, now time.Time) (*store.AuthCode, error) {
	var c store.AuthCode
	var used *time.Time
	scan := func(row pgx.Row) error {
		return row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &c.CodeChallenge, &c.CodeChallengeMethod, &c.ExpiresAt, &used)
	}
	const cols = `hash, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, expires_at, used_at`
	err := scan(s.db.QueryRow(ctx, `UPDATE idp_codes SET used_at = $2 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING `+cols, hash, now))
	if err == nil {
		c.UsedAt = deref(used)
		return &c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err := scan(s.db.QueryRow(ctx, `SELECT `+cols+` FROM idp_codes WHERE hash = $1`, hash)); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.UsedAt = deref(used)
	return &c, store.ErrInactive
}

func (s *Store) PutKey(ctx context.Context, k *store.SigningKey) error {
	return putKey(ctx, s.db, "idp_keys", k)
}

func (s *Store) ListKeys(ctx context.Context) ([]*store.SigningKey, error) {
	return listKeys(ctx, s.db, "idp_keys")
}

// putKey and listKeys serve idp_keys (JWTs) and idp_jpt_keys (JPTs).
func putKey(ctx context.Context, db *pgxpool.Pool, table string, k *store.SigningKey) error {
	_, err := db.Exec(ctx, `INSERT INTO `+table+` (id, alg, private, sealed, created_at, active_at, retired_at, expires_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (id) DO UPDATE SET retired_at = excluded.retired_at, expires_at = excluded.expires_at, active_at = excluded.active_at`,
		k.ID, k.Alg, k.Private, k.Sealed, k.CreatedAt, k.ActiveAt, nullTime(k.RetiredAt), nullTime(k.ExpiresAt))
	return err
}

func listKeys(ctx context.Context, db *pgxpool.Pool, table string) ([]*store.SigningKey, error) {
	rows, err := db.Query(ctx, `SELECT id, alg, private, sealed, created_at, active_at, retired_at, expires_at FROM `+table+` ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var retired, expires *time.Time
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private, &k.Sealed, &k.CreatedAt, &k.ActiveAt, &retired, &expires); err != nil {
			return nil, err
		}
		k.RetiredAt, k.ExpiresAt = deref(retired), deref(expires)
		out = append(out, &k)
	}
	return out, rows.Err()
}

func (s *Store) Audit(ctx context.Context, events ...store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	_, err := s.db.CopyFrom(ctx, pgx.Identifier{"idp_audit"},
		[]string{"at", "event", "client_id", "user_id", "grant_type", "outcome", "reason", "remote_ip"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := events[i]
			return []any{e.At, e.Event, e.ClientID, e.UserID, e.Grant, e.Outcome, e.Reason, e.RemoteIP}, nil
		}))
	return err
}

// AuditEvents returns the newest audit rows, newest last (for tests and the
// admin API).
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT at, event, client_id, user_id, grant_type, outcome, reason, remote_ip FROM
		(SELECT * FROM idp_audit ORDER BY id DESC LIMIT $1) a ORDER BY id`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
		if err := rows.Scan(&e.At, &e.Event, &e.ClientID, &e.UserID, &e.Grant, &e.Outcome, &e.Reason, &e.RemoteIP); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) DeleteExpired(ctx context.Context, before time.Time, batch int) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM idp_tokens WHERE hash IN
		(SELECT hash FROM idp_tokens WHERE purge_at < $1 ORDER BY purge_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, batch)
	if err != nil {
		return 0, err
	}
	n := int(tag.RowsAffected())
	if n < batch {
		tag, err = s.db.Exec(ctx, `DELETE FROM idp_codes WHERE hash IN
			(SELECT hash FROM idp_codes WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, batch-n)
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
	}
	if n < batch {
		m, err := s.deleteExpiredFederatedLogins(ctx, before, batch-n)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }
