package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/pgtest"
)

// clock is a settable clock shared by the provider and its keys.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output for the "never logged" checks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type testIDP struct {
	p      *idp.Provider
	st     idp.Storage
	srv    *httptest.Server
	clock  *clock
	logs   *syncBuffer
	secret map[string]string // client id -> secret
	userID string
}

const (
	testUser     = "ann"
	testPassword = "correct horse battery"
)

// newTestIDP runs a provider behind a real HTTP server, with clients:
//
//	machine   client_credentials, scopes orders.read orders.write
//	web       first-party: password, refresh_token; scopes profile orders.read
//	thirdp    confidential: authorization_code, refresh_token
//	spa       public: authorization_code (PKCE), refresh_token
//	gateway   token exchange and introspection, audiences orders-svc
func newTestIDP(t *testing.T, pg bool, tune ...func(*idp.Config)) *testIDP {
	t.Helper()
	return newTestIDPWith(t, pg, nil, tune...)
}

// newTestIDPWith is newTestIDP with wire, if not nil, adjusting the
// provider's Options (a legacy user checker) before it starts.
func newTestIDPWith(t *testing.T, pg bool, wire func(*idp.Options), tune ...func(*idp.Config)) *testIDP {
	t.Helper()
	return newTestIDPHooked(t, pg, wire, nil, tune...)
}

// newTestIDPHooked is newTestIDPWith with before, if not nil, called with
// the provider made and its server not yet serving (to give the provider
// its browser sessions).
func newTestIDPHooked(t *testing.T, pg bool, wire func(*idp.Options), before func(*testIDP), tune ...func(*idp.Config)) *testIDP {
	t.Helper()
	ctx := context.Background()
	var st idp.Storage = memory.New()
	if pg {
		pool := pgtest.NewPool(t)
		if err := postgres.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		st = postgres.New(pool)
	}
	ti := &testIDP{st: st, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, logs: &syncBuffer{}, secret: map[string]string{}}
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Now: ti.clock.Now, PublishDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ti.srv = httptest.NewUnstartedServer(nil)
	cfg := idp.Config{Issuer: "http://" + ti.srv.Listener.Addr().String(), AllowPassword: true, MaxFamiliesPerUser: 3,
		Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}
	for _, f := range tune {
		f(&cfg)
	}
	o := idp.Options{Config: cfg, Store: st, Keys: keys, Now: ti.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(ti.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if wire != nil {
		wire(&o)
	}
	ti.p, err = idp.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ti.p.Close)
	if before != nil {
		before(ti)
	}
	ti.srv.Config.Handler = ti.p.Handler()
	ti.srv.Start()
	t.Cleanup(ti.srv.Close)

	for _, c := range []idp.NewClient{
		{ID: "machine", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read", "orders.write"}},
		{ID: "web", FirstParty: true, Grants: []string{idp.GrantPassword, idp.GrantRefreshToken}, Scopes: []string{"profile", "orders.read"}},
		{ID: "thirdp", Name: "Budget App", Grants: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken}, Scopes: []string{"profile"},
			RedirectURIs: []string{"https://thirdp.example/callback"}},
		{ID: "spa", Public: true, Grants: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken}, Scopes: []string{"profile"},
			RedirectURIs: []string{"http://127.0.0.1:9999/cb"}},
		{ID: "gateway", Grants: []string{idp.GrantTokenExchange, idp.PermissionIntrospect}, Audiences: []string{"orders-svc", "billing-svc"}},
	} {
		s, err := ti.p.CreateClient(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		ti.secret[c.ID] = s
	}
	ti.userID, err = ti.p.CreateUser(ctx, idp.NewUser{Username: testUser, Password: testPassword, CustomerNumber: "C-1001",
		Claims: map[string]any{"name": "Ann Example", "email": "ann@example.com", "iss": "must-not-override"}})
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func (ti *testIDP) url(p string) string { return ti.srv.URL + p }

// post sends a form to an endpoint with optional basic auth.
func (ti *testIDP) post(t *testing.T, path string, form url.Values, client string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", ti.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(ti.secret[client]))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// introspect asks whether a token is active.
func (ti *testIDP) active(t *testing.T, tok string) bool {
	t.Helper()
	code, _, b := ti.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, "gateway")
	if code != 200 {
		t.Fatalf("introspect: %d %s", code, b)
	}
	return decode(t, b)["active"] == true
}

func (ti *testIDP) password(t *testing.T, extra url.Values) map[string]any {
	t.Helper()
	f := url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}
	for k, v := range extra {
		f[k] = v
	}
	code, _, b := ti.post(t, "/oauth2/token", f, "web")
	if code != 200 {
		t.Fatalf("password grant: %d %s", code, b)
	}
	return decode(t, b)
}
