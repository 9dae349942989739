package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

// store is a stand-in for a database that the tests can hold: every
// commit waits at gate (when set) and is recorded.
type store struct {
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
	commits [][]int
	bad     int // an item that fails its batch
}

func (s *store) commit(_ context.Context, items []int) ([]string, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bad != 0 && slices.Contains(items, s.bad) {
		return nil, errBad
	}
	s.commits = append(s.commits, slices.Clone(items))
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprint("ok ", it)
	}
	return out, nil
}

func (s *store) committed() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []int
	for _, c := range s.commits {
		all = append(all, c...)
	}
	slices.Sort(all)
	return all
}

var errBad = errors.New("bad item")

// hold starts a batcher with one flusher whose first commit (of item 0)
// is held until the returned release is called; items submitted meanwhile
// queue up.
func hold(t *testing.T, b *Batcher[int, string], s *store) (release func()) {
	t.Helper()
	s.gate, s.entered = make(chan struct{}), make(chan struct{}, 100)
	b.Commit, b.Flushers = s.commit, 1
	go func() { _, _ = b.Submit(context.Background(), 0) }()
	<-s.entered
	var once sync.Once
	release = func() { once.Do(func() { close(s.gate) }) }
	t.Cleanup(func() { release(); b.Close() })
	return release
}

func TestItemsArrivingDuringACommitShareTheNext(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{MaxWait: time.Hour}
	release := hold(t, b, s)
	var wg sync.WaitGroup
	answers := make([]string, 11)
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.Submit(context.Background(), i)
			if err != nil {
				t.Error(err)
			}
			answers[i] = r
		}()
	}
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == 10 })
	release()
	wg.Wait()
	for i := 1; i <= 10; i++ {
		if answers[i] != fmt.Sprint("ok ", i) {
			t.Fatalf("item %d answered %q", i, answers[i])
		}
	}
	if batches, items := b.Stats(); batches != 2 || items != 11 {
		t.Fatalf("%d batches of %d items, want the 10 queued ones in one batch after the first", batches, items)
	}
}

func TestABatchIsNeverLargerThanMaxBatch(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{MaxBatch: 4}
	release := hold(t, b, s)
	var wg sync.WaitGroup
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = b.Submit(context.Background(), i) }()
	}
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == 10 })
	release()
	wg.Wait()
	for _, c := range s.commits {
		if len(c) > 4 {
			t.Fatalf("a batch of %d items: %v", len(c), c)
		}
	}
	if got := s.committed(); len(got) != 11 {
		t.Fatalf("committed %v", got)
	}
}

// A lone item on an idle batcher goes at once: with a MaxWait of an hour,
// waiting for company would hang this test.
func TestALoneItemDoesNotWaitForCompany(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{Commit: s.commit, MaxWait: time.Hour}
	t.Cleanup(b.Close)
	for i := range 3 {
		if r, err := b.Submit(context.Background(), i); err != nil || r != fmt.Sprint("ok ", i) {
			t.Fatalf("%q %v", r, err)
		}
	}
}

func TestAFailedBatchAnswersEveryMemberWithItsError(t *testing.T) {
	s := &store{bad: 5}
	b := &Batcher[int, string]{}
	release := hold(t, b, s)
	errs := submitQueued(t, b, release, 10)
	for i := 1; i <= 10; i++ {
		if !errors.Is(errs[i], errBad) {
			t.Fatalf("item %d: %v, want the batch's error", i, errs[i])
		}
	}
	if got := s.committed(); !slices.Equal(got, []int{0}) {
		t.Fatalf("committed %v, want only the first batch", got)
	}
}

func TestSplitLetsOneBadItemFailAlone(t *testing.T) {
	s := &store{bad: 5}
	b := &Batcher[int, string]{Split: func(err error) bool { return errors.Is(err, errBad) }}
	release := hold(t, b, s)
	errs := submitQueued(t, b, release, 10)
	for i := 1; i <= 10; i++ {
		if (i == 5) != errors.Is(errs[i], errBad) || (i != 5 && errs[i] != nil) {
			t.Fatalf("item %d: %v", i, errs[i])
		}
	}
	if got := s.committed(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10}) {
		t.Fatalf("committed %v", got)
	}
}

// submitQueued submits 1..n while the first commit is held, then releases
// it and returns each item's error.
func submitQueued(t *testing.T, b *Batcher[int, string], release func(), n int) []error {
	t.Helper()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = b.Submit(context.Background(), i) }()
	}
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == n })
	release()
	wg.Wait()
	return errs
}

// A caller that gives up before its item is in a batch gets its context's
// error, and the item is never written: nobody could be told about it.
func TestACancelledCallersItemIsNeverWritten(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{}
	release := hold(t, b, s)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := b.Submit(ctx, 7); errc <- err }()
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller got %v", err)
	}
	release()
	if _, err := b.Submit(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	if got := s.committed(); !slices.Equal(got, []int{0, 8}) {
		t.Fatalf("committed %v: the cancelled item was written", got)
	}
}

// The queue is bounded: a full one makes Submit wait, until its context
// ends, instead of holding more.
func TestAFullQueuePushesBack(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{Queue: 2}
	release := hold(t, b, s)
	for i := 1; i <= 2; i++ {
		go func() { _, _ = b.Submit(context.Background(), i) }()
	}
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == 2 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := b.Submit(ctx, 3); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("Submit on a full queue returned %v", err)
	case <-time.After(50 * time.Millisecond): // still blocked, as it should be
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	release()
}

func TestCloseCommitsWhatIsQueuedThenRefuses(t *testing.T) {
	s := &store{}
	b := &Batcher[int, string]{}
	release := hold(t, b, s)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := 1; i <= 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = b.Submit(context.Background(), i) }()
	}
	waittest.For(t, "the queue to fill", func() bool { return len(b.ch) == 5 })
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	waittest.For(t, "the queue to fill", func() bool { b.mu.RLock(); defer b.mu.RUnlock(); return b.closed })
	if _, err := b.Submit(context.Background(), 99); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	release()
	<-closed
	wg.Wait()
	for i := 1; i <= 5; i++ {
		if errs[i] != nil {
			t.Fatalf("queued item %d: %v", i, errs[i])
		}
	}
	if got := s.committed(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("committed %v", got)
	}
}

func TestAPanickingCommitIsAnError(t *testing.T) {
	b := &Batcher[int, string]{Commit: func(context.Context, []int) ([]string, error) { panic("boom") }}
	t.Cleanup(b.Close)
	if _, err := b.Submit(context.Background(), 1); err == nil {
		t.Fatal("a panicking commit answered ok")
	}
}

// Observe is told about every commit: its items, its error, and how long
// each item waited before it (once: a split batch's retries report none).
func TestObserveIsToldEveryCommit(t *testing.T) {
	s := &store{bad: 5}
	var mu sync.Mutex
	var seen []Batch
	b := &Batcher[int, string]{Name: "test", Split: func(err error) bool { return errors.Is(err, errBad) }}
	Options{Observe: func(x Batch) {
		mu.Lock()
		defer mu.Unlock()
		x.Waited = slices.Clone(x.Waited) // valid only during the call
		seen = append(seen, x)
	}}.Apply(b)
	release := hold(t, b, s)
	submitQueued(t, b, release, 10)
	mu.Lock()
	defer mu.Unlock()
	var items, waited, failed int
	for _, x := range seen {
		if x.Name != "test" || x.Commit < 0 {
			t.Fatalf("observed %+v", x)
		}
		items += x.Items
		waited += len(x.Waited)
		if x.Err != nil {
			failed++
		}
		for _, w := range x.Waited {
			if w < 0 {
				t.Fatalf("a negative wait: %+v", x)
			}
		}
	}
	// [0], the failed [1..10], then each of 1..10 again on its own (5 fails).
	if len(seen) != 12 || items != 21 || waited != 11 || failed != 2 {
		t.Fatalf("%d commits, %d items, %d waits, %d failed: %+v", len(seen), items, waited, failed, seen)
	}
	if seen[1].Items != 10 || !errors.Is(seen[1].Err, errBad) || len(seen[1].Waited) != 10 {
		t.Fatalf("the failed batch was observed as %+v", seen[1])
	}
}

// A flusher that finds another batch committing gathers what arrives until
// that commit ends, and goes then: not after MaxWait (an hour here, which
// would hang this test), and not at once (then the items would never all
// wait together: 1 would be committing, behind the held gate, while 2..5
// arrive).
func TestABatchGathersUntilTheCommitInFlightEnds(t *testing.T) {
	s := &store{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	b := &Batcher[int, string]{Commit: s.commit, Flushers: 2, MaxWait: time.Hour}
	t.Cleanup(func() { close(s.gate); b.Close() })
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := b.Submit(context.Background(), i); err != nil || r != fmt.Sprint("ok ", i) {
				t.Errorf("item %d: %q %v", i, r, err)
			}
		}()
		if i == 0 {
			waittest.Recv(t, "the commit of [0]", s.entered) // flusher one, held
		}
	}
	// Flusher two holds 1..5 while [0] commits.
	waittest.For(t, "items 1..5 to wait for their commit", func() bool { return b.Queued() == 5 })
	s.gate <- struct{}{} // [0] ends: the gathered batch goes
	waittest.Recv(t, "the commit of the gathered batch", s.entered)
	s.gate <- struct{}{}
	wg.Wait()
	if batches, items := b.Stats(); batches != 2 || items != 6 {
		t.Fatalf("%d batches of %d items, want [0], [1..5]", batches, items)
	}
}

// BenchmarkLatencyBound drives a batcher whose commit takes a fixed time
// and no CPU (a database that is far from busy: the time is its round trip
// and WAL flush) from many callers at once, as the IDP's client-credentials
// requests do. What bounds the rate is then how batches form, not the CPU;
// it reports items per commit and the commit's share of a caller's wait.
//
//	go test ./strangler/groupcommit -run '^$' -bench LatencyBound -benchtime 20000x
func BenchmarkLatencyBound(b *testing.B) {
	for _, bc := range []struct{ callers, flushers int }{{1, 2}, {32, 2}, {64, 2}, {32, 4}, {64, 4}} {
		b.Run(fmt.Sprintf("callers=%d/flushers=%d", bc.callers, bc.flushers), func(b *testing.B) {
			const commitTime = 500 * time.Microsecond
			bt := &Batcher[int, int]{Flushers: bc.flushers, Commit: func(_ context.Context, items []int) ([]int, error) {
				time.Sleep(commitTime)
				return items, nil
			}}
			defer bt.Close()
			var next sync.WaitGroup
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			b.ResetTimer()
			for range bc.callers {
				next.Go(func() {
					for range work {
						if _, err := bt.Submit(context.Background(), 1); err != nil {
							b.Error(err)
						}
					}
				})
			}
			next.Wait()
			b.StopTimer()
			batches, items := bt.Stats()
			b.ReportMetric(float64(items)/float64(batches), "items/commit")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// Many callers on several flushers with MaxWait an hour: no flusher may
// wait for a commit that has already ended (the busy count and the ended
// channel are read in an order that misses no end), so the test finishes
// only if every gathering batch is woken by a commit's end. Every caller
// is answered once (a second answer would block its flusher: the test
// would hang), an item answered ok is committed exactly once, one that
// failed is not kept, and a cancelled caller's item is written at most
// once.
func TestNoFlusherWaitsForACommitThatEnded(t *testing.T) {
	for _, bc := range []struct{ flushers, callers int }{{2, 2}, {2, 3}, {3, 4}, {4, 16}} {
		flushers, callers := bc.flushers, bc.callers
		t.Run(fmt.Sprintf("flushers=%d/callers=%d", flushers, callers), func(t *testing.T) {
			s := &store{bad: -1}
			var observed, waits int64
			var omu sync.Mutex
			b := &Batcher[int, string]{Commit: func(ctx context.Context, items []int) ([]string, error) {
				runtime.Gosched()
				for _, it := range items {
					if it%97 == 96 {
						return nil, errBad
					}
				}
				return s.commit(ctx, items)
			}, Split: func(err error) bool { return errors.Is(err, errBad) }, Flushers: flushers, MaxBatch: 64, MaxWait: time.Hour}
			Options{Flushers: flushers, MaxBatch: 64, MaxWait: time.Hour, Observe: func(x Batch) {
				omu.Lock()
				observed += int64(x.Items)
				waits += int64(len(x.Waited))
				omu.Unlock()
			}}.Apply(b)
			const each = 500
			results := make([][]error, callers)
			var wg sync.WaitGroup
			for c := range callers {
				results[c] = make([]error, each)
				wg.Go(func() {
					for i := range each {
						ctx, cancel := context.WithCancel(context.Background())
						if i%13 == 5 {
							go cancel()
						}
						_, results[c][i] = b.Submit(ctx, c*each+i)
						cancel()
					}
				})
			}
			wg.Wait()
			b.Close()
			count := map[int]int{}
			for _, it := range s.committed() {
				count[it]++
			}
			for c := range callers {
				for i, err := range results[c] {
					it := c*each + i
					switch {
					case err == nil && count[it] != 1:
						t.Fatalf("item %d answered ok, committed %d times", it, count[it])
					case errors.Is(err, errBad) && count[it] != 0:
						t.Fatalf("item %d failed, committed %d times", it, count[it])
					case count[it] > 1:
						t.Fatalf("item %d (%v) committed %d times", it, err, count[it])
					case err != nil && !errors.Is(err, errBad) && !errors.Is(err, context.Canceled):
						t.Fatalf("item %d: %v", it, err)
					}
				}
			}
			batches, items := b.Stats()
			if observed != items || batches == 0 || waits > items {
				t.Fatalf("observed %d items, stats %d in %d batches, %d waits", observed, items, batches, waits)
			}
		})
	}
}

// Close while a batch gathers behind a held commit (MaxWait an hour): the
// gathering batch goes at once, without waiting for the held commit to
// end, and Close returns when both have committed and every caller has
// its answer.
func TestCloseSendsAGatheringBatch(t *testing.T) {
	s := &store{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	b := &Batcher[int, string]{Commit: s.commit, Flushers: 2, MaxWait: time.Hour}
	answers := make(chan error, 4)
	go func() { _, err := b.Submit(context.Background(), 0); answers <- err }()
	waittest.Recv(t, "the commit of [0]", s.entered) // flusher one, held
	for i := 1; i <= 3; i++ {
		go func() { _, err := b.Submit(context.Background(), i); answers <- err }()
	}
	waittest.For(t, "items 1..3 to gather", func() bool { return b.Queued() == 3 })
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	// [0] is still held: only Close can have sent the gathered batch.
	waittest.Recv(t, "the commit of the gathered batch", s.entered)
	select {
	case <-closed:
		t.Fatal("Close returned while [0] was committing")
	default:
	}
	close(s.gate)
	<-closed
	for range 4 {
		if err := <-answers; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.committed(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("committed %v", got)
	}
	if _, err := b.Submit(context.Background(), 4); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
