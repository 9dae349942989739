package revisions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newTestStore returns a migrated store on a fresh database, and its pool.
func newTestStore(t testing.TB) (*revisions.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := revisions.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	// Twice: migrations already applied are skipped.
	if err := revisions.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return revisions.New(pool), pool
}

// rules is a valid rule file whose route orders sends weight% to orders.
func rules(weight int) string {
	return fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
routes:
  - name: orders
    match: {prefix: /api/orders}
    split:
      - {to: orders, weight: %d}
      - {to: legacy, weight: %d}
`, weight, 100-weight)
}

func apply(t *testing.T, st *revisions.Store, text string, parent int64) *revisions.Revision {
	t.Helper()
	r, err := st.Apply(context.Background(), revisions.Proposal{Text: text, Parent: parent, Author: "alice@test", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestApplyHistoryAndAudit(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	ctx := context.Background()
	if _, err := st.Live(ctx); !errors.Is(err, revisions.ErrNoRevision) {
		t.Fatalf("Live on an empty store: %v", err)
	}
	if n, err := st.LiveNumber(ctx); err != nil || n != 0 {
		t.Fatalf("LiveNumber on an empty store: %d %v", n, err)
	}
	r1 := apply(t, st, rules(10), 0)
	r2 := apply(t, st, rules(20), r1.Number)
	if r1.Number != 1 || r2.Number != 2 || r2.Parent != 1 {
		t.Fatalf("numbers: %+v %+v", r1, r2)
	}
	live, err := st.Live(ctx)
	if err != nil || live.Number != 2 || live.Text != rules(20) || live.Author != "alice@test" || live.Action != revisions.ActionApply {
		t.Fatalf("live: %+v %v", live, err)
	}
	if !strings.Contains(live.Detail, "weight orders: 10% -> 20%") {
		t.Fatalf("detail: %q", live.Detail)
	}
	got, err := st.Get(ctx, 1)
	if err != nil || got.Text != rules(10) || got.Parent != 0 {
		t.Fatalf("get 1: %+v %v", got, err)
	}
	if _, err := st.Get(ctx, 9); !errors.Is(err, revisions.ErrNotFound) {
		t.Fatalf("get 9: %v", err)
	}
	h, err := st.History(ctx, 10)
	if err != nil || len(h) != 2 || h[0].Number != 2 || h[1].Number != 1 || h[0].Text != "" {
		t.Fatalf("history: %+v %v", h, err)
	}
	if h, _ := st.History(ctx, 1); len(h) != 1 {
		t.Fatalf("limit: %d", len(h))
	}
	// Every change is in the audit trail: who, what, why.
	r3, err := st.Apply(ctx, revisions.Proposal{Text: rules(10), Parent: 2, Author: "bob@test", Reason: "too many errors",
		Action: revisions.ActionRollback, Detail: "rollback to 1"})
	if err != nil {
		t.Fatal(err)
	}
	var actor, action, detail, reason string
	var rev, prev int64
	err = pool.QueryRow(ctx, `SELECT actor, action, revision, previous, detail, reason FROM route_audit ORDER BY id DESC LIMIT 1`).
		Scan(&actor, &action, &rev, &prev, &detail, &reason)
	if err != nil || actor != "bob@test" || action != "rollback" || rev != r3.Number || prev != 2 || detail != "rollback to 1" || reason != "too many errors" {
		t.Fatalf("audit: %s %s %d %d %q %q %v", actor, action, rev, prev, detail, reason, err)
	}
	if n := count(t, pool, "route_audit"); n != 3 {
		t.Fatalf("%d audit rows, want 3", n)
	}
}

func TestApplyRefusesWhatIsNotAChange(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		given   revisions.Proposal
		wantErr string
	}{
		{name: "invalid rules, with line and column", given: revisions.Proposal{Text: strings.Replace(rules(10), "weight: 90", "weight: 80", 1), Author: "a", Reason: "r"},
			wantErr: "proposed rules:10:7: routes[0].split: weights sum to 90, not 100"},
		{name: "no author", given: revisions.Proposal{Text: rules(10), Reason: "r"}, wantErr: "an author and a reason"},
		{name: "no reason", given: revisions.Proposal{Text: rules(10), Author: "a", Reason: " "}, wantErr: "an author and a reason"},
		{name: "too large", given: revisions.Proposal{Text: strings.Repeat("#", routes.MaxFileSize+1), Author: "a", Reason: "r"}, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Apply(ctx, tt.given)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if n := count(t, pool, "route_revisions"); n != 0 {
		t.Fatalf("%d revisions stored", n)
	}
	if n := count(t, pool, "route_audit"); n != 0 {
		t.Fatalf("%d audit rows", n)
	}
}

// Optimistic versioning: two applies based on the same revision, at once:
// one wins, the other is refused with the changes it would have undone.
func TestConcurrentAppliesOneWins(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	base := apply(t, st, rules(10), 0)
	for round := range 5 {
		live, err := st.LiveNumber(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		weights := []int{30 + round, 60 + round}
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, w := range weights {
			wg.Go(func() {
				<-start
				_, results[i] = st.Apply(context.Background(), revisions.Proposal{Text: rules(w), Parent: live, Author: fmt.Sprint("user", i), Reason: "race"})
			})
		}
		close(start)
		wg.Wait()
		var won, lost int
		for i, err := range results {
			var ce *revisions.ConflictError
			switch {
			case err == nil:
				won = i
			case errors.As(err, &ce):
				lost = i
				if ce.Parent != live || ce.Live.Number != live+1 {
					t.Fatalf("conflict: %+v", ce)
				}
				// The winner's change, which the loser would have undone.
				want := fmt.Sprintf("weight orders: %d%% -> %d%%", weightAt(t, st, live), weights[1-i])
				if len(ce.Changes) != 1 || !strings.Contains(strings.Join(ce.Changes[0].Details, "\n"), want) || !strings.Contains(err.Error(), want) {
					t.Fatalf("conflict changes %+v, want %q\n%v", ce.Changes, want, err)
				}
			default:
				t.Fatal(err)
			}
		}
		if won == lost {
			t.Fatalf("round %d: both applies won or both lost: %v", round, results)
		}
	}
	if n := count(t, pool, "route_revisions"); n != 6 || base.Number != 1 {
		t.Fatalf("%d revisions, want 6", n)
	}
}

func weightAt(t *testing.T, st *revisions.Store, n int64) int {
	t.Helper()
	r, err := st.Get(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return f.Routes[0].Split[0].Weight
}

// A proposal made before any revision existed (parent 0) is refused once
// one does, and the first revision is refused with a parent.
func TestApplyChecksTheParent(t *testing.T) {
	t.Parallel()
	st, _ := newTestStore(t)
	ctx := context.Background()
	if _, err := st.Apply(ctx, revisions.Proposal{Text: rules(10), Parent: 4, Author: "a", Reason: "r"}); err == nil {
		t.Fatal("a parent that does not exist accepted")
	}
	apply(t, st, rules(10), 0)
	_, err := st.Apply(ctx, revisions.Proposal{Text: rules(20), Author: "a", Reason: "r"})
	var ce *revisions.ConflictError
	if !errors.As(err, &ce) || ce.Live.Number != 1 || len(ce.Changes) == 0 {
		t.Fatalf("parent 0 over revision 1: %v", err)
	}
}

func TestInstances(t *testing.T) {
	t.Parallel()
	st, _ := newTestStore(t)
	ctx := context.Background()
	started := time.Now().Add(-time.Minute)
	for _, in := range []revisions.Instance{{ID: "a", Hostname: "h1", PID: 10, StartedAt: started}, {ID: "b", Hostname: "h2", PID: 20, Revision: 3, StartedAt: started}} {
		if err := st.Heartbeat(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Heartbeat(ctx, revisions.Instance{ID: "a", Hostname: "h1", PID: 10, Revision: 4, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	ins, now, err := st.Instances(ctx)
	if err != nil || len(ins) != 2 || now.IsZero() {
		t.Fatalf("%+v %v", ins, err)
	}
	byID := map[string]revisions.Instance{}
	for _, in := range ins {
		byID[in.ID] = in
	}
	if a := byID["a"]; a.Revision != 4 || a.Hostname != "h1" || a.PID != 10 || now.Sub(a.SeenAt) > time.Minute {
		t.Fatalf("a: %+v", a)
	}
	if b := byID["b"]; b.Revision != 3 {
		t.Fatalf("b: %+v", b)
	}
	if err := st.Forget(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ins, _, _ := st.Instances(ctx); len(ins) != 1 || ins[0].ID != "b" {
		t.Fatalf("after forget: %+v", ins)
	}
}
