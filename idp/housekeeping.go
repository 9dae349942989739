package idp

import (
	"context"
	"sync"
	"time"
)

// CleanupStorage deletes what expired.
type CleanupStorage interface {
	// DeleteExpired removes up to batch tokens and codes that expired
	// before before, returning how many went.
	DeleteExpired(ctx context.Context, before time.Time, batch int) (int, error)
}

// Housekeeping is a provider's background work: it deletes expired tokens
// and codes, and reloads the signing keys so that a key rotated by another
// instance or by the CLI is published and used here too. Zero values take
// the defaults on each field.
type Housekeeping struct {
	// Provider is the provider kept. Required.
	Provider *Provider
	// CleanupInterval: expired tokens and codes are deleted this often.
	// Default 30s.
	CleanupInterval time.Duration
	// CleanupBatch bounds one delete. Default 5000.
	CleanupBatch int
	// KeyReloadInterval: the signing keys are read from the store this
	// often. Default 30s.
	KeyReloadInterval time.Duration
}

// Run does the work until ctx ends, then returns.
func (h Housekeeping) Run(ctx context.Context) {
	if h.CleanupInterval == 0 {
		h.CleanupInterval = 30 * time.Second
	}
	if h.CleanupBatch == 0 {
		h.CleanupBatch = 5000
	}
	if h.KeyReloadInterval == 0 {
		h.KeyReloadInterval = 30 * time.Second
	}
	var wg sync.WaitGroup
	wg.Go(func() { h.Provider.RunCleanup(ctx, h.CleanupInterval, h.CleanupBatch) })
	wg.Go(func() { h.reloadKeys(ctx) })
	wg.Wait()
}

// reloadKeys reloads the signing keys every KeyReloadInterval until ctx
// ends. A failed reload keeps the keys loaded before, and is logged.
func (h Housekeeping) reloadKeys(ctx context.Context) {
	p := h.Provider
	t := time.NewTicker(h.KeyReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.keys.Reload(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("reloading signing keys", "error", err.Error())
			}
		}
	}
}

// RunCleanup deletes expired tokens and codes every interval, in batches,
// until ctx ends; under sustained load a round keeps deleting until a batch
// comes back short, so the table stays bounded by what is live.
func (p *Provider) RunCleanup(ctx context.Context, interval time.Duration, batch int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		total := 0
		for ctx.Err() == nil {
			n, err := p.st.DeleteExpired(ctx, p.now().Add(-time.Minute), batch)
			if err != nil {
				p.log.Error("token cleanup failed", "error", err.Error())
				break
			}
			total += n
			if n < batch {
				break
			}
		}
		if total > 0 {
			p.log.Info("expired tokens deleted", "count", total)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
