package idp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/idp/legacy/legacytest"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// counting counts the legacy checks a provider makes.
type counting struct {
	idp.LegacyUsers
	n atomic.Int64
}

func (c *counting) CheckLegacy(ctx context.Context, username, password string) (*idp.LegacyUser, error) {
	c.n.Add(1)
	return c.LegacyUsers.CheckLegacy(ctx, username, password)
}

// withLegacy wires l as the provider's legacy system.
func withLegacy(l idp.LegacyUsers, concurrency int) func(*idp.Options) {
	return func(o *idp.Options) { o.Legacy, o.LegacyConcurrency = l, concurrency }
}

// login runs the password grant for the web client.
func (ti *testIDP) login(t *testing.T, user, pw string) (int, map[string]any) {
	t.Helper()
	code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}, "web")
	return code, decode(t, b)
}

// mustNotExist fails unless ficus has no user named name.
func (ti *testIDP) mustNotExist(t *testing.T, name string) {
	t.Helper()
	if _, err := ti.p.UserByName(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user %s: %v, want none", name, err)
	}
}

// Issue 10: a user who lives only in the monolith logs in through the
// password grant; ficus checks the password against the monolith's login
// endpoint once, then keeps the user with its own argon2id hash.
func TestLazyMigrationFromHTTPLogin(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		m := legacytest.NewMonolith(t)
		m.Add(legacytest.User{ID: 4711, Username: "bob", CustomerNumber: "C-4711", Email: "bob@example.com"}, "bobs-old-pw")
		m.Add(legacytest.User{ID: 1, Username: testUser}, "anns-monolith-pw") // ann is a ficus user already
		h, err := legacy.NewHTTP(legacy.HTTPConfig{URL: m.URL, UserID: "/user/id", CustomerNumber: "/user/customer/number",
			Claims: map[string]string{"email": "/email"}})
		if err != nil {
			t.Fatal(err)
		}
		ti := newTestIDPWith(t, pg, withLegacy(h, 0))
		ctx := context.Background()

		// A ficus user never reaches the monolith, right or wrong.
		if code, _ := ti.login(t, testUser, testPassword); code != 200 {
			t.Fatalf("ann: %d", code)
		}
		if code, body := ti.login(t, testUser, "anns-monolith-pw"); code != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("ann with the monolith's password: %d %v", code, body)
		}
		if n := m.Calls.Load(); n != 0 {
			t.Fatalf("the monolith was asked %d times about a ficus user", n)
		}

		// A wrong password: invalid_grant, no user.
		if code, body := ti.login(t, "bob", "not-bobs-pw"); code != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("wrong password: %d %v", code, body)
		}
		ti.mustNotExist(t, "bob")

		// First login: migrated.
		code, body := ti.login(t, "bob", "bobs-old-pw")
		if code != 200 {
			t.Fatalf("first login: %d %v", code, body)
		}
		u, err := ti.p.UserByName(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") || strings.Contains(u.PasswordHash, "bobs-old-pw") {
			t.Fatalf("stored hash %q is not argon2id", u.PasswordHash)
		}
		if u.CustomerNumber != "C-4711" || u.Claims["email"] != "bob@example.com" || u.Claims[idp.LegacyIDClaim] != "4711" || !u.Enabled {
			t.Fatalf("migrated user = %+v", u)
		}
		if !ti.active(t, body["access_token"].(string)) {
			t.Fatal("the migrated user's token is not active")
		}
		calls := m.Calls.Load()

		// Later logins are ficus's alone.
		if code, _ := ti.login(t, "bob", "bobs-old-pw"); code != 200 {
			t.Fatalf("second login: %d", code)
		}
		if code, _ := ti.login(t, "bob", "wrong-again"); code != 400 {
			t.Fatalf("second login, wrong password: %d", code)
		}
		if n := m.Calls.Load(); n != calls {
			t.Fatalf("the monolith was asked %d more times after the migration", n-calls)
		}
		waittest.For(t, "the user_migrated audit event", func() bool {
			return strings.Contains(ti.logs.String(), `"event":"user_migrated"`)
		})
		if strings.Contains(ti.logs.String(), "bobs-old-pw") {
			t.Fatal("the password was logged")
		}
	})
}

// The login page serves the same check: a monolith user signs in to a
// third-party app through the authorization-code flow, checked against
// the legacy PostgreSQL database (bcrypt as PHP writes it); the legacy
// password may be shorter than ficus demands of new passwords.
func TestLazyMigrationFromLegacyDatabaseOnLoginPage(t *testing.T) {
	db := legacytest.NewDB(t)
	db.Add(t, legacytest.User{ID: 7, Username: "carol", Hash: "$2y$" + legacytest.Bcrypt(t, "short")[4:], CustomerNumber: "C-7"},
		legacytest.User{ID: 8, Username: "dave", Hash: legacytest.Django("daves-pass", "s4lt"), Email: "dave@example.com"})
	pgl, err := legacy.NewPostgres(db.DSN, legacy.SQLConfig{Query: legacytest.Query, HashFormats: []string{"bcrypt", "django_pbkdf2_sha256"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pgl.Close)
	l := &counting{LegacyUsers: pgl}
	ti := newTestIDPWith(t, true, withLegacy(l, 0))
	ctx := context.Background()
	conf := &oauth2.Config{ClientID: "thirdp", ClientSecret: ti.secret["thirdp"], RedirectURL: "https://thirdp.example/callback",
		Scopes: []string{"profile"}, Endpoint: oauth2.Endpoint{AuthURL: ti.url("/oauth2/authorize"), TokenURL: ti.url("/oauth2/token")}}
	verifier := oauth2.GenerateVerifier()
	if loc, status := authorize(t, conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)), "carol", "wrong", "allow"); loc != nil || status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v %d", loc, status)
	}
	ti.mustNotExist(t, "carol")
	loc, status := authorize(t, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), "carol", "short", "allow")
	if loc == nil {
		t.Fatalf("login page: %d", status)
	}
	if _, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	u, err := ti.p.UserByName(ctx, "carol")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") || u.CustomerNumber != "C-7" || u.Claims[idp.LegacyIDClaim] != "7" {
		t.Fatalf("carol = %+v, %v", u, err)
	}
	if code, _ := ti.login(t, "dave", "daves-pass"); code != 200 {
		t.Fatalf("dave (Django hash): %d", code)
	}
	n := l.n.Load()
	if loc, _ := authorize(t, conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)), "carol", "short", "allow"); loc == nil {
		t.Fatal("second login failed")
	}
	if code, _ := ti.login(t, "dave", "daves-pass"); code != 200 {
		t.Fatal("dave's second login failed")
	}
	if l.n.Load() != n {
		t.Fatal("a migrated user's login asked the legacy database")
	}
	if n != 3 {
		t.Fatalf("%d legacy checks, want 3 (carol wrong, carol, dave)", n)
	}
}

// A legacy system that cannot answer is 503, never "wrong password", and
// creates no user.
func TestLazyMigrationLegacyDown(t *testing.T) {
	t.Run("monolith refuses connections", func(t *testing.T) {
		dead, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: "http://" + legacytest.DeadAddr(t) + "/login"})
		ti := newTestIDPWith(t, false, withLegacy(dead, 0))
		code, body := ti.login(t, "bob", "whatever-pw")
		if code != 503 || body["error"] != "temporarily_unavailable" {
			t.Fatalf("%d %v", code, body)
		}
		ti.mustNotExist(t, "bob")
	})
	t.Run("monolith answers 500", func(t *testing.T) {
		h, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: statusServer(t, 500)})
		ti := newTestIDPWith(t, false, withLegacy(h, 0))
		if code, body := ti.login(t, "bob", "whatever-pw"); code != 503 {
			t.Fatalf("%d %v", code, body)
		}
		ti.mustNotExist(t, "bob")
	})
	t.Run("legacy database down", func(t *testing.T) {
		u, _ := url.Parse(legacytest.NewDB(t).DSN)
		u.Host = legacytest.DeadAddr(t)
		pgl, err := legacy.NewPostgres(u.String(), legacy.SQLConfig{Query: legacytest.Query, HashFormats: []string{"bcrypt"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pgl.Close)
		ti := newTestIDPWith(t, false, withLegacy(pgl, 0))
		if code, body := ti.login(t, "bob", "whatever-pw"); code != 503 {
			t.Fatalf("%d %v", code, body)
		}
		ti.mustNotExist(t, "bob")
	})
}

// Concurrent first logins of one user make one ficus user, and all of
// them succeed.
func TestLazyMigrationConcurrentFirstLogins(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		m := legacytest.NewMonolith(t)
		m.Add(legacytest.User{ID: 5, Username: "eve", CustomerNumber: "C-5"}, "eves-password")
		h, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: m.URL, UserID: "/user/id"})
		ti := newTestIDPWith(t, pg, withLegacy(h, 0), func(c *idp.Config) { c.MaxFamiliesPerUser = 20 })
		const n = 8
		var wg sync.WaitGroup
		subs := make(chan string, n)
		for range n {
			wg.Go(func() {
				code, body := ti.login(t, "eve", "eves-password")
				if code != 200 {
					t.Errorf("login: %d %v", code, body)
					return
				}
				subs <- introspectSub(t, ti, body["access_token"].(string))
			})
		}
		wg.Wait()
		close(subs)
		first := ""
		for s := range subs {
			if first == "" {
				first = s
			}
			if s != first || s == "" {
				t.Fatalf("two users for one legacy user: %s and %s", first, s)
			}
		}
		u, err := ti.p.UserByName(context.Background(), "eve")
		if err != nil || u.ID != first {
			t.Fatalf("eve = %+v, %v; tokens for %s", u, err, first)
		}
	})
}

func introspectSub(t *testing.T, ti *testIDP, tok string) string {
	t.Helper()
	code, _, b := ti.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, "gateway")
	if code != 200 {
		t.Fatalf("introspect: %d %s", code, b)
	}
	s, _ := decode(t, b)["sub"].(string)
	return s
}

// A flood of bogus logins cannot hammer the monolith: failed legacy
// checks are limited per address before the call, and checks in flight
// are bounded.
func TestLazyMigrationIsBounded(t *testing.T) {
	t.Run("failures per address", func(t *testing.T) {
		m := legacytest.NewMonolith(t)
		h, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: m.URL})
		ti := newTestIDPWith(t, false, withLegacy(h, 0), func(c *idp.Config) {
			c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 3
		})
		for i := range 3 {
			if code, _ := ti.login(t, "random-"+string(rune('a'+i)), "guess"); code != 400 {
				t.Fatalf("attempt %d: %d", i, code)
			}
		}
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"random-z"}, "password": {"guess"}}, "web")
		if code != 429 {
			t.Fatalf("4th bogus login: %d %s", code, b)
		}
		if n := m.Calls.Load(); n != 3 {
			t.Fatalf("the monolith was asked %d times, want 3", n)
		}
		// Ficus users are not held up by the legacy limit.
		if code, _ := ti.login(t, testUser, testPassword); code != 200 {
			t.Fatalf("ann: %d", code)
		}
	})
	t.Run("checks in flight", func(t *testing.T) {
		hang, asked, release := waittest.Hanging(t)
		h, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: hang, Timeout: routes.Duration(time.Minute)})
		ti := newTestIDPWith(t, false, withLegacy(h, 1), func(c *idp.Config) { c.HashWait = 50 * time.Millisecond })
		first := make(chan int, 1)
		go func() { code, _ := ti.login(t, "fred", "freds-pw"); first <- code }()
		<-asked
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"gina"}, "password": {"ginas-pw"}}, "web")
		if code != 503 || !strings.Contains(string(b), "temporarily_unavailable") {
			t.Fatalf("second check while one is in flight: %d %s", code, b)
		}
		release()
		if code := waittest.Recv(t, "the first login", first); code != 200 { // released, the monolith answers an empty 200
			t.Fatalf("first login: %d", code)
		}
	})
}

// statusServer is a login endpoint that answers every request with code.
func statusServer(t *testing.T, code int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/login"
}

// The time of a failed login does not tell a ficus user from one who is
// not (yet): both cost one argon2id run (the dummy check for the latter,
// on top of the legacy round trip).
func TestLazyMigrationKeepsHashingUniform(t *testing.T) {
	m := legacytest.NewMonolith(t)
	h, _ := legacy.NewHTTP(legacy.HTTPConfig{URL: m.URL})
	ti := newTestIDPWith(t, false, withLegacy(h, 0))
	ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}}, "web") // the web client's secret is now cached
	hp := probeHashes(t, ti.p)
	runs := func(user string) int {
		t.Helper()
		_, before := hp.stats()
		if code, body := ti.login(t, user, "wrong password"); code != 400 {
			t.Fatalf("%s: %d %v", user, code, body)
		}
		_, after := hp.stats()
		return after - before
	}
	if k, u := runs(testUser), runs("not-a-ficus-user"); k != 1 || u != 1 {
		t.Fatalf("%d argon2id runs for a ficus user, %d for another; want 1 and 1", k, u)
	}
	if m.Calls.Load() != 1 {
		t.Fatalf("%d legacy checks, want 1", m.Calls.Load())
	}
}
