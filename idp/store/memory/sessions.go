package memory

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// visitor is a returning visitor: the user last logged on with its cookie
// ("" if none did) and when the cookie ends.
type visitor struct {
	userID  string
	expires time.Time
}

func cloneSession(ss *store.Session) *store.Session {
	d := *ss
	d.Attrs = maps.Clone(ss.Attrs)
	d.AMR = slices.Clone(ss.AMR)
	return &d
}

func (s *Store) CreateSession(_ context.Context, ss *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ss.ID]; ok {
		return store.ErrExists
	}
	s.sessions[ss.ID] = cloneSession(ss)
	return nil
}

func (s *Store) GetSession(_ context.Context, hash string) (*store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss, ok := s.sessions[hash]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneSession(ss), nil
}

func (s *Store) ReplaceSession(_ context.Context, oldHash string, ns *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[oldHash]; !ok {
		return store.ErrNotFound
	}
	if _, ok := s.sessions[ns.ID]; ok {
		return store.ErrExists
	}
	delete(s.sessions, oldHash)
	s.sessions[ns.ID] = cloneSession(ns)
	return nil
}

func (s *Store) TouchSession(_ context.Context, hash string, lastSeen, idleExpires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[hash]
	if !ok {
		return store.ErrNotFound
	}
	ss.LastSeen, ss.IdleExpires = lastSeen, idleExpires
	return nil
}

func (s *Store) UpdateSessionAttrs(_ context.Context, hash string, attrs map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[hash]
	if !ok {
		return store.ErrNotFound
	}
	ss.Attrs = maps.Clone(attrs)
	return nil
}

func (s *Store) DeleteSession(_ context.Context, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, hash)
	return nil
}

func (s *Store) DeleteUserSessions(_ context.Context, userID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hashes []string
	for h, ss := range s.sessions {
		if ss.UserID == userID {
			delete(s.sessions, h)
			hashes = append(hashes, h)
		}
	}
	for h, v := range s.visitors {
		if v.userID == userID {
			delete(s.visitors, h)
		}
	}
	return hashes, nil
}

func (s *Store) PutVisitor(_ context.Context, hash, userID string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visitors[hash] = visitor{userID: userID, expires: expires}
	return nil
}

func (s *Store) GetVisitor(_ context.Context, hash string, now time.Time) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.visitors[hash]
	if !ok || !now.Before(v.expires) {
		return "", store.ErrNotFound
	}
	return v.userID, nil
}

func (s *Store) DeleteExpiredSessions(_ context.Context, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, ss := range s.sessions {
		if n >= limit {
			return n, nil
		}
		if !ss.Live(now) {
			delete(s.sessions, h)
			n++
		}
	}
	for h, v := range s.visitors {
		if n >= limit {
			return n, nil
		}
		if !now.Before(v.expires) {
			delete(s.visitors, h)
			n++
		}
	}
	return n, nil
}

// JPTKeys returns the storage of the keys that sign JPTs (idp/session):
// apart from the JWT signing keys, so that they are never published in
// the JWKS.
func (s *Store) JPTKeys() *JPTKeys { return &JPTKeys{s: s} }

// JPTKeys keeps the JPT signing keys of a Store (an idp.KeyStorage).
type JPTKeys struct{ s *Store }

// PutKey stores a key, replacing the one with the same ID.
func (k *JPTKeys) PutKey(_ context.Context, sk *store.SigningKey) error {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	putKey(k.s.jptKeys, sk)
	return nil
}

// ListKeys returns every stored key.
func (k *JPTKeys) ListKeys(context.Context) ([]*store.SigningKey, error) {
	k.s.mu.RLock()
	defer k.s.mu.RUnlock()
	return listKeys(k.s.jptKeys), nil
}
