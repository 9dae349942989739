package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newGrouped(t *testing.T) (*pgxpool.Pool, *postgres.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	// One flusher of each kind: while a held batch commits, others queue.
	s := postgres.New(pool, groupcommit.Options{Flushers: 1})
	t.Cleanup(s.Close)
	return pool, s
}

func tok(hash, kind, family string) *store.Token {
	return &store.Token{Hash: hash, Kind: kind, ClientID: "c", UserID: "u", Scope: "a", Level: store.LevelReturning, FamilyID: family,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour), Extra: map[string]string{"device_id": "d"}}
}

// hold locks idp_tokens in a transaction of its own and starts a write
// that waits for it (the batch in flight), so that the writes that follow
// queue into one batch; release commits the lock's transaction.
// lockTokens locks idp_tokens (EXCLUSIVE: reads pass, writes wait) in a
// transaction of its own, rolled back at the test's end unless the test
// ends it first.
func lockTokens(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `LOCK TABLE idp_tokens IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return tx
}

func hold(t *testing.T, pool *pgxpool.Pool, s *postgres.Store, write func() error) (first chan error, release func()) {
	t.Helper()
	ctx := context.Background()
	tx := lockTokens(t, pool)
	first = make(chan error, 1)
	go func() { first <- write() }()
	waittest.For(t, "the first write to wait for the lock", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = 'idp_tokens'::regclass AND NOT granted`).Scan(&n)
		return n > 0
	})
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Commit(ctx) }) }
	t.Cleanup(release)
	return first, release
}

// Token inserts of one batch: a call whose token is a duplicate fails
// alone with store.ErrExists, and whole (none of its tokens stored); the
// other calls of the batch are stored.
func TestATokenBatchWithADuplicateFailsOnlyThatCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, s := newGrouped(t)
	if err := s.InsertTokens(ctx, tok("taken", store.KindAccess, "")); err != nil {
		t.Fatal(err)
	}
	first, release := hold(t, pool, s, func() error { return s.InsertTokens(ctx, tok("first", store.KindAccess, "")) })
	calls := [][]*store.Token{
		{tok("a1", store.KindAccess, "fa"), tok("r1", store.KindRefresh, "fa")},
		{tok("a2", store.KindAccess, "fb"), tok("taken", store.KindRefresh, "fb")}, // a duplicate: neither goes in
		{tok("a3", store.KindAccess, "")},
		{tok("a4", store.KindAccess, "fc"), tok("r4", store.KindRefresh, "fc")},
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.InsertTokens(ctx, c...) }()
	}
	waittest.For(t, "the inserts to queue", func() bool { n, _ := s.Queued(); return n == len(calls) })
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if (i == 1) != errors.Is(err, store.ErrExists) || (i != 1 && err != nil) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for _, h := range []string{"first", "a1", "r1", "a3", "a4", "r4"} {
		got, err := s.GetToken(ctx, h)
		if err != nil || got.Extra["device_id"] != "d" || !got.AbsoluteExpiresAt.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("%s: %+v %v", h, got, err)
		}
	}
	if _, err := s.GetToken(ctx, "a2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a call that failed left a token behind: %v", err)
	}
}

// Rotations in one batch: of several rotations of one refresh token
// exactly one wins and the others see it used (reuse detection stays
// exact inside a batch); rotations of other tokens in the batch win; an
// unknown token, an expired one and a failing issue are answered as
// before and change nothing.
func TestRotationsInOneBatchKeepOneWinnerPerToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, s := newGrouped(t)
	expired := tok("expired", store.KindRefresh, "fe")
	expired.ExpiresAt = now.Add(-time.Minute)
	for _, tk := range []*store.Token{tok("held", store.KindRefresh, "f0"), tok("shared", store.KindRefresh, "f1"),
		tok("own-a", store.KindRefresh, "fa"), tok("own-b", store.KindRefresh, "fb"), tok("fails", store.KindRefresh, "fx"), expired} {
		if err := s.InsertTokens(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(name string) func(*store.Token, *store.User) ([]*store.Token, error) {
		return func(old *store.Token, _ *store.User) ([]*store.Token, error) {
			return []*store.Token{tok(name+"-at", store.KindAccess, old.FamilyID), tok(name+"-rt", store.KindRefresh, old.FamilyID)}, nil
		}
	}
	first, release := hold(t, pool, s, func() error { _, err := s.RotateRefresh(ctx, "held", now, issue("held")); return err })
	type call struct {
		hash  string
		issue func(*store.Token, *store.User) ([]*store.Token, error)
	}
	calls := []call{{"own-a", issue("own-a")}, {"missing", issue("missing")}, {"expired", issue("expired")},
		{"fails", func(*store.Token, *store.User) ([]*store.Token, error) { return nil, errors.New("wrong client") }}, {"own-b", issue("own-b")}}
	for i := range 6 {
		calls = append(calls, call{"shared", issue(fmt.Sprint("shared-", i))})
	}
	errs := make([]error, len(calls))
	olds := make([]*store.Token, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); olds[i], errs[i] = s.RotateRefresh(ctx, c.hash, now, c.issue) }()
	}
	waittest.For(t, "the rotations to queue", func() bool { _, n := s.Queued(); return n == len(calls) })
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, store.ErrNotFound, store.ErrInactive, nil, nil} {
		if i == 3 {
			if errs[i] == nil || errs[i].Error() != "wrong client" {
				t.Fatalf("a failing issue: %v", errs[i])
			}
			continue
		}
		if !errors.Is(errs[i], want) && errs[i] != want {
			t.Fatalf("%s: %v, want %v", calls[i].hash, errs[i], want)
		}
	}
	wins, used := 0, 0
	for i := 5; i < len(calls); i++ {
		switch {
		case errs[i] == nil:
			wins++
		case errors.Is(errs[i], store.ErrTokenUsed) && olds[i] != nil && olds[i].UsedAt.Equal(now):
			used++
		default:
			t.Fatalf("rotation %d of the shared token: %v %+v", i, errs[i], olds[i])
		}
	}
	if wins != 1 || used != 5 {
		t.Fatalf("the shared token: %d winners, %d saw it used; want 1 and 5", wins, used)
	}
	var issued int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM idp_tokens WHERE hash LIKE 'shared-%'`).Scan(&issued); err != nil || issued != 2 {
		t.Fatalf("the shared token's rotations stored %d tokens (%v), want the winner's 2", issued, err)
	}
	for _, h := range []string{"held", "shared", "own-a", "own-b"} {
		if got, err := s.GetToken(ctx, h); err != nil || !got.UsedAt.Equal(now) {
			t.Fatalf("%s not marked used: %+v %v", h, got, err)
		}
	}
	for _, h := range []string{"own-a-rt", "own-b-at", "held-rt"} {
		if _, err := s.GetToken(ctx, h); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
	}
	if got, _ := s.GetToken(ctx, "fails"); !got.UsedAt.IsZero() {
		t.Fatal("a rotation whose issue failed marked its token used")
	}
}

// Rotations of one refresh token by two instances (two stores, one
// database) that both read it unused before either writes: the
// compare-and-set lets exactly one win; the other waits for the winner's
// commit, finds the token used and answers store.ErrTokenUsed with the
// committed record (its UsedAt: reuse detection's clock), storing
// nothing. A rotation that a revocation overtook between its read and its
// write answers store.ErrInactive.
func TestRotationsOnTwoInstancesRaceToOneWinner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	newPool := func() *pgxpool.Pool { // each instance its own pool, as on two hosts
		p, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	pool := newPool()
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	a, b, c := postgres.New(newPool()), postgres.New(newPool()), postgres.New(newPool())
	for _, s := range []*postgres.Store{a, b, c} {
		t.Cleanup(s.Close)
	}
	for _, tk := range []*store.Token{tok("raced", store.KindRefresh, "fr"), tok("revoked", store.KindRefresh, "fv")} {
		if err := a.InsertTokens(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(name string) func(*store.Token, *store.User) ([]*store.Token, error) {
		return func(old *store.Token, _ *store.User) ([]*store.Token, error) {
			return []*store.Token{tok(name+"-at", store.KindAccess, old.FamilyID), tok(name+"-rt", store.KindRefresh, old.FamilyID)}, nil
		}
	}
	// Both reads happen under the table lock (reads are not blocked);
	// both writes wait for it.
	tx := lockTokens(t, pool)
	type result struct {
		old *store.Token
		err error
	}
	ra, rb, rv := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	later := now.Add(time.Second)
	go func() { o, err := a.RotateRefresh(ctx, "raced", now, issue("a")); ra <- result{o, err} }()
	go func() { o, err := b.RotateRefresh(ctx, "raced", later, issue("b")); rb <- result{o, err} }()
	go func() { o, err := c.RotateRefresh(ctx, "revoked", now, issue("v")); rv <- result{o, err} }()
	waittest.For(t, "three rotations to wait for the lock", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = 'idp_tokens'::regclass AND NOT granted`).Scan(&n)
		return n == 3
	})
	// The revocation commits first, in the lock holder's transaction.
	if _, err := tx.Exec(ctx, `UPDATE idp_tokens SET revoked_at = $1 WHERE hash = 'revoked'`, now); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	x, y := <-ra, <-rb
	if (x.err == nil) == (y.err == nil) {
		t.Fatalf("want exactly one winner: a %v, b %v", x.err, y.err)
	}
	win, lose, winAt := x, y, now
	if y.err == nil {
		win, lose, winAt = y, x, later
	}
	if !errors.Is(lose.err, store.ErrTokenUsed) || lose.old == nil || !lose.old.UsedAt.Equal(winAt) || !win.old.UsedAt.Equal(winAt) {
		t.Fatalf("winner %+v; loser %v %+v", win.old, lose.err, lose.old)
	}
	var issued int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM idp_tokens WHERE family_id = 'fr' AND hash <> 'raced'`).Scan(&issued); err != nil || issued != 2 {
		t.Fatalf("the raced token's rotations stored %d tokens (%v), want the winner's 2", issued, err)
	}
	if v := <-rv; !errors.Is(v.err, store.ErrInactive) || v.old == nil || v.old.RevokedAt.IsZero() {
		t.Fatalf("a rotation overtaken by a revocation: %v %+v", v.err, v.old)
	}
	if n, _ := pool.Exec(ctx, `SELECT 1 FROM idp_tokens WHERE hash LIKE 'v-%'`); n.RowsAffected() != 0 {
		t.Fatal("a rotation overtaken by a revocation stored tokens")
	}
}
