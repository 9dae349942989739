package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// Defaults of Options.
const (
	DefaultAudience     = "ficus-gateway"
	DefaultJPTTTL       = 5 * time.Minute
	DefaultLoggedOnMax  = 4 * time.Hour
	DefaultIdle         = 30 * time.Minute
	DefaultAnonymousTTL = 24 * time.Hour
	DefaultVisitorTTL   = 7 * 24 * time.Hour
	DefaultCacheTTL     = 5 * time.Second
)

const (
	// cacheSize bounds the in-process caches (sessions and JPTs).
	cacheSize = 100_000
	// touchEvery is how often a session's LastSeen is written at most
	// (shorter when the idle timeout is short).
	touchEvery = time.Minute
	// jptReuseMargin: a JPT is handed out again until this long before it
	// expires.
	jptReuseMargin = 30 * time.Second
	// publishTimeout bounds the publishing of a session's end.
	publishTimeout = 5 * time.Second
)

// Manager runs the browser sessions: it starts them, looks them up (in a
// short, bounded in-process cache keyed by the hash of the cookie), logs
// users in and out, ends every session of a user, and issues and verifies
// JPTs. Safe for concurrent use.
//
// Wiring: register the Manager as a revocation.Cache in the process's
// revocation.Fanout (Remote, so that notices from other instances clear
// it), EndUser with idp.Provider.OnUserRevoked, and run Run for as long as
// the process serves.
type Manager struct {
	o     Options
	log   *slog.Logger
	now   func() time.Time
	touch time.Duration

	// sessions caches look-ups by session hash; a nil *Session records
	// that there is no such session (hashes are random: one that is
	// unknown now never names a session later).
	sessions *otter.Cache[string, *entry]
	// jpts caches the JPT handed out for a session, by session hash.
	jpts *otter.Cache[string, issuedJPT]
	// epoch counts invalidations: a look-up that raced one is not cached.
	epoch   atomic.Uint64
	loading singleflight.Group

	lastKeyReload atomic.Int64 // unix nanos of the last reload for an unknown kid
}

// entry is a cached session. s is replaced, never modified, so readers
// need no lock; touched elects the one request that writes LastSeen.
type entry struct {
	s       atomic.Pointer[Session]
	touched atomic.Int64 // unix nanos of the last LastSeen written (or being written)
}

// New returns a Manager. Store, Users, Keys and Issuer are required.
func New(o Options) (*Manager, error) {
	if o.Store == nil || o.Users == nil || o.Keys == nil {
		return nil, errors.New("session: a store, the identity provider and a key manager for JPTs are required")
	}
	if o.Issuer == "" {
		return nil, errors.New("session: the JPT issuer is required")
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
		n   string
	}{{&o.JPTTTL, DefaultJPTTTL, "JPT lifetime"}, {&o.LoggedOnMax, DefaultLoggedOnMax, "logged-on maximum"}, {&o.Idle, DefaultIdle, "idle timeout"},
		{&o.AnonymousTTL, DefaultAnonymousTTL, "anonymous session lifetime"}, {&o.VisitorTTL, DefaultVisitorTTL, "visitor lifetime"},
		{&o.CacheTTL, DefaultCacheTTL, "cache lifetime"}} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("session: the %s must not be negative", d.n)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.JPTTTL <= jptReuseMargin {
		return nil, fmt.Errorf("session: the JPT lifetime must be longer than %s", jptReuseMargin)
	}
	m := &Manager{o: o, log: o.Logger, now: o.Now, touch: min(touchEvery, o.Idle/2)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.sessions = otter.Must(&otter.Options[string, *entry]{MaximumSize: cacheSize,
		ExpiryCalculator: otter.ExpiryWriting[string, *entry](o.CacheTTL)})
	m.jpts = otter.Must(&otter.Options[string, issuedJPT]{MaximumSize: cacheSize,
		ExpiryCalculator: otter.ExpiryWriting[string, issuedJPT](o.JPTTTL)})
	return m, nil
}

// end returns the end of s at now: the first of its idle end, its stored
// end and its level's cap, which holds even if the stored row says
// otherwise (logged_on: LoggedOnMax after login, never extended; other
// levels: AnonymousTTL after the session began).
func (m *Manager) end(s *Session) time.Time {
	return minTime(s.IdleExpires, m.absoluteEnd(s))
}

// absoluteEnd is end without the idle timeout.
func (m *Manager) absoluteEnd(s *Session) time.Time {
	limit := s.CreatedAt.Add(m.o.AnonymousTTL)
	if s.Level == LevelLoggedOn {
		limit = s.LoginAt.Add(m.o.LoggedOnMax)
	}
	return minTime(s.Expires, limit)
}

func minTime(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// Invalidate drops the cached sessions and JPTs with these hashes
// (revocation.Cache).
func (m *Manager) Invalidate(hashes []string) {
	m.epoch.Add(1)
	for _, h := range hashes {
		m.sessions.Invalidate(h)
		m.jpts.Invalidate(h)
	}
}

// Flush drops every cached session and JPT (revocation.Cache): notices may
// have been missed.
func (m *Manager) Flush() {
	m.epoch.Add(1)
	m.sessions.InvalidateAll()
	m.jpts.InvalidateAll()
}

// forget makes every instance forget the sessions with these hashes: this
// one at once, the others through the notices (within a second).
func (m *Manager) forget(ctx context.Context, hashes []string) {
	if len(hashes) == 0 {
		return
	}
	m.Invalidate(hashes)
	if m.o.Notices == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := m.o.Notices.Publish(ctx, hashes); err != nil {
		m.log.Error("publishing the end of sessions", "sessions", len(hashes), "error", err.Error())
	}
}
