package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// A revocation of a family (a logout, RFC 7009 revoke of a refresh token,
// reuse detection) that meets a refresh rotation of that family in flight
// revokes the pair the rotation issued as well: the rotation's statement
// has marked the old token used (and holds its row) when the revocation
// starts, so the revocation waits for that row, and commits after the
// rotation did; the new pair must not outlive it (found from outside: a
// refresh and a revoke of the same token at once, both answered 200, and
// the new access token stayed active).
//
// The rotation is held mid-statement without timing: the test's own
// transaction has inserted, uncommitted, a row with the hash the rotation
// issues, so the rotation's insert waits for that transaction (after its
// compare-and-set took the old token's row); the revocation then queues
// behind the rotation; rolling back lets both finish, rotation first.
//
// The same holds for the eviction of a user's oldest logins (EvictOldest,
// idp.max_tokens_per_user): the family it evicts loses the pair a rotation
// in flight issued too, and the newer login it keeps stays.
func TestRevocationMeetingARotationRevokesWhatItIssued(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		revoke func(ctx context.Context, s *postgres.Store) ([]string, error)
	}{
		{"family", func(ctx context.Context, s *postgres.Store) ([]string, error) { return s.RevokeFamily(ctx, "fam", now) }},
		{"oldest logins evicted", func(ctx context.Context, s *postgres.Store) ([]string, error) { return s.EvictOldest(ctx, "u", 1, now) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			revocationMeetsRotation(t, tc.revoke)
		})
	}
}

func revocationMeetsRotation(t *testing.T, revoke func(ctx context.Context, s *postgres.Store) ([]string, error)) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(pool)
	t.Cleanup(s.Close)
	// A newer login of the same user, which an eviction keeping one keeps.
	newer := tok("newer-rt", store.KindRefresh, "newer")
	newer.IssuedAt = now.Add(time.Minute)
	if err := s.InsertTokens(ctx, tok("first-at", store.KindAccess, "fam"), tok("first-rt", store.KindRefresh, "fam"), newer); err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `INSERT INTO idp_tokens (hash, kind, client_id, scope, level, family_id, issued_at, expires_at)
		VALUES ('second-rt', 'refresh', 'c', 'a', 'returning', 'blocker', $1, $2)`, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rotated := make(chan error, 1)
	go func() {
		_, err := s.RotateRefresh(ctx, "first-rt", now, func(old *store.Token, _ *store.User) ([]*store.Token, error) {
			return []*store.Token{tok("second-at", store.KindAccess, old.FamilyID), tok("second-rt", store.KindRefresh, old.FamilyID)}, nil
		})
		rotated <- err
	}()
	waittest.For(t, "the rotation to hold the old token and wait for the blocker", func() bool { return waiting() == 1 })
	type revoked struct {
		hashes []string
		err    error
	}
	rv := make(chan revoked, 1)
	go func() { hs, err := revoke(ctx, s); rv <- revoked{hs, err} }()
	waittest.For(t, "the revocation to wait for the rotation", func() bool { return waiting() == 2 })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waittest.Recv(t, "the rotation", rotated); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	r := waittest.Recv(t, "the revocation", rv)
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, h := range []string{"first-at", "first-rt", "second-at", "second-rt"} {
		got, err := s.GetToken(ctx, h)
		if err != nil {
			t.Fatal(h, err)
		}
		if got.RevokedAt.IsZero() {
			t.Errorf("%s is still active after its family was revoked (revocation returned %v)", h, r.hashes)
		}
		if !slices.Contains(r.hashes, h) {
			t.Errorf("the revocation did not report %s (caches keep it): %v", h, r.hashes)
		}
	}
	if got, err := s.GetToken(ctx, "newer-rt"); err != nil || !got.RevokedAt.IsZero() || slices.Contains(r.hashes, "newer-rt") {
		t.Errorf("the other login: %+v, %v (reported: %v); want it untouched", got, err, r.hashes)
	}
}

// A batch in which one rotation won and another lost (a revocation came
// between its read and its compare-and-set) answers the winner with its
// committed pair even when reading the loser's record again fails: an
// error there (a cut connection, say) used to fail the whole batch, so the
// winner's client got no tokens while its old token was already used (a
// retry refused, its family revoked as reused).
//
// Without timing: the table is locked (EXCLUSIVE: reads pass, writes
// wait) while a first batch and then the batch of both rotations wait in
// their writes; under that lock the loser's token is revoked and given a
// record the re-read cannot decode (standing for any failure of it).
func TestARotationThatWonIsAnsweredWhenTheLosersReReadFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// Two flushers; a second batch waits for its second rotation.
	s := postgres.New(pool, groupcommit.Options{Flushers: 2, MaxBatch: 2, MaxWait: time.Hour})
	t.Cleanup(s.Close)
	for _, h := range []string{"first", "winner", "loser"} {
		if err := s.InsertTokens(ctx, tok(h, store.KindRefresh, "f-"+h)); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func() int {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH won AS%'`).Scan(&n)
		return n
	}
	lock := lockTokens(t, pool)
	type result struct {
		old *store.Token
		err error
	}
	rotate := func(h string) chan result {
		ch := make(chan result, 1)
		go func() {
			o, err := s.RotateRefresh(ctx, h, now, func(old *store.Token, _ *store.User) ([]*store.Token, error) {
				return []*store.Token{tok(h+"-at", store.KindAccess, old.FamilyID), tok(h+"-rt", store.KindRefresh, old.FamilyID)}, nil
			})
			ch <- result{o, err}
		}()
		return ch
	}
	first := rotate("first")
	waittest.For(t, "the first batch to wait in its write", func() bool { return waiting() == 1 })
	winner, loser := rotate("winner"), rotate("loser")
	waittest.For(t, "the second batch to wait in its write", func() bool { return waiting() == 2 })
	if _, err := lock.Exec(ctx, `UPDATE idp_tokens SET revoked_at = $1, extra = '{"device_id": 7}' WHERE hash = 'loser'`, now); err != nil {
		t.Fatal(err)
	}
	if err := lock.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := waittest.Recv(t, "the first rotation", first); r.err != nil {
		t.Fatalf("first: %v", r.err)
	}
	if r := waittest.Recv(t, "the losing rotation", loser); r.err == nil {
		t.Fatal("the rotation of a revoked token succeeded")
	}
	r := waittest.Recv(t, "the winning rotation", winner)
	if r.err != nil || r.old == nil || r.old.UsedAt.IsZero() {
		t.Fatalf("the rotation that won, its pair committed, was answered %v %+v", r.err, r.old)
	}
	if _, err := s.GetToken(ctx, "winner-rt"); err != nil {
		t.Fatalf("the winner's new refresh token: %v", err)
	}
}
