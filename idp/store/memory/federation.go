package memory

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// The federated login's storage (idp/federation.Storage).

type linkKey struct{ issuer, subject string }

func cloneLink(l *store.FederatedLink) *store.FederatedLink {
	d := *l
	d.Tokens = slices.Clone(l.Tokens)
	return &d
}

func (s *Store) GetFederatedLink(_ context.Context, issuer, subject string) (*store.FederatedLink, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.links[linkKey{issuer, subject}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneLink(l), nil
}

func (s *Store) CreateFederatedLink(_ context.Context, l *store.FederatedLink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[l.UserID]; !ok {
		return store.ErrNotFound
	}
	if _, ok := s.links[linkKey{l.Issuer, l.Subject}]; ok {
		return store.ErrExists
	}
	for _, o := range s.links {
		if o.Issuer == l.Issuer && o.UserID == l.UserID {
			return store.ErrExists
		}
	}
	s.links[linkKey{l.Issuer, l.Subject}] = cloneLink(l)
	return nil
}

func (s *Store) TouchFederatedLink(_ context.Context, issuer, subject string, at time.Time, tokens []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[linkKey{issuer, subject}]
	if !ok {
		return store.ErrNotFound
	}
	l.LastLogin, l.Tokens = at, slices.Clone(tokens)
	return nil
}

func (s *Store) UsersByEmail(_ context.Context, email string, limit int) ([]*store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.User
	for _, u := range s.users {
		if e, ok := u.Claims["email"].(string); ok && strings.EqualFold(e, email) {
			out = append(out, cloneUser(u))
		}
	}
	slices.SortFunc(out, func(a, b *store.User) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *Store) SetUserClaims(_ context.Context, id string, claims map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.ErrNotFound
	}
	u.Claims = maps.Clone(claims)
	return nil
}

func (s *Store) CreateFederatedLogin(_ context.Context, l *store.FederatedLogin) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.fedLogins[l.ID]; ok {
		return store.ErrExists
	}
	d := *l
	d.Pending = slices.Clone(l.Pending)
	s.fedLogins[l.ID] = &d
	return nil
}

func (s *Store) ConsumeFederatedLogin(_ context.Context, id string, now time.Time) (*store.FederatedLogin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.fedLogins[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.fedLogins, id)
	if !now.Before(l.ExpiresAt) {
		return l, store.ErrInactive
	}
	return l, nil
}
