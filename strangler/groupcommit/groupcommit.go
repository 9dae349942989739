// Package groupcommit shares one database commit among concurrent writers:
// callers submit an item and block until the batch holding it has been
// committed (or has failed), so many small writes pay for one transaction,
// one WAL flush and one round trip instead of one each.
//
// A Batcher gathers the items that are waiting when one of its flushers is
// free, never more than MaxBatch. While another batch is being committed it
// keeps gathering what arrives until that commit ends (at most MaxWait),
// then commits: the next batch is ready when the database is free again,
// and no batch waits for a timer the database did not need. A lone item on
// an idle batcher is committed at once, so a single caller's latency does
// not grow. Under load the batches form by themselves from the items that
// arrive while a commit is in flight.
//
// The web-hook inbox (adapters/inbox) and the IDP's token store
// (idp/store/postgres) write through it. Like pgmigrate and pgtest it
// belongs to none of them, so it sits under strangler/ with the other
// small packages any part of ficus may import; it depends on the standard
// library only.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("groupcommit: closed")

// Batcher commits items of type T in batches and answers each caller with
// its result R. Set the fields, then call Submit from any goroutine; the
// flushers start with the first Submit. Close drains and stops them. A
// Batcher must not be copied after first use.
type Batcher[T, R any] struct {
	// Commit writes items in one transaction and returns one result per
	// item, in order. When it returns an error nothing of the batch may be
	// kept (all or none). It runs with a context bounded by Timeout, not a
	// caller's: one caller going away does not abort the others' batch.
	// Required.
	Commit func(ctx context.Context, items []T) ([]R, error)
	// Split, if set, reports whether a batch's error may be caused by one
	// of its items (a constraint or a bad value, not a lost connection):
	// then each item is committed again on its own, so one bad item fails
	// alone. Nil: every member of a failed batch gets the error.
	Split func(error) bool
	// MaxBatch bounds the items of one commit. Default 64; 1 turns
	// grouping off (each item its own commit).
	MaxBatch int
	// MaxWait bounds how long a batch that is not full may wait for more
	// items while another batch is committing: it goes when a commit in
	// flight ends, or after MaxWait if none ends sooner (a slow database).
	// Default 1ms; never waited when nothing else is being committed.
	MaxWait time.Duration
	// Flushers is how many batches may be committing at once (each holds
	// a database connection while it does). Default 2.
	Flushers int
	// Queue bounds the items waiting for a flusher; Submit blocks (until
	// its context ends) when it is full. Default 16 × MaxBatch.
	Queue int
	// Timeout bounds one commit. Default 10s.
	Timeout time.Duration
	// Name names the batcher's kind of write in what Observe receives
	// ("tokens", "inbox", …).
	Name string
	// Observe, if set, is called by a flusher after each commit with what
	// it committed, how long it took and what it cost its items in waiting
	// (metrics). It must be quick: the flusher takes no batch meanwhile.
	// Nil: nothing is measured, not even the clock read per item.
	Observe func(Batch)

	once    sync.Once
	mu      sync.RWMutex // held for reading while sending on ch, for writing to close it
	closed  bool
	ch      chan *request[T, R]
	wg      sync.WaitGroup
	busy    atomic.Int32 // batches committing now
	batches atomic.Int64
	items   atomic.Int64
	// gathering counts the items in batches that wait for more.
	gathering atomic.Int64
	// ended, when a gathering flusher waits for a commit to end, is the
	// channel the next commit to end closes (sigMu guards it).
	sigMu sync.Mutex
	ended chan struct{}
}

// Batch is what Observe is told about one commit.
type Batch struct {
	// Name is the Batcher's Name.
	Name string
	// Items is how many items the commit held.
	Items int
	// Commit is how long Commit ran.
	Commit time.Duration
	// Err is the commit's error (nil: committed). A failed batch that
	// Split tries again item by item is reported, then each retry.
	Err error
	// Waited holds, for each item, the time from its Submit to the start
	// of this commit: in the queue for a flusher, then while its batch
	// gathered. Empty for the retries of a split batch (their waits were
	// reported with it). Valid only during the call.
	Waited []time.Duration
}

type request[T, R any] struct {
	ctx  context.Context
	item T
	at   time.Time // when it was submitted, if the Batcher is observed
	done chan answer[R]
}

type answer[R any] struct {
	r   R
	err error
}

func (b *Batcher[T, R]) start() {
	b.once.Do(func() {
		if b.MaxBatch <= 0 {
			b.MaxBatch = 64
		}
		if b.MaxWait <= 0 {
			b.MaxWait = time.Millisecond
		}
		if b.Flushers <= 0 {
			b.Flushers = 2
		}
		if b.Queue <= 0 {
			b.Queue = 16 * b.MaxBatch
		}
		if b.Timeout <= 0 {
			b.Timeout = 10 * time.Second
		}
		b.ch = make(chan *request[T, R], b.Queue)
		for range b.Flushers {
			b.wg.Add(1)
			go b.flusher()
		}
	})
}

// Submit queues item and returns its result once the batch holding it has
// committed, or the batch's error.
//
// When ctx ends first Submit returns ctx.Err() at once. An item still
// waiting in the queue is then dropped (never written); one already in a
// batch that is committing may still be committed. A caller that gets an
// error other than ErrClosed or a data error therefore cannot know whether
// its item was written, and must be able to repeat it: the inbox's
// duplicate check, a token nobody ever received.
func (b *Batcher[T, R]) Submit(ctx context.Context, item T) (R, error) {
	var zero R
	b.start()
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	req := &request[T, R]{ctx: ctx, item: item, done: make(chan answer[R], 1)}
	if b.Observe != nil {
		req.at = time.Now()
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return zero, ErrClosed
	}
	select {
	case b.ch <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return zero, ctx.Err()
	}
	select {
	case a := <-req.done:
		return a.r, a.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close stops taking items (Submit returns ErrClosed), commits those
// already queued, and returns when the flushers have stopped.
func (b *Batcher[T, R]) Close() {
	b.start()
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.ch)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Stats reports how many batches have been committed (or failed) and how
// many items they held.
func (b *Batcher[T, R]) Stats() (batches, items int64) { return b.batches.Load(), b.items.Load() }

// Queued reports how many items wait for their commit to begin now: in
// the queue for a flusher, or in a batch that waits for more.
func (b *Batcher[T, R]) Queued() int {
	b.start()
	return len(b.ch) + int(b.gathering.Load())
}

func (b *Batcher[T, R]) flusher() {
	defer b.wg.Done()
	batch := make([]*request[T, R], 0, b.MaxBatch)
	var waits []time.Duration // reused: Batch.Waited is valid only during Observe
	for first := range b.ch {
		batch = append(batch[:0], first)
		batch = b.gather(batch)
		waits = b.flush(batch, waits[:0], true)
		clear(batch) // let the requests go
	}
}

// gather adds to batch what is queued now and, while another batch is
// committing, what arrives until a commit ends (at most MaxWait), up to
// MaxBatch. Issue 15: it used to wait the whole MaxWait whenever another
// batch committed, so with fewer callers than MaxBatch every batch waited
// for the timer, longer than the commit it waited behind took; the
// throughput was bound by that wait while the CPU idled.
func (b *Batcher[T, R]) gather(batch []*request[T, R]) []*request[T, R] {
	batch = b.drain(batch)
	if len(batch) >= b.MaxBatch || b.busy.Load() == 0 {
		return batch
	}
	ended := b.commitEnded()
	if b.busy.Load() == 0 { // read again after taking ended: a commit ending from now on closes it
		return batch
	}
	t := time.NewTimer(b.MaxWait)
	defer t.Stop()
	held := int64(len(batch)) // counted in Queued while the batch waits
	b.gathering.Add(held)
	defer func() { b.gathering.Add(-held) }()
	for len(batch) < b.MaxBatch {
		select {
		case r, ok := <-b.ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			held++
			b.gathering.Add(1)
		case <-ended:
			return b.drain(batch)
		case <-t.C:
			return batch
		}
	}
	return batch
}

// drain adds to batch what is queued now, up to MaxBatch.
func (b *Batcher[T, R]) drain(batch []*request[T, R]) []*request[T, R] {
	for len(batch) < b.MaxBatch {
		select {
		case r, ok := <-b.ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commitEnded returns a channel that the next commit to end closes.
func (b *Batcher[T, R]) commitEnded() <-chan struct{} {
	b.sigMu.Lock()
	defer b.sigMu.Unlock()
	if b.ended == nil {
		b.ended = make(chan struct{})
	}
	return b.ended
}

// signalEnd wakes the flushers waiting for a commit to end, if any.
func (b *Batcher[T, R]) signalEnd() {
	b.sigMu.Lock()
	if b.ended != nil {
		close(b.ended)
		b.ended = nil
	}
	b.sigMu.Unlock()
}

// flush commits the live requests of batch and answers every one. first
// says the batch is not a retry of a split one (its items' waits are
// reported, in waits' storage, which it returns for reuse).
func (b *Batcher[T, R]) flush(batch []*request[T, R], waits []time.Duration, first bool) []time.Duration {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- answer[R]{err: err} // its caller has gone: never written
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return waits
	}
	if b.Observe != nil && first {
		now := time.Now()
		for _, r := range live {
			waits = append(waits, now.Sub(r.at))
		}
	}
	rs, err := b.commit(live, waits)
	if err != nil && len(live) > 1 && b.Split != nil && b.Split(err) {
		for _, r := range live {
			b.flush([]*request[T, R]{r}, nil, false)
		}
		return waits
	}
	for i, r := range live {
		if err != nil {
			r.done <- answer[R]{err: err}
		} else {
			r.done <- answer[R]{r: rs[i]}
		}
	}
	return waits
}

// commit runs one commit of live and tells Observe, if set; waits are the
// items' waits (none for a split batch's retries).
func (b *Batcher[T, R]) commit(live []*request[T, R], waits []time.Duration) ([]R, error) {
	items := make([]T, len(live))
	for i, r := range live {
		items[i] = r.item
	}
	var start time.Time
	if b.Observe != nil {
		start = time.Now()
	}
	b.busy.Add(1)
	b.batches.Add(1)
	b.items.Add(int64(len(items)))
	rs, err := b.run(items)
	b.busy.Add(-1)
	b.signalEnd()
	if b.Observe != nil {
		b.Observe(Batch{Name: b.Name, Items: len(items), Commit: time.Since(start), Err: err, Waited: waits})
	}
	return rs, err
}

// run calls Commit under Timeout, a panic turned into an error.
func (b *Batcher[T, R]) run(items []T) (rs []R, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			rs, err = nil, fmt.Errorf("groupcommit: commit panicked: %v", p)
		}
	}()
	rs, err = b.Commit(ctx, items)
	if err == nil && len(rs) != len(items) {
		err = fmt.Errorf("groupcommit: commit returned %d results for %d items", len(rs), len(items))
	}
	return rs, err
}

// Options are the settings a store built on a Batcher exposes (the
// process configuration's store.group_commit). Zero values take the
// Batcher's defaults.
type Options struct {
	// MaxBatch bounds the items of one commit (default 64; 1: no grouping).
	MaxBatch int
	// MaxWait bounds how long a batch waits for more items while another
	// one commits: it goes when that commit ends, MaxWait at most
	// (default 1ms).
	MaxWait time.Duration
	// Flushers is how many batches may commit at once (default 2).
	Flushers int
	// Observe, if set, is told about every commit (see Batcher.Observe).
	Observe func(Batch)
}

// Apply sets b's tunables from o (before b's first use).
func (o Options) Apply(b interface{ set(Options) }) { b.set(o) }

func (b *Batcher[T, R]) set(o Options) {
	b.MaxBatch, b.MaxWait, b.Flushers, b.Observe = o.MaxBatch, o.MaxWait, o.Flushers, o.Observe
}
