// Package memory is the in-memory Store: for `ficus demo`, single-node
// trials and tests. It keeps nothing when the process stops.
package memory

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// Store is an in-memory store.Store. The zero value is not usable; use New.
type Store struct {
	mu      sync.RWMutex
	clients map[string]*store.Client
	users   map[string]*store.User
	byName  map[string]string
	tokens  map[string]*store.Token
	codes   map[string]*store.AuthCode
	keys    map[string]*store.SigningKey
	audit   []store.AuditEvent

	sessions map[string]*store.Session // by hash
	visitors map[string]visitor        // by hash
	jptKeys  map[string]*store.SigningKey

	links     map[linkKey]*store.FederatedLink
	fedLogins map[string]*store.FederatedLogin
}

// New returns an empty store.
func New() *Store {
	return &Store{
		clients: map[string]*store.Client{}, users: map[string]*store.User{}, byName: map[string]string{},
		tokens: map[string]*store.Token{}, codes: map[string]*store.AuthCode{}, keys: map[string]*store.SigningKey{},
		sessions: map[string]*store.Session{}, visitors: map[string]visitor{}, jptKeys: map[string]*store.SigningKey{},
		links: map[linkKey]*store.FederatedLink{}, fedLogins: map[string]*store.FederatedLogin{},
	}
}

func cloneClient(c *store.Client) *store.Client {
	d := *c
	d.Secrets = slices.Clone(c.Secrets)
	d.Grants, d.Scopes = slices.Clone(c.Grants), slices.Clone(c.Scopes)
	d.RedirectURIs, d.Audiences = slices.Clone(c.RedirectURIs), slices.Clone(c.Audiences)
	d.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	return &d
}

func cloneUser(u *store.User) *store.User {
	d := *u
	d.Claims = maps.Clone(u.Claims)
	return &d
}

func cloneToken(t *store.Token) *store.Token {
	d := *t
	d.Extra = maps.Clone(t.Extra)
	d.Auth = cloneAuth(t.Auth)
	return &d
}

func cloneAuth(a *store.Authentication) *store.Authentication {
	if a == nil {
		return nil
	}
	d := *a
	d.AMR = slices.Clone(a.AMR)
	return &d
}

func (s *Store) CreateClient(_ context.Context, c *store.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return store.ErrExists
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

func (s *Store) GetClient(_ context.Context, id string) (*store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneClient(c), nil
}

func (s *Store) ListClients(context.Context) ([]*store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*store.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, cloneClient(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Store) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.clients, id)
	return nil
}

func (s *Store) SetClientSecrets(_ context.Context, id string, secrets []store.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return store.ErrNotFound
	}
	c.Secrets = slices.Clone(secrets)
	return nil
}

func (s *Store) CreateUser(_ context.Context, u *store.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[u.Username]; ok {
		return store.ErrExists
	}
	if _, ok := s.users[u.ID]; ok {
		return store.ErrExists
	}
	s.users[u.ID] = cloneUser(u)
	s.byName[u.Username] = u.ID
	return nil
}

func (s *Store) GetUser(_ context.Context, id string) (*store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneUser(u), nil
}

func (s *Store) GetUserByName(ctx context.Context, username string) (*store.User, error) {
	s.mu.RLock()
	id, ok := s.byName[username]
	s.mu.RUnlock()
	if !ok {
		return nil, store.ErrNotFound
	}
	return s.GetUser(ctx, id)
}

func (s *Store) SetUserPassword(_ context.Context, id, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.ErrNotFound
	}
	u.PasswordHash = hash
	return nil
}

func (s *Store) SetUserEnabled(_ context.Context, id string, enabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.ErrNotFound
	}
	u.Enabled = enabled
	return nil
}

func (s *Store) InsertTokens(_ context.Context, ts ...*store.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		if _, ok := s.tokens[t.Hash]; ok {
			return store.ErrExists
		}
	}
	for _, t := range ts {
		s.tokens[t.Hash] = cloneToken(t)
	}
	return nil
}

func (s *Store) GetToken(_ context.Context, hash string) (*store.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[hash]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneToken(t), nil
}

func (s *Store) GetTokenWithUser(_ context.Context, hash string) (*store.Token, *store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[hash]
	if !ok {
		return nil, nil, store.ErrNotFound
	}
	var u *store.User
	if t.UserID != "" {
		if su, ok := s.users[t.UserID]; ok {
			u = cloneUser(su)
			u.PasswordHash = ""
		}
	}
	return cloneToken(t), u, nil
}

func (s *Store) RotateRefresh(_ context.Context, hash string, now time.Time, issue func(old *store.Token, user *store.User) ([]*store.Token, error)) (*store.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[hash]
	switch {
	case !ok || t.Kind != store.KindRefresh:
		return nil, store.ErrNotFound
	case !t.UsedAt.IsZero():
		return cloneToken(t), store.ErrTokenUsed
	case !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt):
		return cloneToken(t), store.ErrInactive
	}
	var user *store.User
	if u, ok := s.users[t.UserID]; ok && t.UserID != "" {
		user = cloneUser(u)
	}
	issued, err := issue(cloneToken(t), user)
	if err != nil {
		return nil, err
	}
	for _, n := range issued {
		if _, ok := s.tokens[n.Hash]; ok {
			return nil, store.ErrExists
		}
	}
	t.UsedAt = now
	for _, n := range issued {
		s.tokens[n.Hash] = cloneToken(n)
	}
	return cloneToken(t), nil
}

func (s *Store) RevokeToken(_ context.Context, hash string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[hash]
	if !ok {
		return store.ErrNotFound
	}
	if t.RevokedAt.IsZero() {
		t.RevokedAt = now
	}
	return nil
}

func (s *Store) revokeWhere(now time.Time, match func(*store.Token) bool) []string {
	var out []string
	for h, t := range s.tokens {
		if match(t) && t.RevokedAt.IsZero() {
			t.RevokedAt = now
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Store) RevokeFamily(_ context.Context, familyID string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeWhere(now, func(t *store.Token) bool { return familyID != "" && t.FamilyID == familyID }), nil
}

func (s *Store) RevokeUser(_ context.Context, userID string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeWhere(now, func(t *store.Token) bool { return userID != "" && t.UserID == userID }), nil
}

func (s *Store) RevokeClient(_ context.Context, clientID string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeWhere(now, func(t *store.Token) bool { return clientID != "" && t.ClientID == clientID }), nil
}

func (s *Store) EvictOldest(_ context.Context, userID string, keep int, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A family is live while it has a live refresh token; its age is its
	// oldest token's issue time.
	started := map[string]time.Time{}
	live := map[string]bool{}
	for _, t := range s.tokens {
		if t.UserID != userID || t.FamilyID == "" {
			continue
		}
		if st, ok := started[t.FamilyID]; !ok || t.IssuedAt.Before(st) {
			started[t.FamilyID] = t.IssuedAt
		}
		if t.Kind == store.KindRefresh && t.Active(now) {
			live[t.FamilyID] = true
		}
	}
	fams := make([]string, 0, len(live))
	for f := range live {
		fams = append(fams, f)
	}
	if len(fams) <= keep {
		return nil, nil
	}
	sort.Slice(fams, func(i, j int) bool {
		if !started[fams[i]].Equal(started[fams[j]]) {
			return started[fams[i]].Before(started[fams[j]])
		}
		return fams[i] < fams[j]
	})
	evict := map[string]bool{}
	for _, f := range fams[:len(fams)-keep] {
		evict[f] = true
	}
	return s.revokeWhere(now, func(t *store.Token) bool { return evict[t.FamilyID] }), nil
}

func (s *Store) CreateCode(_ context.Context, c *store.AuthCode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.codes[c.Hash]; ok {
		return store.ErrExists
	}
	d := *c
	d.Auth = cloneAuth(c.Auth)
	s.codes[c.Hash] = &d
	return nil
}

func (s *Store) ConsumeCode(_ context.Context, hash string, now time.Time) (*store.AuthCode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[hash]
	if !ok {
		return nil, store.ErrNotFound
	}
	d := *c
	d.Auth = cloneAuth(c.Auth)
	if !c.UsedAt.IsZero() || !now.Before(c.ExpiresAt) {
		return &d, store.ErrInactive
	}
	c.UsedAt = now
	d.UsedAt = now
	return &d, nil
}

func (s *Store) PutKey(_ context.Context, k *store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	putKey(s.keys, k)
	return nil
}

func putKey(keys map[string]*store.SigningKey, k *store.SigningKey) {
	d := *k
	d.Private = slices.Clone(k.Private)
	keys[k.ID] = &d
}

func (s *Store) ListKeys(context.Context) ([]*store.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return listKeys(s.keys), nil
}

func listKeys(keys map[string]*store.SigningKey) []*store.SigningKey {
	out := make([]*store.SigningKey, 0, len(keys))
	for _, k := range keys {
		d := *k
		d.Private = slices.Clone(k.Private)
		out = append(out, &d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

func (s *Store) Audit(_ context.Context, events ...store.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, events...)
	if len(s.audit) > 100000 { // bounded: keep the newest
		s.audit = slices.Clone(s.audit[len(s.audit)-50000:])
	}
	return nil
}

// AuditEvents returns the audit trail kept in memory (newest last).
func (s *Store) AuditEvents() []store.AuditEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.audit)
}

func (s *Store) DeleteExpired(_ context.Context, before time.Time, batch int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, t := range s.tokens {
		if n >= batch {
			return n, nil
		}
		if t.ExpiresAt.Before(before) && (t.AbsoluteExpiresAt.IsZero() || t.AbsoluteExpiresAt.Before(before)) {
			delete(s.tokens, h)
			n++
		}
	}
	for h, c := range s.codes {
		if n >= batch {
			return n, nil
		}
		if c.ExpiresAt.Before(before) {
			delete(s.codes, h)
			n++
		}
	}
	for id, l := range s.fedLogins {
		if n >= batch {
			return n, nil
		}
		if l.ExpiresAt.Before(before) {
			delete(s.fedLogins, id)
			n++
		}
	}
	return n, nil
}

func (s *Store) Ping(context.Context) error { return nil }
