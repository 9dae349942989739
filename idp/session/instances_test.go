package session_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

type pgBacking struct{ *postgres.Store }

func (b pgBacking) JPTKeysStorage() idp.KeyStorage { return b.JPTKeys() }

// listening runs in's revocation fan-out (as cmd/ficus wires it) until the
// test ends, and returns once it hears notices.
func listening(t *testing.T, in *instance, notices revocation.Notices) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var heard []string
	probe := revocation.Funcs{InvalidateFunc: func(h []string) { mu.Lock(); heard = append(heard, h...); mu.Unlock() }, FlushFunc: func() {}}
	f := &revocation.Fanout{Remote: []revocation.Cache{in.m, probe}, Notices: notices}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// LISTEN may not be in place yet: publish a probe until it is heard.
	waittest.For(t, "the listener hears notices", func() bool {
		if err := notices.Publish(ctx, []string{"probe"}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(heard, "probe")
	})
}

// Two instances on one PostgreSQL: a session ended on one (password
// change, logout) is forgotten by the other through notices, though its
// cache would keep the session for an hour.
func TestSessionEndsReachEveryInstance(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	notices := postgres.Notices{Pool: pool}
	clk := newClock()
	o := instanceOptions{notices: notices, clk: clk, session: func(o *session.Options) { o.CacheTTL = time.Hour }}
	a := newInstance(t, pgBacking{postgres.New(pool)}, o)
	b := newInstance(t, pgBacking{postgres.New(pool)}, o)
	listening(t, a, notices)
	listening(t, b, notices)
	ann := a.user(t, "ann", "C-1")

	login := func(in *instance) (*session.Session, string) {
		s, _, _ := in.start(t, "")
		return in.login(t, s, "ann")
	}
	forgets := func(in *instance, cookie, what string) {
		t.Helper()
		waittest.For(t, what, func() bool {
			_, err := in.lookup(cookie)
			return errors.Is(err, session.ErrNoSession)
		})
	}

	// A JPT made on one instance verifies on the other (keys shared).
	s1, c1 := login(a)
	jpt, _, err := a.m.JPT(ctx, s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.VerifyJPT(ctx, jpt); err != nil {
		t.Fatalf("JPT of instance a on b: %v", err)
	}
	if _, err := b.lookup(c1); err != nil {
		t.Fatal(err)
	}
	_, c2 := login(b)

	if err := b.p.SetPassword(ctx, ann, "another-password"); err != nil {
		t.Fatal(err)
	}
	forgets(a, c1, "instance a forgets ann's sessions after her password changed on b")
	forgets(a, c2, "instance a forgets the session ann had on b")
	forgets(b, c1, "instance b forgets too")
	if _, err := b.m.VerifyJPT(ctx, jpt); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("JPT after the password change: %v", err)
	}

	if err := a.p.SetPassword(ctx, ann, "password-ann"); err != nil {
		t.Fatal(err)
	}
	s3, c3 := login(a)
	if _, err := b.lookup(c3); err != nil {
		t.Fatal(err)
	}
	if err := a.m.Logout(ctx, s3); err != nil {
		t.Fatal(err)
	}
	forgets(b, c3, "instance b forgets a session logged out on a")

	// Housekeeping on PostgreSQL.
	_, c4, _ := b.start(t, "")
	clk.Add(25 * time.Hour)
	if n := a.m.Cleanup(ctx, 100); n < 1 {
		t.Fatalf("cleanup deleted %d", n)
	}
	forgets(b, c4, "an expired session")
}
