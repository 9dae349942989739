package adapters_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// Two deliverers (two instances) on one database and a slow target: a
// worker renews the lease of the rest of its claimed batch before each
// event, so the other instance never takes an event the first one still
// holds, and no event is delivered twice (or claimed twice) although
// nobody died.
func TestTwoDeliverersOnOneDatabaseDeliverEachEventOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := pgtest.NewPool(t)
	if err := inbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	const events = 16
	var mu sync.Mutex
	seen := map[string]int{}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // each event well within the lease, a batch of 8 not
		mu.Lock()
		seen[r.Header.Get(adapters.EventIDHeader)]++
		mu.Unlock()
	}))
	t.Cleanup(slow.Close)
	var stores []*inbox.Store
	for range 2 {
		st := inbox.New(pool)
		t.Cleanup(st.Close)
		stores = append(stores, st)
	}
	for i := range events {
		if _, err := stores[0].Insert(ctx, &inbox.Event{Adapter: "a", EventID: fmt.Sprint(i), Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, st := range stores {
		d := &adapters.Deliverer{Inbox: st, Targets: map[string]adapters.Target{"a": {URL: slow.URL, Token: staticToken}},
			Workers: 2, Batch: 8, Lease: time.Second, Poll: 10 * time.Millisecond}
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(ctx) }()
	}
	waittest.For(t, "every event to be delivered", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM webhook_inbox WHERE status = 'delivered'`).Scan(&n)
		return n == events
	})
	// Leases that ran out would show now: wait past one and look again.
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	// Nor did an event wait in a batch until its lease ran out and another
	// worker claimed it: each was claimed once.
	var bounced int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_inbox WHERE attempts <> 1`).Scan(&bounced); err != nil || bounced != 0 {
		t.Errorf("%d events claimed more than once (%v)", bounced, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range events {
		if n := seen[fmt.Sprint(i)]; n != 1 {
			t.Errorf("event %d delivered %d times", i, n)
		}
	}
}
