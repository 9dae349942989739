package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// purgeCall is one call of Purge seen by fakePurge.
type purgeCall struct {
	adapter string
	cutoff  time.Time
}

// fakePurge reports each Purge on calls and answers with n and the
// error set last.
type fakePurge struct {
	calls chan purgeCall
	n     int64
	mu    sync.Mutex
	err   error
}

func (f *fakePurge) Purge(_ context.Context, adapter string, cutoff time.Time) (int64, error) {
	f.calls <- purgeCall{adapter, cutoff}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.err
}

func (f *fakePurge) fail(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

// reporting is a real inbox that reports each finished Purge.
type reporting struct {
	*inbox.Store
	done chan struct{}
}

func (r reporting) Purge(ctx context.Context, adapter string, cutoff time.Time) (int64, error) {
	n, err := r.Store.Purge(ctx, adapter, cutoff)
	r.done <- struct{}{}
	return n, err
}

// Issue 9: the purge loop, moved out of cmd/ficus, purges at once and then
// every interval, logs failures and goes on, and ends with its context.
func TestPurgerRunsUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &fakePurge{calls: make(chan purgeCall), n: 3}
	var logs bytes.Buffer // read once Run returned
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inbox.Purger{Inbox: f, Interval: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Now: func() time.Time { return now }}.Run(ctx)
	}()
	first := waittest.Recv(t, "a purge", f.calls)
	if first.adapter != "" || !first.cutoff.Equal(now.Add(-inbox.DefaultDedupeWindow)) {
		t.Fatalf("first purge %+v, want every adapter before %s", first, now.Add(-inbox.DefaultDedupeWindow))
	}
	waittest.Recv(t, "a purge", f.calls) // the next interval
	f.fail(errors.New("connection refused"))
	waittest.Recv(t, "a purge", f.calls) // at the latest this one fails
	waittest.Recv(t, "a purge", f.calls) // it goes on after a failure
	cancel()
	for ended := false; !ended; {
		select {
		case <-f.calls: // a purge that was due as ctx ended
		case <-done:
			ended = true
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end with its context")
		}
	}
	if !strings.Contains(logs.String(), "count=3") {
		t.Errorf("purged count not logged: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("failure not logged: %s", logs.String())
	}
}

func TestPurgerOnPostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for _, id := range []string{"delivered", "dead", "pending"} {
		e := &inbox.Event{Adapter: "a", EventID: id, Body: []byte("{}")}
		if _, err := st.InsertClaimed(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
		var err error
		switch id {
		case "delivered":
			err = st.Delivered(ctx, e)
		case "dead":
			err = st.DeadLetter(ctx, e, "gone")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(2 * time.Hour) // the events are older than the window by then
	purged := make(chan struct{}, 1)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		inbox.Purger{Inbox: reporting{st, purged}, Window: time.Hour, Now: func() time.Time { return later }}.Run(runCtx)
	}()
	select {
	case <-purged:
	case <-time.After(10 * time.Second):
		t.Fatal("no purge at start")
	}
	cancel()
	<-done
	if n, err := st.Count(ctx, "a"); err != nil || n != 1 {
		t.Fatalf("%d events left (%v), want the pending one", n, err)
	}
	if _, err := st.Get(ctx, "a", "pending"); err != nil {
		t.Fatalf("the pending event was purged: %v", err)
	}
}
