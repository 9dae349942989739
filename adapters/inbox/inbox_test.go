package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

func newStore(t *testing.T) *inbox.Store {
	pool := pgtest.NewPool(t)
	if err := inbox.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	st := inbox.New(pool)
	t.Cleanup(st.Close)
	return st
}

func TestConcurrentClaimersNeverShareAnEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for i := 0; i < 60; i++ {
		if _, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: fmt.Sprint(i), Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				evs, err := st.Claim(ctx, 4, time.Minute, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if len(evs) == 0 {
					return
				}
				mu.Lock()
				for _, e := range evs {
					claimed[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 60 {
		t.Fatalf("%d events claimed, want 60", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("event %d claimed %d times", id, n)
		}
	}
}

func TestOrderedDeliveryPerKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for i := 1; i <= 3; i++ {
		st.Insert(ctx, &inbox.Event{Adapter: "bank", EventID: fmt.Sprintf("p1-%d", i), OrderKey: "payment-1", Body: []byte("{}")})
	}
	st.Insert(ctx, &inbox.Event{Adapter: "bank", EventID: "p2-1", OrderKey: "payment-2", Body: []byte("{}")})
	for step := 1; step <= 3; step++ {
		evs, err := st.Claim(ctx, 10, 0, []string{"bank"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.EventID)
			if err := st.Delivered(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		want := fmt.Sprintf("[p1-%d]", step)
		if step == 1 {
			want = "[p1-1 p2-1]"
		}
		if fmt.Sprint(got) != want {
			t.Fatalf("step %d claimed %v, want %s", step, got, want)
		}
	}
}

func TestALeaseBringsBackAnEventWhoseWorkerDied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "e", Body: []byte("{}")})
	first, _ := st.Claim(ctx, 1, 200*time.Millisecond, nil)
	if again, _ := st.Claim(ctx, 1, time.Minute, nil); len(first) != 1 || len(again) != 0 {
		t.Fatal("a leased event was handed out twice")
	}
	time.Sleep(300 * time.Millisecond) // its 200ms lease runs out: the worker never reported back
	if again, _ := st.Claim(ctx, 1, time.Minute, nil); len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("the event did not come back after its lease: %v", again)
	}
}

// queue is what both inboxes offer to these tests.
type queue interface {
	Insert(ctx context.Context, e *inbox.Event) (bool, error)
	InsertClaimed(ctx context.Context, e *inbox.Event, lease time.Duration) (bool, error)
	Claim(ctx context.Context, limit int, lease time.Duration, ordered []string) ([]*inbox.Event, error)
	Retry(ctx context.Context, e *inbox.Event, next time.Time, reason string) error
	Renew(ctx context.Context, evs []*inbox.Event, lease time.Duration) ([]*inbox.Event, error)
	Delivered(ctx context.Context, e *inbox.Event) error
	DeadLetter(ctx context.Context, e *inbox.Event, reason string) error
}

// A worker whose lease ran out and whose event another worker claimed
// since can neither renew the lease nor record an outcome: only the
// current claim can.
func TestALostClaimCannotRenewOrSettle(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]func(t *testing.T) queue{
		"postgres": func(t *testing.T) queue { return newStore(t) },
		"memory":   func(*testing.T) queue { return inbox.NewMemory() },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := q(t)
			if _, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: "x", Body: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			old, err := st.Claim(ctx, 1, 50*time.Millisecond, nil)
			if err != nil || len(old) != 1 || old[0].Claim == 0 || old[0].LeaseEnds.IsZero() {
				t.Fatalf("claim: %v %+v", err, old)
			}
			if held, err := st.Renew(ctx, old, 50*time.Millisecond); err != nil || len(held) != 1 {
				t.Fatalf("renewing a held claim: %v %v", held, err)
			}
			var cur []*inbox.Event
			waittest.For(t, "the lease to run out and another claim to take the event", func() bool {
				cur, _ = st.Claim(ctx, 1, time.Minute, nil)
				return len(cur) == 1
			})
			if cur[0].Claim == old[0].Claim {
				t.Fatal("a new claim kept the old token")
			}
			if held, err := st.Renew(ctx, old, time.Minute); err != nil || len(held) != 0 {
				t.Fatalf("renewing a lost claim: %v %v", held, err)
			}
			for what, err := range map[string]error{
				"Delivered":  st.Delivered(ctx, old[0]),
				"Retry":      st.Retry(ctx, old[0], time.Now(), "503"),
				"DeadLetter": st.DeadLetter(ctx, old[0], "refused"),
			} {
				if !errors.Is(err, inbox.ErrClaimLost) {
					t.Errorf("%s under a lost claim: %v", what, err)
				}
			}
			if err := st.Delivered(ctx, cur[0]); err != nil {
				t.Fatalf("the current claim: %v", err)
			}
			if held, err := st.Renew(ctx, cur, time.Minute); err != nil || len(held) != 0 {
				t.Fatalf("renewing a delivered event: %v %v", held, err)
			}
			if evs, _ := st.Claim(ctx, 1, 0, nil); len(evs) != 0 {
				t.Fatalf("a delivered event was claimed again")
			}
		})
	}
}

// Issue 8, item 13: an event stored for an inline (synchronous) attempt
// is claimed from the start; workers get it when the attempt reports a
// failure, or when its lease ends because the attempt never reported back.
func TestAnEventInsertedClaimedWaitsForItsLease(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]func(t *testing.T) queue{
		"postgres": func(t *testing.T) queue { return newStore(t) },
		"memory":   func(*testing.T) queue { return inbox.NewMemory() },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := q(t)
			failed := &inbox.Event{Adapter: "a", EventID: "failed", Body: []byte("{}")}
			if fresh, err := st.InsertClaimed(ctx, failed, time.Hour); err != nil || !fresh || failed.ID == 0 || failed.Attempts != 1 {
				t.Fatalf("InsertClaimed: %v %v, id %d, %d attempts", fresh, err, failed.ID, failed.Attempts)
			}
			if fresh, err := st.InsertClaimed(ctx, &inbox.Event{Adapter: "a", EventID: "failed", Body: []byte("{}")}, time.Hour); err != nil || fresh {
				t.Fatalf("a repeat: fresh %v, %v", fresh, err)
			}
			died := &inbox.Event{Adapter: "a", EventID: "died", Body: []byte("{}")}
			st.InsertClaimed(ctx, died, 300*time.Millisecond)
			if evs, _ := st.Claim(ctx, 10, time.Minute, nil); len(evs) != 0 {
				t.Fatalf("a worker took an event claimed for an inline attempt: %v", evs[0].EventID)
			}
			// The inline attempt of "failed" reports a failure: due again.
			if err := st.Retry(ctx, failed, time.Now(), "target answered 503"); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			waittest.Until(15*time.Second, func() bool {
				evs, err := st.Claim(ctx, 10, time.Minute, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					got[e.EventID] = e.Attempts
				}
				return len(got) >= 2
			}) // a miss is reported below, with what was claimed
			if got["failed"] != 2 || got["died"] != 2 {
				t.Fatalf("claimed %v, want both events on their second attempt", got)
			}
		})
	}
}

// A worker that records a delivered event while the process stops (the
// inbox already closed after the drain, the attempt answered just before)
// still marks it delivered: refused, the event stayed pending and another
// instance delivered it again once its lease ended (found from outside:
// SIGTERM under delivery load logged "groupcommit: closed" for an event
// the target had answered 200, and it went out twice). A mark whose claim
// was lost is still refused.
func TestADeliveredMarkAfterCloseIsCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for _, id := range []string{"kept", "lost"} {
		if _, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: id, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.Claim(ctx, 10, time.Minute, nil)
	if err != nil || len(evs) != 2 {
		t.Fatalf("claimed %d events: %v", len(evs), err)
	}
	st.Close()
	kept, lost := evs[0], *evs[1]
	lost.Claim++ // another worker's claim
	if err := st.Delivered(ctx, kept); err != nil {
		t.Fatalf("a delivered mark after Close: %v", err)
	}
	if err := st.Delivered(ctx, &lost); !errors.Is(err, inbox.ErrClaimLost) {
		t.Fatalf("a mark under a lost claim after Close: %v, want ErrClaimLost", err)
	}
	for id, want := range map[string]string{"kept": "delivered", "lost": "pending"} {
		e, err := st.Get(ctx, "a", id)
		if err != nil || e.Status != want {
			t.Fatalf("%s: %v %v, want %s", id, e, err, want)
		}
	}
}
