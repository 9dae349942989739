// Package storetest is the conformance suite every idp store passes: the
// in-memory store and the PostgreSQL store run the same tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/federation"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
)

// Store is what the suite checks: every storage interface of the
// identity provider (idp.Storage, each part declared beside its user), the
// web sessions' (session.Storage) and Ping.
type Store interface {
	idp.Storage
	// session.Storage keeps the web sessions.
	session.Storage
	// federation.Storage keeps federated logins and links.
	federation.Storage
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Run runs the suite; newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	t.Run("clients", func(t *testing.T) {
		s := newStore(t)
		c := &store.Client{ID: "app", Name: "App", Secrets: []store.Secret{{Hash: "h1"}}, Grants: []string{"client_credentials"},
			Scopes: []string{"a", "b"}, RedirectURIs: []string{"https://app/cb"}, Audiences: []string{"svc"}, FirstParty: true,
			AccessTTL: time.Hour, CreatedAt: now}
		must(t, s.CreateClient(ctx, c))
		if err := s.CreateClient(ctx, c); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate client: %v", err)
		}
		got, err := s.GetClient(ctx, "app")
		must(t, err)
		if got.Name != "App" || len(got.Scopes) != 2 || got.AccessTTL != time.Hour || !got.FirstParty || got.Secrets[0].Hash != "h1" || got.Public() {
			t.Fatalf("client = %+v", got)
		}
		must(t, s.SetClientSecrets(ctx, "app", []store.Secret{{Hash: "h2"}, {Hash: "h1", ExpiresAt: now.Add(time.Hour)}}))
		got, _ = s.GetClient(ctx, "app")
		if len(got.Secrets) != 2 || got.Secrets[1].ExpiresAt.IsZero() {
			t.Fatalf("secrets = %+v", got.Secrets)
		}
		must(t, s.CreateClient(ctx, &store.Client{ID: "pub", CreatedAt: now}))
		list, err := s.ListClients(ctx)
		must(t, err)
		if len(list) != 2 || list[0].ID != "app" || !list[1].Public() {
			t.Fatalf("list = %v", list)
		}
		must(t, s.DeleteClient(ctx, "app"))
		if _, err := s.GetClient(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted client: %v", err)
		}
		if err := s.DeleteClient(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("users", func(t *testing.T) {
		s := newStore(t)
		u := &store.User{ID: "u1", Username: "ann", PasswordHash: "p", CustomerNumber: "C-1", Claims: map[string]any{"name": "Ann"}, Enabled: true, CreatedAt: now}
		must(t, s.CreateUser(ctx, u))
		if err := s.CreateUser(ctx, &store.User{ID: "u2", Username: "ann", CreatedAt: now}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate username: %v", err)
		}
		got, err := s.GetUserByName(ctx, "ann")
		must(t, err)
		if got.ID != "u1" || got.CustomerNumber != "C-1" || got.Claims["name"] != "Ann" || !got.Enabled {
			t.Fatalf("user = %+v", got)
		}
		must(t, s.SetUserPassword(ctx, "u1", "p2"))
		must(t, s.SetUserEnabled(ctx, "u1", false))
		got, _ = s.GetUser(ctx, "u1")
		if got.PasswordHash != "p2" || got.Enabled {
			t.Fatalf("after updates: %+v", got)
		}
		if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err := s.SetUserPassword(ctx, "nobody", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		s := newStore(t)
		at := &store.Token{Hash: "at1", Kind: store.KindAccess, ClientID: "c", Scope: "a b", Level: store.LevelAnonymous,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour), Extra: map[string]string{"device_id": "d1"}}
		must(t, s.InsertTokens(ctx, at))
		if err := s.InsertTokens(ctx, at); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate hash: %v", err)
		}
		got, err := s.GetToken(ctx, "at1")
		must(t, err)
		if got.Scope != "a b" || got.UserID != "" || got.Extra["device_id"] != "d1" || !got.Active(now) || got.Active(now.Add(2*time.Hour)) {
			t.Fatalf("token = %+v", got)
		}
		must(t, s.RevokeToken(ctx, "at1", now))
		got, _ = s.GetToken(ctx, "at1")
		if got.Active(now) {
			t.Fatal("revoked token active")
		}
		if _, err := s.GetToken(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		// All or none.
		if err := s.InsertTokens(ctx, &store.Token{Hash: "new1", Kind: store.KindAccess, ClientID: "c", Level: "x", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, at); err == nil {
			t.Fatal("batch with a duplicate accepted")
		}
		if _, err := s.GetToken(ctx, "new1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a failed batch left a token behind")
		}
	})

	t.Run("token with its user in one look-up", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateUser(ctx, &store.User{ID: "u1", Username: "ann", PasswordHash: "secret-hash", CustomerNumber: "C-1",
			Claims: map[string]any{"name": "Ann"}, Enabled: true, CreatedAt: now}))
		must(t, s.InsertTokens(ctx,
			&store.Token{Hash: "ua", Kind: store.KindAccess, ClientID: "c", UserID: "u1", Scope: "a", Level: store.LevelLoggedOn,
				FamilyID: "f", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Extra: map[string]string{"device_id": "d1"}},
			&store.Token{Hash: "app", Kind: store.KindAccess, ClientID: "c", Scope: "a", Level: store.LevelAnonymous,
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
			&store.Token{Hash: "gone", Kind: store.KindAccess, ClientID: "c", UserID: "u-gone", Scope: "a", Level: store.LevelLoggedOn,
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
		tok, u, err := s.GetTokenWithUser(ctx, "ua")
		must(t, err)
		if tok.UserID != "u1" || tok.FamilyID != "f" || tok.Extra["device_id"] != "d1" || !tok.Active(now) {
			t.Fatalf("token = %+v", tok)
		}
		if u == nil || u.ID != "u1" || u.Username != "ann" || u.CustomerNumber != "C-1" || u.Claims["name"] != "Ann" || !u.Enabled {
			t.Fatalf("user = %+v", u)
		}
		if u.PasswordHash != "" {
			t.Fatal("the token look-up carries the user's password hash")
		}
		if tok, u, err := s.GetTokenWithUser(ctx, "app"); err != nil || tok.ClientID != "c" || u != nil {
			t.Fatalf("application token: %+v %+v %v", tok, u, err)
		}
		if tok, u, err := s.GetTokenWithUser(ctx, "gone"); err != nil || tok.UserID != "u-gone" || u != nil {
			t.Fatalf("token of a missing user: %+v %+v %v", tok, u, err)
		}
		must(t, s.SetUserEnabled(ctx, "u1", false))
		if _, u, _ := s.GetTokenWithUser(ctx, "ua"); u == nil || u.Enabled {
			t.Fatalf("disabled user: %+v", u)
		}
		if _, _, err := s.GetTokenWithUser(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	})

	t.Run("refresh rotation has one winner", func(t *testing.T) {
		s := newStore(t)
		rt := refresh("rt0", "fam", "u1", now, now.Add(time.Hour))
		must(t, s.InsertTokens(ctx, rt))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, used := 0, 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RotateRefresh(ctx, "rt0", now, func(old *store.Token, _ *store.User) ([]*store.Token, error) {
					return []*store.Token{refresh(fmt.Sprintf("rt1-%d", i), old.FamilyID, old.UserID, now, old.ExpiresAt)}, nil
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrTokenUsed):
					used++
				default:
					t.Errorf("rotate: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || used != 15 {
			t.Fatalf("%d winners, %d saw it used; want 1 and 15", wins, used)
		}
		old, err := s.RotateRefresh(ctx, "rt0", now, nil)
		if !errors.Is(err, store.ErrTokenUsed) || old == nil || old.FamilyID != "fam" {
			t.Fatalf("reuse: %v %+v", err, old)
		}
		must(t, s.InsertTokens(ctx, refresh("expired", "fam2", "u1", now.Add(-2*time.Hour), now.Add(-time.Hour))))
		if _, err := s.RotateRefresh(ctx, "expired", now, nil); !errors.Is(err, store.ErrInactive) {
			t.Fatalf("expired: %v", err)
		}
		if _, err := s.RotateRefresh(ctx, "missing", now, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		// A failing issue changes nothing.
		must(t, s.InsertTokens(ctx, refresh("rtx", "fam3", "u1", now, now.Add(time.Hour))))
		if _, err := s.RotateRefresh(ctx, "rtx", now, func(*store.Token, *store.User) ([]*store.Token, error) { return nil, errors.New("boom") }); err == nil {
			t.Fatal("issue error swallowed")
		}
		got, _ := s.GetToken(ctx, "rtx")
		if !got.UsedAt.IsZero() {
			t.Fatal("failed rotation marked the token used")
		}
	})

	t.Run("revocation by family, user and limit", func(t *testing.T) {
		s := newStore(t)
		for i, fam := range []string{"f1", "f2", "f3"} {
			issued := now.Add(time.Duration(i) * time.Minute)
			must(t, s.InsertTokens(ctx, refresh("r-"+fam, fam, "u1", issued, now.Add(time.Hour)),
				&store.Token{Hash: "a-" + fam, Kind: store.KindAccess, ClientID: "c", UserID: "u1", FamilyID: fam, Level: store.LevelLoggedOn, IssuedAt: issued, ExpiresAt: now.Add(time.Hour)}))
		}
		must(t, s.InsertTokens(ctx, refresh("r-other", "fo", "u2", now, now.Add(time.Hour))))
		evicted, err := s.EvictOldest(ctx, "u1", 2, now)
		must(t, err)
		if fmt.Sprint(evicted) != "[a-f1 r-f1]" {
			t.Fatalf("evicted %v, want the oldest family", evicted)
		}
		fam, err := s.RevokeFamily(ctx, "f2", now)
		must(t, err)
		if fmt.Sprint(fam) != "[a-f2 r-f2]" {
			t.Fatalf("family revoked %v", fam)
		}
		user, err := s.RevokeUser(ctx, "u1", now)
		must(t, err)
		if fmt.Sprint(user) != "[a-f3 r-f3]" {
			t.Fatalf("user revoked %v (already revoked ones are not repeated)", user)
		}
		if tok, _ := s.GetToken(ctx, "r-other"); !tok.Active(now) {
			t.Fatal("another user's token revoked")
		}
		must(t, s.InsertTokens(ctx, &store.Token{Hash: "a-other-client", Kind: store.KindAccess, ClientID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
			&store.Token{Hash: "a-client", Kind: store.KindAccess, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
		client, err := s.RevokeClient(ctx, "c", now)
		must(t, err)
		if fmt.Sprint(client) != "[a-client r-other]" {
			t.Fatalf("client revoked %v (already revoked ones are not repeated)", client)
		}
		if tok, _ := s.GetToken(ctx, "a-other-client"); !tok.Active(now) {
			t.Fatal("another client's token revoked")
		}
	})

	t.Run("codes are single use", func(t *testing.T) {
		s := newStore(t)
		c := &store.AuthCode{Hash: "c1", ClientID: "app", UserID: "u1", RedirectURI: "https://app/cb", Scope: "a",
			CodeChallenge: "xyz", CodeChallengeMethod: "S256", ExpiresAt: now.Add(time.Minute)}
		must(t, s.CreateCode(ctx, c))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.ConsumeCode(ctx, "c1", now)
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
					if got.CodeChallenge != "xyz" || got.RedirectURI != "https://app/cb" {
						t.Errorf("code = %+v", got)
					}
				} else if !errors.Is(err, store.ErrInactive) {
					t.Errorf("consume: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("code consumed %d times", ok)
		}
		must(t, s.CreateCode(ctx, &store.AuthCode{Hash: "c2", ClientID: "app", UserID: "u1", RedirectURI: "x", CodeChallenge: "y", CodeChallengeMethod: "S256", ExpiresAt: now.Add(-time.Second)}))
		if _, err := s.ConsumeCode(ctx, "c2", now); !errors.Is(err, store.ErrInactive) {
			t.Fatalf("expired code: %v", err)
		}
		if _, err := s.ConsumeCode(ctx, "c3", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		s := newStore(t)
		k1 := &store.SigningKey{ID: "k1", Alg: "EdDSA", Private: []byte{1, 2, 3}, CreatedAt: now, ActiveAt: now}
		k2 := &store.SigningKey{ID: "k2", Alg: "RS256", Private: []byte{4}, Sealed: true, CreatedAt: now.Add(time.Second), ActiveAt: now.Add(time.Minute)}
		must(t, s.PutKey(ctx, k1))
		must(t, s.PutKey(ctx, k2))
		k1.RetiredAt, k1.ExpiresAt = now.Add(time.Minute), now.Add(time.Hour)
		must(t, s.PutKey(ctx, k1))
		keys, err := s.ListKeys(ctx)
		must(t, err)
		if len(keys) != 2 || keys[0].ID != "k1" || keys[0].RetiredAt.IsZero() || keys[0].ExpiresAt.IsZero() || !keys[1].Sealed || keys[1].Private[0] != 4 {
			t.Fatalf("keys = %+v", keys)
		}
	})

	t.Run("expired rows are deleted in batches, used refresh tokens kept until the family's end", func(t *testing.T) {
		s := newStore(t)
		for i := 0; i < 25; i++ {
			must(t, s.InsertTokens(ctx, &store.Token{Hash: fmt.Sprintf("old%d", i), Kind: store.KindAccess, ClientID: "c", Level: "anonymous",
				IssuedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))
		}
		keep := refresh("used-rt", "fam", "u1", now.Add(-3*time.Hour), now.Add(-time.Hour))
		keep.AbsoluteExpiresAt = now.Add(time.Hour)
		keep.UsedAt = now.Add(-2 * time.Hour)
		live := &store.Token{Hash: "live", Kind: store.KindAccess, ClientID: "c", Level: "anonymous", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		must(t, s.InsertTokens(ctx, keep, live))
		total := 0
		for {
			n, err := s.DeleteExpired(ctx, now, 10)
			must(t, err)
			if n > 10 {
				t.Fatalf("deleted %d in a batch of 10", n)
			}
			total += n
			if n < 10 {
				break
			}
		}
		if total != 25 {
			t.Fatalf("deleted %d, want 25", total)
		}
		for _, h := range []string{"used-rt", "live"} {
			if _, err := s.GetToken(ctx, h); err != nil {
				t.Fatalf("%s deleted: %v", h, err)
			}
		}
	})

	runSessions(t, newStore, now)
	runOIDC(t, newStore, now)
	runFederation(t, newStore, now)

	t.Run("audit and ping", func(t *testing.T) {
		s := newStore(t)
		must(t, s.Audit(ctx, store.AuditEvent{At: now, Event: "token_issued", ClientID: "c", Outcome: "ok"}, store.AuditEvent{At: now, Event: "auth_failed", Outcome: "denied"}))
		must(t, s.Ping(ctx))
	})
}

func refresh(hash, family, user string, issued, expires time.Time) *store.Token {
	return &store.Token{Hash: hash, Kind: store.KindRefresh, ClientID: "c", UserID: user, FamilyID: family, Level: store.LevelLoggedOn,
		IssuedAt: issued, ExpiresAt: expires, AbsoluteExpiresAt: expires}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
