package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func newGrouped(t *testing.T) (*pgxpool.Pool, *inbox.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := inbox.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	// One flusher: while the held insert commits, the others queue.
	st := inbox.New(pool, groupcommit.Options{Flushers: 1})
	t.Cleanup(st.Close)
	return pool, st
}

// holdInbox locks the inbox table in a transaction of its own, so that the
// next insert blocks in its commit and later ones queue behind it, until
// release. It returns after that first insert (of event id "first") is on
// its way.
func holdInbox(t *testing.T, pool *pgxpool.Pool, st *inbox.Store) (first chan error, release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE webhook_inbox IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	first = make(chan error, 1)
	go func() {
		_, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "first", Body: []byte("{}")})
		first <- err
	}()
	waittest.For(t, "the first insert to wait for the lock", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = 'webhook_inbox'::regclass AND NOT granted`).Scan(&n)
		return n > 0
	})
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Commit(ctx) }) }
	t.Cleanup(release)
	return first, release
}

type outcome struct {
	fresh bool
	id    int64
	err   error
}

// insertAll inserts evs concurrently while the inbox is held, so they all
// queue and go in as one batch once it is released.
func insertAll(t *testing.T, st *inbox.Store, release func(), evs []*inbox.Event) []outcome {
	t.Helper()
	out := make([]outcome, len(evs))
	var wg sync.WaitGroup
	for i, e := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fresh, err := st.Insert(context.Background(), e)
			out[i] = outcome{fresh, e.ID, err}
		}()
	}
	waittest.For(t, "the inserts to queue", func() bool { return st.QueuedInserts() == len(evs) })
	release()
	wg.Wait()
	return out
}

// Repeats of an event id, in one batch and against stored rows, keep the
// semantics of one statement per event: the first arrival is stored and
// answered new, every repeat answered as a repeat, nothing stored twice.
func TestABatchWithRepeatsStoresEachEventOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, st := newGrouped(t)
	if fresh, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "stored", Body: []byte(`"old"`)}); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	first, release := holdInbox(t, pool, st)
	var evs []*inbox.Event
	for i, id := range []string{"x", "stored", "y", "x", "x", "first", "y", "z"} {
		evs = append(evs, &inbox.Event{Adapter: "a", EventID: id, Body: fmt.Appendf(nil, `"%d"`, i)})
	}
	evs = append(evs, &inbox.Event{Adapter: "b", EventID: "x", Body: []byte(`"other adapter"`)})
	out := insertAll(t, st, release, evs)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The queue is taken in arrival order, which the goroutines above do not
	// fix: what matters is one new answer per id, and that its row holds the
	// body of the caller that was told "new".
	news := map[string]int{}
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("insert %d: %v", i, o.err)
		}
		if !o.fresh {
			continue
		}
		k := evs[i].Adapter + "/" + evs[i].EventID
		news[k]++
		got, err := st.Get(ctx, evs[i].Adapter, evs[i].EventID)
		if err != nil || got.ID != o.id || !bytes.Equal(got.Body, evs[i].Body) {
			t.Fatalf("%s answered new with id %d, stored %+v %v", k, o.id, got, err)
		}
	}
	want := map[string]int{"a/x": 1, "a/y": 1, "a/z": 1, "b/x": 1}
	if fmt.Sprint(news) != fmt.Sprint(want) {
		t.Fatalf("answered new: %v, want %v", news, want)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d rows (%v), want 6", n, err)
	}
}

// Many senders at once, with repeats across every batch: exactly one new
// answer per event id, and it names the stored row.
func TestConcurrentIngestStoresEachEventIDOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, st := newGrouped(t)
	const senders, each, ids = 64, 20, 300
	type answer struct {
		id    string
		rowID int64
	}
	answers := make(chan answer, senders*each)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(s), 1))
			for range each {
				e := &inbox.Event{Adapter: "a", EventID: fmt.Sprint(r.IntN(ids)), Body: []byte("{}")}
				fresh, err := st.Insert(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				if fresh {
					answers <- answer{e.EventID, e.ID}
				}
			}
		}()
	}
	wg.Wait()
	close(answers)
	got := map[string]int64{}
	for a := range answers {
		if _, twice := got[a.id]; twice {
			t.Fatalf("event %s answered new twice", a.id)
		}
		got[a.id] = a.rowID
	}
	rows, _ := pool.Query(ctx, `SELECT event_id, id FROM webhook_inbox`)
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (answer, error) {
		var a answer
		return a, r.Scan(&a.id, &a.rowID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(got) {
		t.Fatalf("%d rows stored, %d answered new", len(stored), len(got))
	}
	for _, s := range stored {
		if got[s.id] != s.rowID {
			t.Fatalf("event %s: row %d, the new answer named %d", s.id, s.rowID, got[s.id])
		}
	}
}

// A value PostgreSQL refuses (a NUL in text) fails its own event only: the
// batch is tried again row by row, and the others are stored.
func TestABadEventFailsAloneNotItsBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, st := newGrouped(t)
	first, release := holdInbox(t, pool, st)
	var evs []*inbox.Event
	for i := range 8 {
		evs = append(evs, &inbox.Event{Adapter: "a", EventID: fmt.Sprint(i), Body: []byte("{}")})
	}
	evs[3].EventID = "bad\x00id"
	out := insertAll(t, st, release, evs)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if (i == 3) != (o.err != nil) || (i != 3 && !o.fresh) {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
	if n, _ := st.Count(ctx, "a"); n != 8 {
		t.Fatalf("%d rows, want the first and the 7 good ones", n)
	}
}

// A batch whose connection is killed while it runs (the server ends the
// backend, as pg_terminate_backend or a crash would) answers every member
// with an error and stores none of them; the next batch goes through.
func TestAKilledConnectionFailsTheWholeBatchAndStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, st := newGrouped(t)
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NEW; END $$;
		CREATE TRIGGER die BEFORE INSERT ON webhook_inbox FOR EACH ROW WHEN (NEW.event_id = 'kill') EXECUTE FUNCTION die();`); err != nil {
		t.Fatal(err)
	}
	first, release := holdInbox(t, pool, st)
	var evs []*inbox.Event
	for i := range 8 {
		evs = append(evs, &inbox.Event{Adapter: "a", EventID: fmt.Sprint(i), Body: []byte("{}")})
	}
	evs[5].EventID = "kill"
	out := insertAll(t, st, release, evs)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.err == nil {
			t.Fatalf("event %d answered %+v from a killed batch", i, o)
		}
	}
	if n, _ := st.Count(ctx, "a"); n != 1 {
		t.Fatalf("%d rows, want only the first: a killed batch stored part of itself", n)
	}
	if fresh, err := st.Insert(ctx, evs[0]); err != nil || !fresh {
		t.Fatalf("after the kill: %v %v", fresh, err)
	}
}

// A sender that goes away while its event waits for a batch is told so
// and its event is never stored; one that goes away while its batch
// commits may find its event stored, and a repeat is then a repeat.
func TestACancelledSender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, st := newGrouped(t)
	cctx, cancel := context.WithCancel(ctx)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE webhook_inbox IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	committing, queued := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := st.Insert(cctx, &inbox.Event{Adapter: "a", EventID: "committing", Body: []byte("{}")})
		committing <- err
	}()
	waittest.For(t, "the first insert to wait for the lock", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = 'webhook_inbox'::regclass AND NOT granted`).Scan(&n)
		return n > 0
	})
	go func() {
		_, err := st.Insert(cctx, &inbox.Event{Adapter: "a", EventID: "queued", Body: []byte("{}")})
		queued <- err
	}()
	waittest.For(t, "the second insert to queue", func() bool { return st.QueuedInserts() == 1 })
	cancel()
	for _, c := range []chan error{committing, queued} {
		if err := <-c; !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled sender got %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A later insert is committed after both of those were settled.
	if fresh, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "later", Body: []byte("{}")}); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	if _, err := st.Get(ctx, "a", "queued"); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("the event of a sender that left before its batch was stored: %v", err)
	}
	if fresh, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "committing", Body: []byte("{}")}); err != nil || fresh {
		t.Fatalf("the repeat of an event whose batch was committing: fresh %v, %v", fresh, err)
	}
}
