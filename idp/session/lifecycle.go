package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// Start begins a new anonymous session. A known visitor cookie makes it
// returning (with the user last logged on with that cookie, if any);
// newVisitorCookie is the visitor cookie to set: the same value when it
// was known (its lifetime now extended by VisitorTTL), else a fresh one.
func (m *Manager) Start(ctx context.Context, visitorCookie string) (s *Session, sessionCookie, newVisitorCookie string, err error) {
	now := m.now()
	level, userID, customer := LevelAnonymous, "", ""
	if wellFormed(visitorCookie) {
		switch uid, err := m.o.Store.GetVisitor(ctx, tokenhash.Sum(visitorCookie), now); {
		case err == nil:
			level, userID, newVisitorCookie = LevelReturning, uid, visitorCookie
		case !errors.Is(err, store.ErrNotFound):
			return nil, "", "", fmt.Errorf("session: looking up a visitor: %w", err)
		}
	}
	if userID != "" {
		switch u, err := m.o.Users.GetUser(ctx, userID); {
		case err == nil && u.Enabled:
			customer = u.CustomerNumber
		case err == nil || errors.Is(err, store.ErrNotFound):
			userID = "" // the user is gone: a returning visitor nobody is known by
		default:
			return nil, "", "", fmt.Errorf("session: looking up a returning visitor's user: %w", err)
		}
	}
	if newVisitorCookie == "" {
		newVisitorCookie = newCookie()
	}
	visitor := tokenhash.Sum(newVisitorCookie)
	if err := m.o.Store.PutVisitor(ctx, visitor, userID, now.Add(m.o.VisitorTTL)); err != nil {
		return nil, "", "", fmt.Errorf("session: recording a visitor: %w", err)
	}
	sessionCookie = newCookie()
	s = &Session{ID: tokenhash.Sum(sessionCookie), VisitorID: visitor, Level: level, UserID: userID, CustomerNumber: customer,
		CreatedAt: now, LastSeen: now, Expires: now.Add(m.o.AnonymousTTL)}
	s.IdleExpires = minTime(now.Add(m.o.Idle), s.Expires)
	if err := m.o.Store.CreateSession(ctx, s); err != nil {
		return nil, "", "", fmt.Errorf("session: creating a session: %w", err)
	}
	m.remember(s)
	return clone(s), sessionCookie, newVisitorCookie, nil
}

// Login checks the credentials with the identity provider (its rate
// limits per user and address, lazy migration and audit of failures
// included) and replaces s (nil: none) with a new logged-on session under
// a new cookie: the old id ends at once on every instance, so a cookie
// planted before login is worth nothing after it. The visitor of s is
// linked to the user, so the browser comes back returning. The attributes
// of s carry over.
//
// Errors: ErrLoginFailed (wrapping the provider's error) for refused
// credentials, a *RateLimitError (errors.Is ErrRateLimited) when over the
// limits, anything else when the provider or the store failed.
func (m *Manager) Login(ctx context.Context, s *Session, username, password, remoteIP string) (ns *Session, sessionCookie string, err error) {
	u, err := m.o.Users.CheckPassword(ctx, username, password, remoteIP)
	if err != nil {
		var ie *idp.Error
		switch {
		case errors.As(err, &ie) && errors.Is(ie, idp.ErrSlowDown):
			return nil, "", &RateLimitError{RetryAfter: time.Duration(ie.RetryAfter) * time.Second}
		case errors.Is(err, idp.ErrInvalidGrant), errors.Is(err, idp.ErrInvalidRequest):
			return nil, "", fmt.Errorf("%w: %w", ErrLoginFailed, err)
		}
		return nil, "", fmt.Errorf("session: checking credentials: %w", err)
	}
	return m.LoginUser(ctx, s, u, []string{idp.AMRPassword}, time.Time{}, remoteIP)
}

// LoginUser is Login for a user who authenticated elsewhere (the IDP's
// sign-in page, an upstream identity provider through idp/federation)
// with the methods amr at time at (zero, or a time to come: now): it
// replaces s (nil: none) with a new logged-on session of u under a new
// cookie, as Login does, whose LoginAt is at (so it ends LoggedOnMax
// after the authentication), and audits the login with the methods as
// its reason. A disabled user is refused with ErrLoginFailed.
func (m *Manager) LoginUser(ctx context.Context, s *Session, u *store.User, amr []string, at time.Time, remoteIP string) (ns *Session, sessionCookie string, err error) {
	if u == nil || !u.Enabled {
		return nil, "", fmt.Errorf("%w: the user is disabled", ErrLoginFailed)
	}
	now := m.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	sessionCookie = newCookie()
	ns = &Session{ID: tokenhash.Sum(sessionCookie), Level: LevelLoggedOn, UserID: u.ID, CustomerNumber: u.CustomerNumber,
		LoginAt: at, AMR: slices.Clone(amr), CreatedAt: now, LastSeen: now, Expires: at.Add(m.o.LoggedOnMax)}
	ns.IdleExpires = minTime(now.Add(m.o.Idle), ns.Expires)
	if s != nil {
		ns.VisitorID, ns.Attrs = s.VisitorID, maps.Clone(s.Attrs)
		err = m.o.Store.ReplaceSession(ctx, s.ID, ns)
		if errors.Is(err, store.ErrNotFound) { // the old session ended meanwhile
			err = m.o.Store.CreateSession(ctx, ns)
		}
	} else {
		err = m.o.Store.CreateSession(ctx, ns)
	}
	if err != nil {
		return nil, "", fmt.Errorf("session: creating the logged-on session: %w", err)
	}
	if s != nil {
		m.forget(ctx, []string{s.ID})
	}
	m.remember(ns)
	if ns.VisitorID != "" {
		if err := m.o.Store.PutVisitor(ctx, ns.VisitorID, u.ID, now.Add(m.o.VisitorTTL)); err != nil {
			m.log.Warn("linking a visitor to its user", "error", err.Error())
		}
	}
	m.o.Users.Audit(ctx, store.AuditEvent{At: now, Event: "login", UserID: u.ID, Grant: "session", Outcome: "ok", Reason: strings.Join(amr, " "), RemoteIP: remoteIP})
	return clone(ns), sessionCookie, nil
}

// Logout ends s on every instance (this one at once, the others within a
// second). Its visitor stays returning.
func (m *Manager) Logout(ctx context.Context, s *Session) error {
	if err := m.o.Store.DeleteSession(ctx, s.ID); err != nil {
		return fmt.Errorf("session: ending a session: %w", err)
	}
	m.forget(ctx, []string{s.ID})
	m.o.Users.Audit(ctx, store.AuditEvent{Event: "logout", UserID: s.UserID, Grant: "session", Outcome: "ok"})
	return nil
}

// Update sets attributes of s: an empty value removes one. The caller has
// checked the keys and the size. s is updated too, and every instance
// forgets its cached copy (and the JPT carrying the old attributes).
// Concurrent updates of one session: the last write wins.
func (m *Manager) Update(ctx context.Context, s *Session, attrs map[string]string) error {
	next := maps.Clone(s.Attrs)
	if next == nil {
		next = map[string]string{}
	}
	for k, v := range attrs {
		if v == "" {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	if err := m.o.Store.UpdateSessionAttrs(ctx, s.ID, next); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNoSession
		}
		return fmt.Errorf("session: updating a session: %w", err)
	}
	if len(next) == 0 {
		next = nil
	}
	s.Attrs = next
	m.forget(ctx, []string{s.ID})
	return nil
}

// EndUser ends every session of a user, on every instance, and forgets
// the visitors linked to the user: a password change or a disabled user
// (register it with idp.Provider.OnUserRevoked). Audited as forced_logout
// with why as the reason.
func (m *Manager) EndUser(ctx context.Context, userID, why string) error {
	hashes, err := m.o.Store.DeleteUserSessions(ctx, userID)
	if err != nil {
		return fmt.Errorf("session: ending the sessions of a user: %w", err)
	}
	m.forget(ctx, hashes)
	m.o.Users.Audit(ctx, store.AuditEvent{Event: "forced_logout", UserID: userID, Grant: "session", Outcome: "ok",
		Reason: fmt.Sprintf("%s (%d sessions)", why, len(hashes))})
	return nil
}
