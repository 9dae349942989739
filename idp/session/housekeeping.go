package session

import (
	"context"
	"time"
)

// Housekeeping: how often, and how many rows a delete takes at most.
const (
	housekeepingEvery = 30 * time.Second
	cleanupBatch      = 5000
)

// Run does the session layer's background work until ctx ends: it deletes
// expired sessions and visitors in batches (instances share the work:
// PostgreSQL skips rows another instance is deleting), and reloads the
// JPT keys so that a key made or rotated by another instance verifies
// here too.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	for {
		m.Cleanup(ctx, cleanupBatch)
		if err := m.o.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("reloading the JPT keys", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Cleanup deletes the sessions and visitors expired at now, batch rows at
// a time, until a batch comes back short; it returns how many went.
func (m *Manager) Cleanup(ctx context.Context, batch int) int {
	total := 0
	for ctx.Err() == nil {
		n, err := m.o.Store.DeleteExpiredSessions(ctx, m.now(), batch)
		if err != nil {
			m.log.Error("session cleanup failed", "error", err.Error())
			break
		}
		total += n
		if n < batch {
			break
		}
	}
	if total > 0 {
		m.log.Info("expired sessions deleted", "count", total)
	}
	return total
}
