package session

import (
	"context"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
)

// Browser returns the Manager as the IDP's browser sessions
// (idp.Provider.UseBrowserSessions): the single sign-on session of the
// authorization endpoint is a logged-on session of this Manager, under
// the IDP's own cookie, in the same store and with the same lifetimes;
// EndUser ends it with the user's other sessions.
func (m *Manager) Browser() idp.BrowserSessions { return browser{m} }

type browser struct{ m *Manager }

var _ idp.BrowserSessions = browser{}

// Find implements idp.BrowserSessions.
func (b browser) Find(ctx context.Context, cookie string) (*store.Session, error) {
	s, err := b.m.Lookup(ctx, cookie)
	if errors.Is(err, ErrNoSession) {
		return nil, nil
	}
	return s, err
}

// Login implements idp.BrowserSessions.
func (b browser) Login(ctx context.Context, old *store.Session, u *store.User, amr []string, at time.Time, remoteIP string) (*store.Session, string, error) {
	return b.m.LoginUser(ctx, old, u, amr, at, remoteIP)
}

// End implements idp.BrowserSessions.
func (b browser) End(ctx context.Context, s *store.Session) error { return b.m.Logout(ctx, s) }

// SetAttrs implements idp.BrowserSessions.
func (b browser) SetAttrs(ctx context.Context, s *store.Session, attrs map[string]string) error {
	return b.m.Update(ctx, s, attrs)
}
