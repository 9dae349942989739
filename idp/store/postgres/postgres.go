// Package postgres is the PostgreSQL Store of the identity provider, on
// pgx v5 (pgxpool). Its schema migrations are embedded and applied with
// jackc/tern under an advisory lock, so many instances may start at once.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
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

// Store is a store.Store on PostgreSQL. Token inserts and refresh
// rotations are group-committed (strangler/groupcommit): concurrent calls
// share one transaction, and each returns only once that transaction has
// committed. Close stops that.
type Store struct {
	db        *pgxpool.Pool
	inserts   groupcommit.Batcher[[]*store.Token, struct{}]
	rotations groupcommit.Batcher[rotation, rotated]
}

// New returns a store on pool, group-committing with opts (the defaults
// when none is given). Call Migrate first.
func New(pool *pgxpool.Pool, opts ...groupcommit.Options) *Store {
	s := &Store{db: pool}
	s.inserts.Commit, s.inserts.Split = s.commitInserts, isDataError
	s.rotations.Commit, s.rotations.Split = s.commitRotations, isDataError
	s.inserts.Name, s.rotations.Name = "tokens", "rotations"
	for _, o := range opts {
		o.Apply(&s.inserts)
		o.Apply(&s.rotations)
	}
	return s
}

// Close commits the writes already queued and stops taking new ones (they
// fail with groupcommit.ErrClosed). The pool stays open.
func (s *Store) Close() {
	s.inserts.Close()
	s.rotations.Close()
}

// isDataError reports whether PostgreSQL refused a statement for a value
// in it (classes 22 and 23: a bad value, a duplicate key), or ended the
// transaction in a deadlock (40P01: a batch of rotations against a
// revocation of a family, say): one call of a batch may be at fault, so
// each is tried alone.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || pe.Code == "40P01")
}

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

const clientCols = `id, name, secrets, grants, scopes, redirect_uris, audiences, first_party, access_ttl, logged_on_refresh_ttl, returning_refresh_ttl, created_at,
	post_logout_redirect_uris, subject_type, sector_identifier`

func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	secrets, _ := json.Marshal(c.Secrets)
	_, err := s.db.Exec(ctx, `INSERT INTO idp_clients (`+clientCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
		c.ID, c.Name, secrets, nz(c.Grants), nz(c.Scopes), nz(c.RedirectURIs), nz(c.Audiences), c.FirstParty,
		int64(c.AccessTTL), int64(c.LoggedOnRefreshTTL), int64(c.ReturningRefreshTTL), c.CreatedAt,
		nz(c.PostLogoutRedirectURIs), c.SubjectType, c.SectorIdentifier)
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
	if err := row.Scan(&c.ID, &c.Name, &secrets, &c.Grants, &c.Scopes, &c.RedirectURIs, &c.Audiences, &c.FirstParty, &a, &l, &r, &c.CreatedAt,
		&c.PostLogoutRedirectURIs, &c.SubjectType, &c.SectorIdentifier); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.AccessTTL, c.LoggedOnRefreshTTL, c.ReturningRefreshTTL = time.Duration(a), time.Duration(l), time.Duration(r)
	if len(c.PostLogoutRedirectURIs) == 0 {
		c.PostLogoutRedirectURIs = nil
	}
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

const tokenCols = `hash, kind, client_id, user_id, scope, level, family_id, issued_at, expires_at, absolute_expires_at, revoked_at, used_at, extra, auth`

// authJSON is the auth column of an authentication (NULL for nil).
func authJSON(a *store.Authentication) []byte {
	if a == nil {
		return nil
	}
	b, _ := json.Marshal(a)
	return b
}

// scanAuth reads the auth column.
func scanAuth(b []byte) (*store.Authentication, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a store.Authentication
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// insertTokenRows stores the tokens of a whole batch in one statement.
const insertTokenRows = `INSERT INTO idp_tokens (` + tokenCols + `)
	SELECT u.hash, u.kind, u.client_id, u.user_id, u.scope, u.level, u.family_id, u.issued_at, u.expires_at,
	       u.absolute_expires_at, u.revoked_at, u.used_at, u.extra::jsonb, u.auth::jsonb
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
	            $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[])
	     AS u(hash, kind, client_id, user_id, scope, level, family_id, issued_at, expires_at, absolute_expires_at, revoked_at, used_at, extra, auth)`

// tokenColumns are the tokens' values as one array per column.
type tokenColumns struct {
	hash, kind, client, scope, level []string
	user, family, extra, auth        []*string
	issued, expires                  []time.Time
	absolute, revoked, used          []*time.Time
}

func (c *tokenColumns) add(t *store.Token) {
	var extra *string
	if len(t.Extra) > 0 {
		b, _ := json.Marshal(t.Extra)
		extra = nullStr(string(b))
	}
	c.hash, c.kind, c.client, c.scope, c.level = append(c.hash, t.Hash), append(c.kind, t.Kind), append(c.client, t.ClientID),
		append(c.scope, t.Scope), append(c.level, t.Level)
	c.user, c.family, c.extra = append(c.user, nullStr(t.UserID)), append(c.family, nullStr(t.FamilyID)), append(c.extra, extra)
	c.issued, c.expires = append(c.issued, t.IssuedAt), append(c.expires, t.ExpiresAt)
	c.absolute, c.revoked, c.used = append(c.absolute, nullTime(t.AbsoluteExpiresAt)), append(c.revoked, nullTime(t.RevokedAt)),
		append(c.used, nullTime(t.UsedAt))
	var auth *string
	if b := authJSON(t.Auth); b != nil {
		auth = nullStr(string(b))
	}
	c.auth = append(c.auth, auth)
}

func (c *tokenColumns) args() []any {
	return []any{c.hash, c.kind, c.client, c.user, c.scope, c.level, c.family, c.issued, c.expires, c.absolute, c.revoked, c.used, c.extra, c.auth}
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertTokens(ctx context.Context, db execer, ts []*store.Token) error {
	if len(ts) == 0 {
		return nil
	}
	var c tokenColumns
	for _, t := range ts {
		c.add(t)
	}
	_, err := db.Exec(ctx, insertTokenRows, c.args()...)
	return err
}

// InsertTokens stores ts atomically. Concurrent calls share one statement
// (one commit); a duplicate hash fails only its own call, with
// store.ErrExists. When ctx ends first it returns ctx's error and the
// tokens may still be stored (their batch was committing) — their raw
// values were never handed out, so nothing can use them.
func (s *Store) InsertTokens(ctx context.Context, ts ...*store.Token) error {
	if len(ts) == 0 {
		return nil
	}
	_, err := s.inserts.Submit(ctx, ts)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) commitInserts(ctx context.Context, calls [][]*store.Token) ([]struct{}, error) {
	var all []*store.Token
	for _, ts := range calls {
		all = append(all, ts...)
	}
	if err := insertTokens(ctx, s.db, all); err != nil {
		return nil, err
	}
	return make([]struct{}, len(calls)), nil
}

func scanToken(row pgx.Row) (*store.Token, error) {
	var t store.Token
	var user, family *string
	var abs, revoked, used *time.Time
	var extra, auth []byte
	if err := row.Scan(&t.Hash, &t.Kind, &t.ClientID, &user, &t.Scope, &t.Level, &family, &t.IssuedAt, &t.ExpiresAt, &abs, &revoked, &used, &extra, &auth); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if err := fillToken(&t, user, family, abs, revoked, used, extra, auth); err != nil {
		return nil, err
	}
	return &t, nil
}

// fillToken sets the token's fields read as nullable columns.
func fillToken(t *store.Token, user, family *string, abs, revoked, used *time.Time, extra, auth []byte) error {
	t.UserID, t.FamilyID = derefStr(user), derefStr(family)
	t.AbsoluteExpiresAt, t.RevokedAt, t.UsedAt = deref(abs), deref(revoked), deref(used)
	if len(extra) > 0 {
		if err := json.Unmarshal(extra, &t.Extra); err != nil {
			return err
		}
	}
	var err error
	t.Auth, err = scanAuth(auth)
	return err
}

func (s *Store) GetToken(ctx context.Context, hash string) (*store.Token, error) {
	return scanToken(s.db.QueryRow(ctx, `SELECT `+tokenCols+` FROM idp_tokens WHERE hash = $1`, hash))
}

// tokenUserCols are the token's columns (t.) and its user's (u.) but the
// password hash, all NULL when the token has no user or the user is gone.
const tokenUserCols = `t.hash, t.kind, t.client_id, t.user_id, t.scope, t.level, t.family_id, t.issued_at, t.expires_at,
	t.absolute_expires_at, t.revoked_at, t.used_at, t.extra, t.auth,
	u.id, u.username, u.customer_number, u.claims, u.enabled, u.created_at`

// GetTokenWithUser reads a token and its user in one statement (a primary
// key look-up joined by primary key): the gateway's exchange and
// introspection pay one round trip on a cache miss, not two.
func (s *Store) GetTokenWithUser(ctx context.Context, hash string) (*store.Token, *store.User, error) {
	row := s.db.QueryRow(ctx, `SELECT `+tokenUserCols+` FROM idp_tokens t LEFT JOIN idp_users u ON u.id = t.user_id WHERE t.hash = $1`, hash)
	var t store.Token
	var user, family *string
	var abs, revoked, used *time.Time
	var extra, auth []byte
	var uid, uname, ucust *string
	var uclaims []byte
	var uenabled *bool
	var ucreated *time.Time
	if err := row.Scan(&t.Hash, &t.Kind, &t.ClientID, &user, &t.Scope, &t.Level, &family, &t.IssuedAt, &t.ExpiresAt, &abs, &revoked, &used, &extra, &auth,
		&uid, &uname, &ucust, &uclaims, &uenabled, &ucreated); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, store.ErrNotFound
		}
		return nil, nil, err
	}
	if err := fillToken(&t, user, family, abs, revoked, used, extra, auth); err != nil {
		return nil, nil, err
	}
	if uid == nil {
		return &t, nil, nil
	}
	u := &store.User{ID: *uid, Username: derefStr(uname), CustomerNumber: derefStr(ucust),
		Enabled: uenabled != nil && *uenabled, CreatedAt: deref(ucreated)}
	if err := json.Unmarshal(uclaims, &u.Claims); err != nil {
		return nil, nil, err
	}
	if len(u.Claims) == 0 {
		u.Claims = nil
	}
	return &t, u, nil
}

// RotateRefresh implements idp.RefreshStorage. Concurrent rotations share
// three statements and one commit: the batch's tokens and their users are
// read (no lock),
// each rotation is decided in arrival order — issue runs for a token that
// is unused and active, and a later rotation of the same token in the
// batch finds it used, exactly as a second rotation does across batches —
// and then one statement marks the winners used, on the condition that
// each is still unused and active (compare-and-set: of concurrent
// statements on any instance exactly one sets a token's used_at, the
// others re-check the row once it is committed and find it used), and
// stores what the tokens it marked issued. A rotation that lost that race
// reads the token again and gets store.ErrTokenUsed or store.ErrInactive
// with its committed record. A rotation is answered only after the commit.
func (s *Store) RotateRefresh(ctx context.Context, hash string, now time.Time, issue func(old *store.Token, user *store.User) ([]*store.Token, error)) (*store.Token, error) {
	r, err := s.rotations.Submit(ctx, rotation{hash: hash, now: now, issue: issue})
	if err != nil {
		return nil, err
	}
	return r.old, r.outcome
}

type rotation struct {
	hash  string
	now   time.Time
	issue func(old *store.Token, user *store.User) ([]*store.Token, error)
}

// rotated is a rotation's answer: old is nil when outcome is an error of
// its own (not found, or issue's error).
type rotated struct {
	old     *store.Token
	outcome error
}

// rotateRows marks the rotated tokens used ($15, $16: hash and time), each
// only if it is still unused and active at that time, and stores the
// tokens issued ($1…$14, tokenColumns) of those it marked ($17: each
// issued token's parent hash). It returns the hashes it marked.
const rotateRows = `WITH won AS (
	UPDATE idp_tokens t SET used_at = u.at FROM unnest($15::text[], $16::timestamptz[]) AS u(hash, at)
	WHERE t.hash = u.hash AND t.kind = 'refresh' AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > u.at
	RETURNING t.hash),
issued AS (INSERT INTO idp_tokens (` + tokenCols + `)
	SELECT n.hash, n.kind, n.client_id, n.user_id, n.scope, n.level, n.family_id, n.issued_at, n.expires_at,
	       n.absolute_expires_at, n.revoked_at, n.used_at, n.extra::jsonb, n.auth::jsonb
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
	            $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[], $17::text[])
	     AS n(hash, kind, client_id, user_id, scope, level, family_id, issued_at, expires_at, absolute_expires_at, revoked_at, used_at, extra, auth, parent)
	WHERE n.parent IN (SELECT hash FROM won))
SELECT hash FROM won`

func (s *Store) readRefresh(ctx context.Context, hashes []string) (map[string]*store.Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenCols+` FROM idp_tokens WHERE hash = ANY($1) AND kind = 'refresh'`, hashes)
	if err != nil {
		return nil, err
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, err
	}
	m := make(map[string]*store.Token, len(ts))
	for _, t := range ts {
		m[t.Hash] = t
	}
	return m, nil
}

// usersOf reads the users of tokens (one statement); a token's user that
// is not there (deleted) is missing from the map.
func (s *Store) usersOf(ctx context.Context, tokens map[string]*store.Token) (map[string]*store.User, error) {
	var ids []string
	for _, t := range tokens {
		if t.UserID != "" && !slices.Contains(ids, t.UserID) {
			ids = append(ids, t.UserID)
		}
	}
	users := map[string]*store.User{}
	if len(ids) == 0 {
		return users, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+userCols+` FROM idp_users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.User, error) { return scanUser(row) })
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		users[u.ID] = u
	}
	return users, nil
}

// refreshState is the outcome a rotation of t at now has without issuing:
// nil for a token that may be rotated.
func refreshState(t *store.Token, ok bool, now time.Time) rotated {
	switch {
	case !ok:
		return rotated{outcome: store.ErrNotFound}
	case !t.UsedAt.IsZero():
		return rotated{old: t, outcome: store.ErrTokenUsed}
	case !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt):
		return rotated{old: t, outcome: store.ErrInactive}
	}
	return rotated{}
}

func (s *Store) commitRotations(ctx context.Context, rs []rotation) ([]rotated, error) {
	out := make([]rotated, len(rs))
	hashes := make([]string, 0, len(rs))
	for _, r := range rs {
		hashes = append(hashes, r.hash)
	}
	read, err := s.readRefresh(ctx, hashes)
	if err != nil {
		return nil, err
	}
	users, err := s.usersOf(ctx, read)
	if err != nil {
		return nil, err
	}
	// Decide in arrival order. cand[h] is the rotation of h that goes to
	// the statement; later rotations of h in the batch are settled by its
	// outcome (after[i]: the candidate they wait for).
	cand := map[string]int{}
	after := map[int]int{}
	var marked []string
	var markedAt []time.Time
	var issued tokenColumns
	var parents []string
	for i, r := range rs {
		if c, ok := cand[r.hash]; ok {
			after[i] = c
			continue
		}
		t, ok := read[r.hash]
		if st := refreshState(t, ok, r.now); st.outcome != nil {
			if st.old != nil {
				old := *st.old
				st.old = &old
			}
			out[i] = st
			continue
		}
		old := *t
		ts, err := r.issue(&old, users[old.UserID])
		if err != nil {
			out[i] = rotated{outcome: err}
			continue
		}
		cand[r.hash] = i
		marked, markedAt = append(marked, r.hash), append(markedAt, r.now)
		for _, nt := range ts {
			issued.add(nt)
			parents = append(parents, r.hash)
		}
	}
	if len(marked) > 0 {
		// In hash order, so that two instances' batches lock shared rows in
		// one order (a deadlock all the same is split: each tried alone).
		order := make([]int, len(marked))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(marked[a], marked[b]) })
		sortedHashes, sortedAt := make([]string, len(order)), make([]time.Time, len(order))
		for i, j := range order {
			sortedHashes[i], sortedAt[i] = marked[j], markedAt[j]
		}
		rows, err := s.db.Query(ctx, rotateRows, append(issued.args(), sortedHashes, sortedAt, parents)...)
		if err != nil {
			return nil, err
		}
		won, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		lost := map[string]bool{}
		for _, h := range marked {
			lost[h] = true
		}
		for _, h := range won {
			delete(lost, h)
			i := cand[h]
			old := *read[h]
			old.UsedAt = rs[i].now
			out[i] = rotated{old: &old}
		}
		if len(lost) > 0 {
			// Another instance's rotation (or a revocation) came first:
			// the committed record says which.
			// A failed read fails only the rotations that lost: the
			// winners' pairs are committed, and answering them with an
			// error would leave their clients holding a used token
			// (refused on retry, their family revoked as reused).
			again, err := s.readRefresh(ctx, slices.Collect(maps.Keys(lost)))
			for h := range lost {
				i := cand[h]
				if err != nil {
					out[i] = rotated{outcome: err}
					continue
				}
				t, ok := again[h]
				out[i] = refreshState(t, ok, rs[i].now)
				if out[i].outcome == nil {
					out[i] = rotated{outcome: fmt.Errorf("refresh token rotation lost a race to a change it cannot see")}
				}
			}
		}
	}
	for i, c := range after {
		// The candidate's outcome decides: it won, so this one finds the
		// token used; or it lost, and so does this one.
		o := out[c]
		if o.outcome == nil {
			o.outcome = store.ErrTokenUsed
		}
		if o.old != nil {
			old := *o.old
			o.old = &old
		}
		out[i] = o
	}
	return out, nil
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

// revokeWhere revokes the tokens that match where, in passes until one
// finds nothing left to revoke. One statement is not enough: a refresh
// rotation that marked a matching token used (holding its row) before the
// statement reached it commits the pair it issued while the statement
// waits for that row, and the statement, whose snapshot was taken before,
// revokes the old token but cannot see the new pair. The next pass, a
// new snapshot taken after that commit, does; a pass that revokes nothing
// saw every committed match revoked, and a rotation still in flight then
// finds its token revoked (its compare-and-set waits for the row and
// re-checks it).
func (s *Store) revokeWhere(ctx context.Context, where string, arg any, now time.Time) ([]string, error) {
	all := []string{}
	for range 100 {
		hs, err := hashes(s.db.Query(ctx, `UPDATE idp_tokens SET revoked_at = $2 WHERE `+where+` AND revoked_at IS NULL RETURNING hash`, arg, now))
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	slices.Sort(all)
	return all, nil
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

// EvictOldest revokes the user's logins (refresh families) beyond the
// keep newest live ones. Its statement has the gap revokeWhere closes (a
// rotation in flight in an evicted family commits a pair the statement
// cannot see), so the evicted families are then revoked in passes too.
func (s *Store) EvictOldest(ctx context.Context, userID string, keep int, now time.Time) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		WITH fam AS (
			SELECT family_id, min(issued_at) AS started,
			       bool_or(kind = 'refresh' AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2) AS live
			FROM idp_tokens WHERE user_id = $1 AND family_id IS NOT NULL GROUP BY family_id
		), live AS (
			SELECT family_id, row_number() OVER (ORDER BY started DESC, family_id DESC) AS n FROM fam WHERE live
		)
		UPDATE idp_tokens t SET revoked_at = $2
		FROM live WHERE t.family_id = live.family_id AND live.n > $3 AND t.revoked_at IS NULL
		RETURNING t.hash, t.family_id`, userID, now, keep)
	if err != nil {
		return nil, err
	}
	var out, families []string
	var h, fam string
	if _, err := pgx.ForEachRow(rows, []any{&h, &fam}, func() error {
		out = append(out, h)
		if !slices.Contains(families, fam) {
			families = append(families, fam)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(families) > 0 {
		more, err := s.revokeWhere(ctx, `family_id = ANY($1)`, families, now)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *Store) CreateCode(ctx context.Context, c *store.AuthCode) error {
	_, err := s.db.Exec(ctx, `INSERT INTO idp_codes (hash, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, expires_at, nonce, auth)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.Scope, c.CodeChallenge, c.CodeChallengeMethod, c.ExpiresAt,
		c.Nonce, authJSON(c.Auth))
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) ConsumeCode(ctx context.Context, hash string, now time.Time) (*store.AuthCode, error) {
	var c store.AuthCode
	var used *time.Time
	var auth []byte
	scan := func(row pgx.Row) error {
		err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &c.CodeChallenge, &c.CodeChallengeMethod, &c.ExpiresAt, &used, &c.Nonce, &auth)
		if err == nil {
			c.Auth, err = scanAuth(auth)
		}
		return err
	}
	const cols = `hash, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, expires_at, used_at, nonce, auth`
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
