package idp

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/semaphore"
)

// hashGate bounds the memory that concurrent argon2id runs hold. Each run
// (a client secret or password checked or hashed, or the dummy check that
// makes an unknown client cost the same as a known one) takes its hash's
// memory cost from a budget; a run that does not fit waits, at most
// HashWait, and is refused after that. Waiters are served in order.
type hashGate struct {
	budget int64 // KiB
	wait   time.Duration
	sem    *semaphore.Weighted
	// hook, set only by tests, hears +KiB when a run starts and -KiB when
	// it ends.
	hook func(deltaKiB int64)
}

// errHashBusy means a run waited HashWait without fitting in the budget.
var errHashBusy = errors.New("idp: the hashing budget is exhausted")

func newHashGate(budgetBytes int64, wait time.Duration) *hashGate {
	budget := max(budgetBytes>>10, 1)
	return &hashGate{budget: budget, wait: wait, sem: semaphore.NewWeighted(budget)}
}

// run runs f, an argon2id computation using memKiB of memory, within the
// budget. It returns errHashBusy when no room came within the wait, or
// ctx's error when ctx ended first; f has not run then.
func (g *hashGate) run(ctx context.Context, memKiB uint32, f func()) error {
	w := min(max(int64(memKiB), 1), g.budget) // a hash larger than the budget runs alone
	if !g.sem.TryAcquire(w) {
		wctx, cancel := context.WithTimeout(ctx, g.wait)
		err := g.sem.Acquire(wctx, w)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errHashBusy
		}
	}
	defer g.sem.Release(w)
	if g.hook != nil {
		g.hook(w)
		defer g.hook(-w)
	}
	f()
	return nil
}

// busy is the answer when the hashing budget stays exhausted: 503 with a
// Retry-After, the same for every client. Its cause, errHashBusy, is not
// logged per request: a warning at most every 10 s says it happens.
func (p *Provider) busy() error {
	p.busyLog.Do(func() {
		p.log.Warn("idp: credential checks refused: the argon2id memory budget (idp.hash_memory) stayed full for idp.hash_wait",
			"hash_memory", p.cfg.HashMemory, "hash_wait", p.cfg.HashWait.String())
	})
	return ErrUnavailable.WithDescription("too many credential checks in progress; retry later").WithCause(errHashBusy).
		WithRetryAfter(max(int(p.cfg.HashWait.Round(time.Second)/time.Second), 1))
}

// verifyHash checks pw against an encoded argon2id hash within the hashing
// budget.
func (p *Provider) verifyHash(ctx context.Context, encoded, pw string) (bool, error) {
	h, ok := parseHash(encoded)
	if !ok {
		return false, nil
	}
	var match bool
	if err := p.hashes.run(ctx, h.params.MemoryKiB, func() { match = h.matches(pw) }); err != nil {
		return false, p.busy()
	}
	return match, nil
}

// hash returns a new argon2id hash of pw, within the hashing budget.
func (p *Provider) hash(ctx context.Context, pw string) (string, error) {
	var h string
	var herr error
	if err := p.hashes.run(ctx, p.cfg.Hashing.MemoryKiB, func() { h, herr = p.cfg.Hashing.Hash(pw) }); err != nil {
		return "", err
	}
	return h, herr
}
