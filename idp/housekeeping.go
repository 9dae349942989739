package idp

import (
	"context"
	"sync"
	"time"
)

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
