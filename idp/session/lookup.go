package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// Lookup returns the live session of a session cookie's value, or
// ErrNoSession (malformed, unknown, expired or ended). It marks the
// session as seen, extending its idle timeout within its absolute end;
// LastSeen is written at most once a minute per session and instance, not
// on every request. The session returned is the caller's copy.
func (m *Manager) Lookup(ctx context.Context, sessionCookie string) (*Session, error) {
	if !wellFormed(sessionCookie) {
		return nil, ErrNoSession
	}
	e, err := m.get(ctx, tokenhash.Sum(sessionCookie))
	if err != nil {
		return nil, err
	}
	if err := m.seen(ctx, e); err != nil {
		return nil, err
	}
	return clone(e.s.Load()), nil
}

// lookupHash returns the live session with this hash (for VerifyJPT: it
// does not mark the session as seen).
func (m *Manager) lookupHash(ctx context.Context, hash string) (*Session, error) {
	e, err := m.get(ctx, hash)
	if err != nil {
		return nil, err
	}
	return clone(e.s.Load()), nil
}

// get returns the cache entry of a live session, loading it from the store
// (once for concurrent callers) when it is not cached.
func (m *Manager) get(ctx context.Context, hash string) (*entry, error) {
	e, ok := m.sessions.GetIfPresent(hash)
	if !ok {
		v, err, _ := m.loading.Do(hash, func() (any, error) { return m.load(ctx, hash) })
		if err != nil {
			return nil, err
		}
		e = v.(*entry)
	}
	s := e.s.Load()
	if s == nil || !m.now().Before(m.end(s)) {
		return nil, ErrNoSession
	}
	return e, nil
}

// load reads a session from the store and caches it, unknown sessions
// too, unless an invalidation raced the read.
func (m *Manager) load(ctx context.Context, hash string) (*entry, error) {
	epoch := m.epoch.Load()
	s, err := m.o.Store.GetSession(ctx, hash)
	e := &entry{}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("session: looking up a session: %w", err)
	default:
		e.s.Store(s)
		e.touched.Store(s.LastSeen.UnixNano())
	}
	m.cache(hash, e, epoch)
	return e, nil
}

// cache keeps e unless an invalidation happened since epoch was read.
func (m *Manager) cache(hash string, e *entry, epoch uint64) {
	if m.epoch.Load() == epoch {
		m.sessions.Set(hash, e)
	}
}

// remember caches a session this instance just wrote.
func (m *Manager) remember(s *Session) {
	e := &entry{}
	e.s.Store(clone(s))
	e.touched.Store(s.LastSeen.UnixNano())
	m.sessions.Set(s.ID, e)
}

// seen extends the idle timeout of a live session, writing it when the
// last write is older than m.touch; concurrent requests elect one writer.
func (m *Manager) seen(ctx context.Context, e *entry) error {
	now := m.now()
	last := e.touched.Load()
	if now.UnixNano()-last < int64(m.touch) || !e.touched.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	s := e.s.Load()
	idle := minTime(now.Add(m.o.Idle), m.absoluteEnd(s))
	err := m.o.Store.TouchSession(ctx, s.ID, now, idle)
	switch {
	case errors.Is(err, store.ErrNotFound): // ended on another instance, its notice still on the way
		m.Invalidate([]string{s.ID})
		return ErrNoSession
	case err != nil:
		// The session stays usable until its recorded idle end; the next
		// request tries again.
		e.touched.CompareAndSwap(now.UnixNano(), last)
		m.log.Warn("recording a session's activity", "error", err.Error())
		return nil
	}
	ns := *s
	ns.LastSeen, ns.IdleExpires = now, idle
	e.s.CompareAndSwap(s, &ns)
	return nil
}

func clone(s *Session) *Session {
	c := *s
	c.Attrs = maps.Clone(s.Attrs)
	c.AMR = slices.Clone(s.AMR)
	return &c
}
