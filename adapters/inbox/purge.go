package inbox

import (
	"context"
	"log/slog"
	"time"
)

// Purger deletes delivered and dead events older than Window from an
// inbox, once when it starts and then every Interval, so that the inbox
// stays bounded while event ids are kept for duplicate detection as long
// as senders retry. Zero values take the defaults on each field.
type Purger struct {
	// Inbox is purged; *Store is one. Required.
	Inbox interface {
		Purge(ctx context.Context, adapter string, cutoff time.Time) (int64, error)
	}
	// Window is how long delivered and dead events are kept. Default 744h
	// (31 days, past Adyen's 30 days of retries).
	Window time.Duration
	// Interval between purges. Default 1h.
	Interval time.Duration
	// Logger receives failures and how many events went. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultDedupeWindow is Purger.Window's default.
const DefaultDedupeWindow = 31 * 24 * time.Hour

// Run purges until ctx ends.
func (p Purger) Run(ctx context.Context) {
	if p.Window == 0 {
		p.Window = DefaultDedupeWindow
	}
	if p.Interval == 0 {
		p.Interval = time.Hour
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if n, err := p.Inbox.Purge(ctx, "", p.Now().Add(-p.Window)); err != nil && ctx.Err() == nil {
			p.Logger.Error("purging old web-hook events", "error", err.Error())
		} else if n > 0 {
			p.Logger.Info("old web-hook events purged", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
