// Package revocation makes a revoked token stop working everywhere: in
// every cache of token look-ups in this process at once, and, through
// Notices (PostgreSQL LISTEN/NOTIFY), in every other instance on the same
// database within a second.
//
// Wiring: register Fanout.Revoked with idp.Provider.OnRevoke and run
// Fanout.Run for as long as the process serves.
package revocation

import (
	"context"
	"log/slog"
	"time"
)

// Cache is a cache of token look-ups that must forget revoked tokens:
// strangler/auth.Stage is one; Funcs adapts others.
type Cache interface {
	// Invalidate drops the records of the tokens with these hashes.
	Invalidate(hashes []string)
	// Flush drops every record (revocation notices may have been missed).
	Flush()
}

// Funcs makes a Cache of two functions, for example an idp.Provider's
// Funcs{InvalidateFunc: p.ForgetTokens, FlushFunc: p.ForgetAll}.
type Funcs struct {
	InvalidateFunc func(hashes []string)
	FlushFunc      func()
}

// Invalidate calls f.InvalidateFunc.
func (f Funcs) Invalidate(hashes []string) { f.InvalidateFunc(hashes) }

// Flush calls f.FlushFunc.
func (f Funcs) Flush() { f.FlushFunc() }

// Notices carry revocations between the instances that share a database;
// idp/store/postgres.Notices is the implementation.
type Notices interface {
	// Publish tells every instance, this one included, that the tokens
	// with these hashes were revoked.
	Publish(ctx context.Context, hashes []string) error
	// Listen calls onRevoked with the hashes of every notice until ctx
	// ends, and onReset whenever notices may have been missed.
	Listen(ctx context.Context, onRevoked func(hashes []string), onReset func())
}

// Fanout hands revocations to the caches of this process and to the other
// instances. Zero values take the defaults on each field.
type Fanout struct {
	// Local caches forget the tokens revoked in this process (the
	// provider that revokes forgets them itself).
	Local []Cache
	// Remote caches forget the tokens revoked in other instances, and
	// everything when notices may have been missed.
	Remote []Cache
	// Notices, if set, carries revocations to and from other instances.
	// Nil: this process is alone (the memory store), and Run returns at
	// once.
	Notices Notices
	// PublishTimeout bounds the publishing of one revocation. Default 5s.
	PublishTimeout time.Duration
	// Logger receives failures to publish. Nil discards them.
	Logger *slog.Logger
}

// Revoked hands the hashes of tokens revoked in this process to the Local
// caches, then publishes them to the other instances. Register it with
// idp.Provider.OnRevoke.
func (f *Fanout) Revoked(hashes []string) {
	for _, c := range f.Local {
		c.Invalidate(hashes)
	}
	if f.Notices == nil {
		return
	}
	timeout := f.PublishTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := f.Notices.Publish(ctx, hashes); err != nil && f.Logger != nil {
		f.Logger.Error("publishing a revocation to other instances failed", "error", err.Error())
	}
}

// Run hands the revocations published by any instance to the Remote
// caches until ctx ends, and flushes them whenever notices may have been
// missed.
func (f *Fanout) Run(ctx context.Context) {
	if f.Notices == nil {
		return
	}
	f.Notices.Listen(ctx, func(hashes []string) {
		for _, c := range f.Remote {
			c.Invalidate(hashes)
		}
	}, func() {
		for _, c := range f.Remote {
			c.Flush()
		}
	})
}
