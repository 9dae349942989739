package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// runFederation checks the federated login's storage (federation.Storage).
func runFederation(t *testing.T, newStore func(t *testing.T) Store, now time.Time) {
	ctx := context.Background()

	t.Run("federated links", func(t *testing.T) {
		s := newStore(t)
		for _, u := range []*store.User{
			{ID: "u1", Username: "ann", Claims: map[string]any{"email": "Ann@Example.com"}, Enabled: true, CreatedAt: now},
			{ID: "u2", Username: "ann2", Claims: map[string]any{"email": "ann@example.com"}, Enabled: true, CreatedAt: now.Add(time.Second)},
			{ID: "u3", Username: "ben", Enabled: true, CreatedAt: now},
		} {
			must(t, s.CreateUser(ctx, u))
		}
		if _, err := s.GetFederatedLink(ctx, "https://up", "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no link: %v", err)
		}
		l := &store.FederatedLink{Issuer: "https://up", Subject: "s1", UserID: "u1", Provider: "up", CreatedAt: now, LastLogin: now}
		must(t, s.CreateFederatedLink(ctx, l))
		for name, dup := range map[string]*store.FederatedLink{
			"the same account":               {Issuer: "https://up", Subject: "s1", UserID: "u3", Provider: "up", CreatedAt: now, LastLogin: now},
			"a second account at the issuer": {Issuer: "https://up", Subject: "s2", UserID: "u1", Provider: "up", CreatedAt: now, LastLogin: now},
		} {
			if err := s.CreateFederatedLink(ctx, dup); !errors.Is(err, store.ErrExists) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if err := s.CreateFederatedLink(ctx, &store.FederatedLink{Issuer: "https://up", Subject: "s9", UserID: "nobody", CreatedAt: now, LastLogin: now}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a link to no user: %v", err)
		}
		must(t, s.CreateFederatedLink(ctx, &store.FederatedLink{Issuer: "https://other", Subject: "s1", UserID: "u1", Provider: "other", CreatedAt: now, LastLogin: now}))
		later := now.Add(time.Hour)
		must(t, s.TouchFederatedLink(ctx, "https://up", "s1", later, []byte{1, 2, 3}))
		got, err := s.GetFederatedLink(ctx, "https://up", "s1")
		must(t, err)
		if got.UserID != "u1" || got.Provider != "up" || !got.LastLogin.Equal(later) || !got.CreatedAt.Equal(now) || !bytes.Equal(got.Tokens, []byte{1, 2, 3}) {
			t.Fatalf("link %+v", got)
		}
		must(t, s.TouchFederatedLink(ctx, "https://up", "s1", later, nil))
		if got, _ = s.GetFederatedLink(ctx, "https://up", "s1"); got.Tokens != nil {
			t.Fatalf("tokens not dropped: %v", got.Tokens)
		}
		if err := s.TouchFederatedLink(ctx, "https://up", "nope", later, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("touch no link: %v", err)
		}

		users, err := s.UsersByEmail(ctx, "ANN@example.COM", 2)
		must(t, err)
		if len(users) != 2 || users[0].ID != "u1" || users[1].ID != "u2" {
			t.Fatalf("users by e-mail %+v", users)
		}
		if users, _ = s.UsersByEmail(ctx, "ann@example.com", 1); len(users) != 1 {
			t.Fatalf("limit: %d", len(users))
		}
		if users, _ = s.UsersByEmail(ctx, "nobody@example.com", 2); len(users) != 0 {
			t.Fatalf("nobody: %+v", users)
		}
		must(t, s.SetUserClaims(ctx, "u3", map[string]any{"email": "ben@example.com", "level_x": "staff"}))
		u, _ := s.GetUser(ctx, "u3")
		if u.Claims["level_x"] != "staff" {
			t.Fatalf("claims %v", u.Claims)
		}
		if err := s.SetUserClaims(ctx, "nobody", nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("claims of nobody: %v", err)
		}
	})

	t.Run("federated logins in progress", func(t *testing.T) {
		s := newStore(t)
		l := &store.FederatedLogin{ID: "h1", Provider: "up", Pending: []byte(`{"kind":"session"}`), ExpiresAt: now.Add(10 * time.Minute)}
		must(t, s.CreateFederatedLogin(ctx, l))
		if err := s.CreateFederatedLogin(ctx, l); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate: %v", err)
		}
		got, err := s.ConsumeFederatedLogin(ctx, "h1", now)
		must(t, err)
		if got.Provider != "up" || string(got.Pending) != `{"kind":"session"}` || !got.ExpiresAt.Equal(l.ExpiresAt) {
			t.Fatalf("login %+v", got)
		}
		if _, err := s.ConsumeFederatedLogin(ctx, "h1", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("consumed twice: %v", err)
		}
		must(t, s.CreateFederatedLogin(ctx, &store.FederatedLogin{ID: "h2", Provider: "up", Pending: []byte("{}"), ExpiresAt: now.Add(time.Minute)}))
		if _, err := s.ConsumeFederatedLogin(ctx, "h2", now.Add(time.Minute)); !errors.Is(err, store.ErrInactive) {
			t.Fatalf("expired: %v", err)
		}
		if _, err := s.ConsumeFederatedLogin(ctx, "h2", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an expired login is gone once looked at: %v", err)
		}
		must(t, s.CreateFederatedLogin(ctx, &store.FederatedLogin{ID: "h3", Provider: "up", Pending: []byte("{}"), ExpiresAt: now.Add(time.Minute)}))
		n, err := s.DeleteExpired(ctx, now.Add(2*time.Minute), 100)
		must(t, err)
		if n != 1 {
			t.Fatalf("deleted %d", n)
		}
		if _, err := s.ConsumeFederatedLogin(ctx, "h3", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("purged: %v", err)
		}
	})
}
