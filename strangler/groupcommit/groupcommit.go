// Package groupcommit shares one database commit among concurrent writers:
// callers submit an item and block until the batch holding it has been
// committed (or has failed), so many small writes pay for one transaction,
// one WAL flush and one round trip instead of one each.
//
// A Batcher gathers the items that are waiting when one of its flushers is
// free, never more than MaxBatch. It waits for more (at most MaxWait) only
// while another batch is being committed: a lone item on an idle batcher is
// committed at once, so a single caller's latency does not grow. Under load
// the batches form by themselves from the items that arrive while a commit
// is in flight.
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
	// MaxWait is how long a batch that is not full may wait for more items
	// while another batch is committing. Default 1ms; never waited when
	// nothing else is being committed.
	MaxWait time.Duration
	// Flushers is how many batches may be committing at once (each holds
	// a database connection while it does). Default 2.
	Flushers int
	// Queue bounds the items waiting for a flusher; Submit blocks (until
	// its context ends) when it is full. Default 16 × MaxBatch.
	Queue int
	// Timeout bounds one commit. Default 10s.
	Timeout time.Duration

	once    sync.Once
	mu      sync.RWMutex // held for reading while sending on ch, for writing to close it
	closed  bool
	ch      chan *request[T, R]
	wg      sync.WaitGroup
	busy    atomic.Int32 // batches committing now
	batches atomic.Int64
	items   atomic.Int64
}

type request[T, R any] struct {
	ctx  context.Context
	item T
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

// Queued reports how many items wait for a flusher now.
func (b *Batcher[T, R]) Queued() int {
	b.start()
	return len(b.ch)
}

func (b *Batcher[T, R]) flusher() {
	defer b.wg.Done()
	batch := make([]*request[T, R], 0, b.MaxBatch)
	for first := range b.ch {
		batch = append(batch[:0], first)
		batch = b.gather(batch)
		b.flush(batch)
		clear(batch) // let the requests go
	}
}

// gather adds to batch what is queued now and, while another batch is
// committing, what arrives within MaxWait, up to MaxBatch.
func (b *Batcher[T, R]) gather(batch []*request[T, R]) []*request[T, R] {
drain:
	for len(batch) < b.MaxBatch {
		select {
		case r, ok := <-b.ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			break drain
		}
	}
	if len(batch) >= b.MaxBatch || b.busy.Load() == 0 {
		return batch
	}
	t := time.NewTimer(b.MaxWait)
	defer t.Stop()
	for len(batch) < b.MaxBatch {
		select {
		case r, ok := <-b.ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-t.C:
			return batch
		}
	}
	return batch
}

// flush commits the live requests of batch and answers every one.
func (b *Batcher[T, R]) flush(batch []*request[T, R]) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- answer[R]{err: err} // its caller has gone: never written
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	rs, err := b.commit(live)
	if err != nil && len(live) > 1 && b.Split != nil && b.Split(err) {
		for _, r := range live {
			b.flush([]*request[T, R]{r})
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.done <- answer[R]{err: err}
		} else {
			r.done <- answer[R]{r: rs[i]}
		}
	}
}

func (b *Batcher[T, R]) commit(live []*request[T, R]) (rs []R, err error) {
	items := make([]T, len(live))
	for i, r := range live {
		items[i] = r.item
	}
	b.busy.Add(1)
	defer b.busy.Add(-1)
	b.batches.Add(1)
	b.items.Add(int64(len(items)))
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
	// one commits (default 1ms).
	MaxWait time.Duration
	// Flushers is how many batches may commit at once (default 2).
	Flushers int
}

// Apply sets b's tunables from o (before b's first use).
func (o Options) Apply(b interface{ set(Options) }) { b.set(o) }

func (b *Batcher[T, R]) set(o Options) {
	b.MaxBatch, b.MaxWait, b.Flushers = o.MaxBatch, o.MaxWait, o.Flushers
}
