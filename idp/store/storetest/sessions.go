package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
)

// runSessions checks the web session storage (session.Storage).
func runSessions(t *testing.T, newStore func(t *testing.T) Store, now time.Time) {
	ctx := context.Background()
	sess := func(hash, user string) *store.Session {
		return &store.Session{ID: hash, VisitorID: "v-" + hash, Level: store.LevelAnonymous, UserID: user, CreatedAt: now, LastSeen: now,
			IdleExpires: now.Add(30 * time.Minute), Expires: now.Add(24 * time.Hour)}
	}

	t.Run("sessions", func(t *testing.T) {
		s := newStore(t)
		a := sess("s1", "")
		a.Attrs = map[string]string{"cart": "3"}
		must(t, s.CreateSession(ctx, a))
		if err := s.CreateSession(ctx, a); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate session: %v", err)
		}
		got, err := s.GetSession(ctx, "s1")
		must(t, err)
		if !sameSession(got, a) {
			t.Fatalf("session = %+v, want %+v", got, a)
		}
		if _, err := s.GetSession(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown session: %v", err)
		}
		must(t, s.TouchSession(ctx, "s1", now.Add(time.Minute), now.Add(31*time.Minute)))
		must(t, s.UpdateSessionAttrs(ctx, "s1", map[string]string{"theme": "dark"}))
		got, _ = s.GetSession(ctx, "s1")
		if !got.LastSeen.Equal(now.Add(time.Minute)) || !got.IdleExpires.Equal(now.Add(31*time.Minute)) || !reflect.DeepEqual(got.Attrs, map[string]string{"theme": "dark"}) {
			t.Fatalf("after touch and update: %+v", got)
		}
		must(t, s.UpdateSessionAttrs(ctx, "s1", nil))
		if got, _ = s.GetSession(ctx, "s1"); len(got.Attrs) != 0 {
			t.Fatalf("attributes cleared: %v", got.Attrs)
		}
		if err := s.TouchSession(ctx, "nope", now, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("touch unknown: %v", err)
		}
		if err := s.UpdateSessionAttrs(ctx, "nope", nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}
		must(t, s.DeleteSession(ctx, "s1"))
		must(t, s.DeleteSession(ctx, "s1"))
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
	})

	t.Run("session replacement has one winner", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateSession(ctx, sess("old", "")))
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ns := sess(string(rune('a'+i)), "u1")
				ns.Level, ns.LoginAt = store.LevelLoggedOn, now
				errs[i] = s.ReplaceSession(ctx, "old", ns)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("replace: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d replacements won, want 1", won)
		}
		if _, err := s.GetSession(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the replaced session lives on: %v", err)
		}
		hashes, err := s.DeleteUserSessions(ctx, "u1")
		must(t, err)
		if len(hashes) != 1 {
			t.Fatalf("sessions of u1: %v", hashes)
		}
		must(t, s.CreateSession(ctx, sess("x", "")))
		must(t, s.CreateSession(ctx, sess("y", "")))
		if err := s.ReplaceSession(ctx, "x", sess("y", "")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("replacement onto a taken id: %v", err)
		}
		if _, err := s.GetSession(ctx, "x"); err != nil {
			t.Fatalf("a failed replacement ended the old session: %v", err)
		}
	})

	t.Run("sessions and visitors of a user", func(t *testing.T) {
		s := newStore(t)
		for _, ss := range []*store.Session{sess("u1a", "u1"), sess("u1b", "u1"), sess("u2a", "u2"), sess("anon", "")} {
			must(t, s.CreateSession(ctx, ss))
		}
		must(t, s.PutVisitor(ctx, "v1", "u1", now.Add(time.Hour)))
		must(t, s.PutVisitor(ctx, "v2", "u2", now.Add(time.Hour)))
		must(t, s.PutVisitor(ctx, "v0", "", now.Add(time.Hour)))
		hashes, err := s.DeleteUserSessions(ctx, "u1")
		must(t, err)
		slices.Sort(hashes)
		if !slices.Equal(hashes, []string{"u1a", "u1b"}) {
			t.Fatalf("deleted %v", hashes)
		}
		for _, h := range []string{"u2a", "anon"} {
			if _, err := s.GetSession(ctx, h); err != nil {
				t.Fatalf("%s: %v", h, err)
			}
		}
		if _, err := s.GetVisitor(ctx, "v1", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the user's visitor lives on: %v", err)
		}
		if u, err := s.GetVisitor(ctx, "v2", now); err != nil || u != "u2" {
			t.Fatalf("visitor v2 = %q, %v", u, err)
		}
		if u, err := s.GetVisitor(ctx, "v0", now); err != nil || u != "" {
			t.Fatalf("anonymous visitor = %q, %v", u, err)
		}
		if hashes, err := s.DeleteUserSessions(ctx, "nobody"); err != nil || len(hashes) != 0 {
			t.Fatalf("nobody's sessions: %v, %v", hashes, err)
		}
	})

	t.Run("visitors expire and are extended", func(t *testing.T) {
		s := newStore(t)
		must(t, s.PutVisitor(ctx, "v", "", now.Add(time.Hour)))
		if _, err := s.GetVisitor(ctx, "v", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired visitor: %v", err)
		}
		must(t, s.PutVisitor(ctx, "v", "u1", now.Add(2*time.Hour)))
		if u, err := s.GetVisitor(ctx, "v", now.Add(time.Hour)); err != nil || u != "u1" {
			t.Fatalf("extended visitor = %q, %v", u, err)
		}
		if _, err := s.GetVisitor(ctx, "nope", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown visitor: %v", err)
		}
	})

	t.Run("expired sessions and visitors are deleted in batches", func(t *testing.T) {
		s := newStore(t)
		idle := sess("idle", "")
		idle.IdleExpires = now.Add(-time.Second)
		ended := sess("ended", "")
		ended.Expires = now
		must(t, s.CreateSession(ctx, idle))
		must(t, s.CreateSession(ctx, ended))
		must(t, s.CreateSession(ctx, sess("live", "")))
		must(t, s.PutVisitor(ctx, "gone", "", now.Add(-time.Minute)))
		must(t, s.PutVisitor(ctx, "here", "", now.Add(time.Minute)))
		total := 0
		for {
			n, err := s.DeleteExpiredSessions(ctx, now, 1)
			must(t, err)
			if n > 1 {
				t.Fatalf("a batch of 1 deleted %d", n)
			}
			if n == 0 {
				break
			}
			total += n
		}
		if total != 3 {
			t.Fatalf("deleted %d, want 3", total)
		}
		for _, h := range []string{"idle", "ended"} {
			if _, err := s.GetSession(ctx, h); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: %v", h, err)
			}
		}
		if _, err := s.GetSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetVisitor(ctx, "here", now); err != nil {
			t.Fatal(err)
		}
	})
}

// sameSession compares sessions with time.Equal (a store may hand times
// back in another location).
func sameSession(a, b *store.Session) bool {
	times := func(s *store.Session) []time.Time {
		return []time.Time{s.LoginAt, s.CreatedAt, s.LastSeen, s.IdleExpires, s.Expires}
	}
	ta, tb := times(a), times(b)
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	return a.ID == b.ID && a.VisitorID == b.VisitorID && a.Level == b.Level && a.UserID == b.UserID &&
		a.CustomerNumber == b.CustomerNumber && reflect.DeepEqual(a.Attrs, b.Attrs)
}

// KeysApart checks that two key storages of one store (the JWT signing
// keys and the JPT keys) never see each other's keys.
func KeysApart(t *testing.T, jwtKeys, jptKeys idp.KeyStorage) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, jptKeys.PutKey(ctx, &store.SigningKey{ID: "jpt-1", Alg: idp.AlgEdDSA, Private: []byte{1}, CreatedAt: now, ActiveAt: now}))
	must(t, jwtKeys.PutKey(ctx, &store.SigningKey{ID: "jwt-1", Alg: idp.AlgEdDSA, Private: []byte{2}, CreatedAt: now, ActiveAt: now}))
	for _, c := range []struct {
		name string
		ks   idp.KeyStorage
		want string
	}{{"JWT keys", jwtKeys, "jwt-1"}, {"JPT keys", jptKeys, "jpt-1"}} {
		keys, err := c.ks.ListKeys(ctx)
		must(t, err)
		if len(keys) != 1 || keys[0].ID != c.want {
			t.Fatalf("%s: %d keys, want only %s", c.name, len(keys), c.want)
		}
	}
}
