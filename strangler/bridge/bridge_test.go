package bridge_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/bridge"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/prometheus/client_golang/prometheus"
)

// clock is the bridge's injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type user struct{ id, customerNo, name string }

var users = map[string]user{
	"alice": {"1001", "C-77", "Alice"},
	"bob":   {"1002", "C-78", "Bob"},
}

// monolith is a legacy web app with a session cookie: POST /login?user=
// logs on, POST /logout logs off, GET /whoami says who owns the session.
// Every other path answers "legacy" and reports the headers it got.
type monolith struct {
	srv      *httptest.Server
	mu       sync.Mutex
	sessions map[string]string // JSESSIONID → user name
	whoamis  atomic.Int32
	// whoamiCookie receives the Cookie header of every who-am-I call.
	whoamiCookie chan string
	// whoami, if set, answers who-am-I calls instead.
	whoami atomic.Pointer[http.HandlerFunc]
	// release, if set, holds who-am-I calls until it is closed.
	release atomic.Pointer[chan struct{}]
	seen    chan http.Header
}

func newMonolith(t *testing.T) *monolith {
	m := &monolith{sessions: map[string]string{}, whoamiCookie: make(chan string, 1000), seen: make(chan http.Header, 100)}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			name := r.URL.Query().Get("user")
			if _, ok := users[name]; !ok {
				http.Error(w, "no such user", http.StatusForbidden)
				return
			}
			sid := m.login(name)
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sid, Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark", Path: "/"})
			io.WriteString(w, "welcome")
		case "/logout":
			if c, err := r.Cookie("JSESSIONID"); err == nil {
				m.mu.Lock()
				delete(m.sessions, c.Value)
				m.mu.Unlock()
			}
			io.WriteString(w, "bye")
		case "/whoami":
			m.whoamis.Add(1)
			m.whoamiCookie <- r.Header.Get("Cookie")
			if ch := m.release.Load(); ch != nil {
				select {
				case <-*ch:
				case <-r.Context().Done():
					return
				}
			}
			if h := m.whoami.Load(); h != nil {
				(*h)(w, r)
				return
			}
			var name string
			if c, err := r.Cookie("JSESSIONID"); err == nil {
				m.mu.Lock()
				name = m.sessions[c.Value]
				m.mu.Unlock()
			}
			w.Header().Set("Content-Type", "application/json")
			if name == "" {
				io.WriteString(w, `{"authenticated": false, "user": null}`)
				return
			}
			u := users[name]
			json.NewEncoder(w).Encode(map[string]any{"authenticated": true,
				"user": map[string]any{"id": u.id, "customerNo": u.customerNo, "name": u.name, "roles": []string{"customer"}}})
		default:
			m.seen <- r.Header.Clone()
			io.WriteString(w, "legacy")
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *monolith) login(name string) string {
	b := make([]byte, 16)
	rand.Read(b)
	sid := strings.ToUpper(hex.EncodeToString(b))
	m.mu.Lock()
	m.sessions[sid] = name
	m.mu.Unlock()
	return sid
}

func (m *monolith) answer(h http.HandlerFunc) { m.whoami.Store(&h) }

// seenByService is what the new service reports about a request.
type seenByService struct {
	Verified      bool           `json:"verified"`
	Claims        map[string]any `json:"claims"`
	Authorization string         `json:"authorization"`
	Cookie        string         `json:"cookie"`
	Spoofed       string         `json:"spoofed"`
}

type world struct {
	mono  *monolith
	idp   *idptest.Server
	gw    *httptest.Server
	gwh   *strangler.Gateway
	clock *clock
	reg   *prometheus.Registry
	stage *bridge.Stage
}

const rulesYAML = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  orders: {url: "SVC", audience: orders-svc}
bridges:
  web:
    cookie: JSESSIONID
    whoami: {path: /whoami, timeout: TIMEOUT}
    cache_ttl: 10s
    client: web-bridge
    scope: orders.read
    login_url: /login
    mapping:
      user_id: /user/id
      customer_number: /user/customerNo
      logged_on: /authenticated
      claims: {name: /user/name, roles: /user/roles}
routes:
  - {name: moved, match: {prefix: /orders}, to: orders, auth: {policy: bridge, bridge: web}}
  - {name: private, match: {prefix: /account}, to: orders, auth: {policy: bridge, bridge: web, require_login: true}}
  - name: cart
    match: {prefix: /cart}
    split: [{to: orders, weight: 50}, {to: legacy, weight: 50}]
    override: {header: X-Side}
    auth: {policy: bridge, bridge: web}
`

// newWorld runs the IDP, a monolith, a new service that verifies every
// JWT with go-oidc against the IDP's JWKS, and the gateway with the
// bridge stage in front of them.
func newWorld(t *testing.T, whoamiTimeout string, tune ...func(*bridge.Options)) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{mono: newMonolith(t), idp: idptest.Start(t), clock: &clock{t: time.Now()}, reg: prometheus.NewRegistry()}
	w.idp.Client(t, idp.NewClient{ID: "web-bridge", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}})
	verifier := oidc.NewVerifier(w.idp.Issuer, oidc.NewRemoteKeySet(ctx, w.idp.Issuer+"/.well-known/jwks.json"),
		&oidc.Config{ClientID: "orders-svc", SupportedSigningAlgs: []string{oidc.EdDSA, oidc.ES256, oidc.RS256}})
	svc := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s := seenByService{Authorization: r.Header.Get("Authorization"), Cookie: strings.Join(r.Header.Values("Cookie"), "; "), Spoofed: r.Header.Get("X-Ficus-User")}
		if tok, ok := strings.CutPrefix(s.Authorization, "Bearer "); ok {
			if it, err := verifier.Verify(r.Context(), tok); err == nil {
				s.Verified = true
				_ = it.Claims(&s.Claims)
			}
		}
		if strings.HasSuffix(r.URL.Path, "/set-cookie") {
			rw.Header().Add("Set-Cookie", "JSESSIONID=from-the-service; Path=/")
			rw.Header().Add("Set-Cookie", "orders_pref=1; Path=/")
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(s)
	}))
	t.Cleanup(svc.Close)

	var err error
	o := bridge.Options{Minter: w.idp.P, Registerer: w.reg, Now: w.clock.Now}
	for _, f := range tune {
		f(&o)
	}
	w.stage, err = bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := auth.New(auth.Options{Issuer: auth.Local{P: w.idp.P}, Policies: map[string]strangler.AuthStage{"bridge": w.stage}})
	if err != nil {
		t.Fatal(err)
	}
	// The web session's cookies, as ficus serve declares them when
	// sessions are on.
	w.gwh, _ = strangler.New(strangler.Options{Auth: st, Registerer: w.reg, OwnedCookies: []string{"ficus_session", "ficus_visitor"}})
	w.load(t, strings.NewReplacer("MONO", w.mono.srv.URL, "SVC", svc.URL, "TIMEOUT", whoamiTimeout).Replace(rulesYAML))
	w.gw = httptest.NewServer(w.gwh)
	t.Cleanup(w.gw.Close)
	return w
}

func (w *world) load(t *testing.T, src string) {
	t.Helper()
	f, err := routes.Parse("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.gwh.Load(f); err != nil {
		t.Fatal(err)
	}
}

// browser is a client with a cookie jar that never follows redirects.
func (w *world) browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request through the gateway; hdr are name, value pairs.
func (w *world) do(t *testing.T, c *http.Client, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, w.gw.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// service GETs path, which the new service answers, and returns what it saw.
func (w *world) service(t *testing.T, c *http.Client, path string, hdr ...string) seenByService {
	t.Helper()
	resp := w.do(t, c, http.MethodGet, path, hdr...)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var s seenByService
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *world) loginAs(t *testing.T, c *http.Client, name string) {
	t.Helper()
	if resp := w.do(t, c, http.MethodPost, "/login?user="+name); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
}

// outcome is the value of ficus_bridge_whoami_total{bridge="web",outcome=o}.
func (w *world) outcome(o string) float64 {
	mfs, _ := w.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "ficus_bridge_whoami_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["bridge"] == "web" && labels["outcome"] == o {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func cookieNames(header string) []string {
	var names []string
	for _, p := range strings.Split(header, ";") {
		if n, _, _ := strings.Cut(strings.TrimSpace(p), "="); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Issue 10 (attack): ficus's own cookies are bearer credentials of the web
// session; on a bridged route the Cookie header the new service gets is
// rebuilt without the monolith's cookie, and it must not bring ficus's
// cookies back, whichever Cookie line they came in.
func TestOwnedCookiesStayOffBridgedRoutes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	sid := w.mono.login("alice")
	s := w.service(t, http.DefaultClient, "/orders/1", "Cookie", "JSESSIONID="+sid+"; ficus_session=secret1; theme=dark",
		"Cookie", "ficus_visitor=secret2; lang=de")
	if !s.Verified {
		t.Fatalf("no JWT for the logged-on user: %+v", s)
	}
	if got := cookieNames(s.Cookie); !slices.Equal(got, []string{"theme", "lang"}) {
		t.Fatalf("the new service got cookies %q, want theme and lang only", s.Cookie)
	}
	// Not logged on: the same.
	s = w.service(t, http.DefaultClient, "/orders/1", "Cookie", "JSESSIONID=unknown; ficus_session=secret1; theme=dark")
	if got := cookieNames(s.Cookie); !slices.Equal(got, []string{"theme"}) {
		t.Fatalf("anonymous: the new service got cookies %q, want theme only", s.Cookie)
	}
}

// Issue 10: a cookie-jar client logs on at the monolith, a moved path is
// answered by the new service with a JWT for that user, the monolith
// keeps its cookie, and after a logout on the monolith the moved path no
// longer carries the user once the cached answer expires.
func TestCookieJarWalk(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	b := w.browser(t)

	s := w.service(t, b, "/orders/1", "Authorization", "Bearer forged")
	if s.Authorization != "" || s.Verified {
		t.Fatalf("before logon the service got %+v", s)
	}
	if n := w.mono.whoamis.Load(); n != 0 {
		t.Fatalf("%d who-am-I calls without a session cookie", n)
	}

	w.loginAs(t, b, "alice")
	s = w.service(t, b, "/orders/1")
	if !s.Verified {
		t.Fatalf("no verifiable JWT after logon: %+v", s)
	}
	c := s.Claims
	for k, want := range map[string]any{"sub": "1001", "customer_number": "C-77", "name": "Alice", "src": "legacy-session",
		"client_id": "web-bridge", "level": "logged_on", "scope": "orders.read", "aud": "orders-svc"} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	if roles, _ := c["roles"].([]any); len(roles) != 1 || roles[0] != "customer" {
		t.Errorf("roles = %v", c["roles"])
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat > 40 {
		t.Errorf("the JWT lives %vs past its check, more than cache_ttl + 30s", exp-iat)
	}
	if names := cookieNames(s.Cookie); len(names) != 1 || names[0] != "theme" {
		t.Errorf("the service got cookies %q, want theme only", s.Cookie)
	}
	if cookie := <-w.mono.whoamiCookie; !strings.HasPrefix(cookie, "JSESSIONID=") || strings.Contains(cookie, "theme") {
		t.Errorf("who-am-I got Cookie %q, want the session cookie only", cookie)
	}

	// The monolith gets its cookie, unchanged, on its own routes.
	if resp := w.do(t, b, http.MethodGet, "/legacy/page"); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	legacy := <-w.mono.seen
	u, _ := url.Parse(w.gw.URL)
	var sid string
	for _, ck := range b.Jar.Cookies(u) {
		if ck.Name == "JSESSIONID" {
			sid = ck.Value
		}
	}
	if !strings.Contains(legacy.Get("Cookie"), "JSESSIONID="+sid) || legacy.Get("Authorization") != "" {
		t.Fatalf("the monolith got Cookie %q, Authorization %q", legacy.Get("Cookie"), legacy.Get("Authorization"))
	}

	// Cached: one who-am-I call per cookie value.
	w.service(t, b, "/orders/2")
	if n := w.mono.whoamis.Load(); n != 1 {
		t.Fatalf("%d who-am-I calls for one cookie value", n)
	}

	w.do(t, b, http.MethodPost, "/logout")
	w.clock.Add(11 * time.Second) // the cached answer expires
	s = w.service(t, b, "/orders/3")
	if s.Authorization != "" || s.Verified {
		t.Fatalf("after logout the service still got %+v", s)
	}
	if got := w.outcome("ok"); got != 1 {
		t.Errorf("ok outcomes %v", got)
	}
	if got := w.outcome("anonymous"); got != 1 {
		t.Errorf("anonymous outcomes %v", got)
	}
}

// Forged, tampered and other users' cookies, and identity headers sent by
// the browser, are each refused and harmless.
func TestForgedTamperedAndSpoofed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	aliceSid, bobSid := w.mono.login("alice"), w.mono.login("bob")
	tampered := aliceSid[:len(aliceSid)-1] + "0"
	if tampered == aliceSid {
		tampered = aliceSid[:len(aliceSid)-1] + "1"
	}
	c := http.DefaultClient

	for _, tc := range []struct{ name, cookie string }{
		{"forged", "JSESSIONID=0123456789ABCDEF0123456789ABCDEF"},
		{"tampered", "JSESSIONID=" + tampered},
		{"empty", "JSESSIONID="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := w.service(t, c, "/orders", "Cookie", tc.cookie, "Authorization", "Bearer someone-elses", "X-Ficus-User", "alice")
			if s.Verified || s.Authorization != "" || s.Spoofed != "" || strings.Contains(s.Cookie, "JSESSIONID") {
				t.Fatalf("the service got %+v", s)
			}
			resp := w.do(t, c, http.MethodGet, "/account", "Cookie", tc.cookie)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("require_login: %d", resp.StatusCode)
			}
		})
	}

	// Another user's cookie is that user, never the one cached before.
	if s := w.service(t, c, "/orders", "Cookie", "JSESSIONID="+aliceSid); s.Claims["sub"] != "1001" {
		t.Fatalf("alice: %v", s.Claims)
	}
	s := w.service(t, c, "/orders", "Cookie", "JSESSIONID="+bobSid, "Authorization", "Bearer forged", "X-Ficus-User", "alice")
	if s.Claims["sub"] != "1002" || s.Claims["customer_number"] != "C-78" || s.Spoofed != "" {
		t.Fatalf("bob: %+v", s)
	}

	// A cookie too long to be a session id is refused before it is hashed
	// or sent.
	before := w.mono.whoamis.Load()
	resp := w.do(t, c, http.MethodGet, "/orders", "Cookie", "JSESSIONID="+strings.Repeat("A", bridge.MaxCookieLen))
	if resp.StatusCode != http.StatusBadRequest || w.mono.whoamis.Load() != before {
		t.Fatalf("long cookie: %d, %d calls", resp.StatusCode, w.mono.whoamis.Load()-before)
	}

	// A new service cannot set the monolith's session cookie.
	resp = w.do(t, c, http.MethodGet, "/orders/set-cookie", "Cookie", "JSESSIONID="+aliceSid)
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 1 || !strings.HasPrefix(sc[0], "orders_pref=") {
		t.Fatalf("Set-Cookie from the service: %q", sc)
	}
}

// require_login: a browser's page request goes to the login page, an API
// call gets 401, a logged-on caller passes.
func TestRequireLogin(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	b := w.browser(t)
	resp := w.do(t, b, http.MethodGet, "/account", "Accept", "text/html,application/xhtml+xml")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login" {
		t.Fatalf("page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = w.do(t, b, http.MethodPost, "/account", "Accept", "text/html")
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "login_required" {
		t.Fatalf("POST: %d %v", resp.StatusCode, body)
	}
	w.loginAs(t, b, "bob")
	if s := w.service(t, b, "/account"); s.Claims["sub"] != "1002" {
		t.Fatalf("logged on: %+v", s)
	}
}

// The monolith side of a split route gets the request as the client sent
// it: its cookie and the client's Authorization.
func TestMonolithSideUnchanged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	sid := w.mono.login("alice")
	resp := w.do(t, http.DefaultClient, http.MethodGet, "/cart", "X-Side", "legacy", "Cookie", "JSESSIONID="+sid+"; theme=dark", "Authorization", "Basic eDp5")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	got := <-w.mono.seen
	if got.Get("Cookie") != "JSESSIONID="+sid+"; theme=dark" || got.Get("Authorization") != "Basic eDp5" {
		t.Fatalf("the monolith got Cookie %q, Authorization %q", got.Get("Cookie"), got.Get("Authorization"))
	}
	if s := w.service(t, http.DefaultClient, "/cart", "X-Side", "orders", "Cookie", "JSESSIONID="+sid+"; theme=dark"); s.Claims["sub"] != "1001" || s.Cookie != "theme=dark" {
		t.Fatalf("the new side got %+v", s)
	}
}

// A who-am-I endpoint that is down, slow or answers garbage gets the
// request a 503 with Retry-After, never a JWT and never a call to the
// new service; a redirect or 401 means not logged on.
func TestWhoamiGarbage(t *testing.T) {
	t.Parallel()
	huge := `{"authenticated": true, "user": {"id": "1001", "pad": "` + strings.Repeat("x", 70<<10) + `"}}`
	tests := []struct {
		name    string
		answer  http.HandlerFunc
		hang    bool
		status  int // of the gateway's answer on /orders
		outcome string
	}{
		{"not JSON", text(200, "<html>Welcome back, Alice</html>"), false, 503, "error"},
		{"huge body", text(200, huge), false, 503, "error"},
		{"id is an object", text(200, `{"authenticated": true, "user": {"id": {"n": 1}}}`), false, 503, "error"},
		{"id is a fraction", text(200, `{"authenticated": true, "user": {"id": 10.5}}`), false, 503, "error"},
		{"flag is a string", text(200, `{"authenticated": "yes", "user": {"id": "1001"}}`), false, 503, "error"},
		{"logged on without id", text(200, `{"authenticated": true, "user": {}}`), false, 503, "error"},
		{"claim is an object", text(200, `{"authenticated": true, "user": {"id": "1001", "name": {"first": "A"}}}`), false, 503, "error"},
		{"two JSON values", text(200, `{"authenticated": true, "user": {"id": "1001"}} {"x": 1}`), false, 503, "error"},
		{"500", text(500, `{"authenticated": true, "user": {"id": "1001"}}`), false, 503, "error"},
		{"404", text(404, "not found"), false, 503, "error"},
		{"slow", nil, true, 503, "timeout"},
		{"redirect to the login page", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/whoami-elsewhere", http.StatusFound)
		}, false, 200, "anonymous"},
		{"401", text(401, `{"authenticated": true, "user": {"id": "1001"}}`), false, 200, "anonymous"},
		{"numeric id", text(200, `{"authenticated": true, "user": {"id": 1001}}`), false, 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "300ms")
			if tt.hang {
				ch := make(chan struct{})
				t.Cleanup(func() { close(ch) })
				w.mono.release.Store(&ch)
			} else {
				w.mono.answer(tt.answer)
			}
			resp := w.do(t, http.DefaultClient, http.MethodGet, "/orders", "Cookie", "JSESSIONID=ABC; theme=dark")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			switch tt.status {
			case 503:
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "temporarily_unavailable") {
					t.Fatalf("503 without Retry-After or error: %v %s", resp.Header, body)
				}
			case 200:
				var s seenByService
				json.Unmarshal(body, &s)
				if tt.outcome == "anonymous" && (s.Verified || s.Authorization != "") {
					t.Fatalf("a JWT for a session that is not logged on: %+v", s)
				}
				if tt.outcome == "ok" && s.Claims["sub"] != "1001" {
					t.Fatalf("numeric id: %+v", s)
				}
			}
			if got := w.outcome(tt.outcome); got != 1 {
				t.Fatalf("outcome %s counted %v times", tt.outcome, got)
			}
			// Failures are not cached: the next request asks again.
			if tt.status == 503 {
				w.do(t, http.DefaultClient, http.MethodGet, "/orders", "Cookie", "JSESSIONID=ABC")
				if n := w.mono.whoamis.Load(); n != 2 {
					t.Fatalf("%d who-am-I calls after two failing requests, want 2", n)
				}
			}
		})
	}
}

func text(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Concurrent requests with one new cookie value make one who-am-I call.
func TestConcurrentRequestsAskOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "5s")
	sid := w.mono.login("alice")
	hold := make(chan struct{})
	w.mono.release.Store(&hold)
	const n = 20
	statuses := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, w.gw.URL+"/orders", nil)
			req.Header.Set("Cookie", "JSESSIONID="+sid)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	<-w.mono.whoamiCookie // the first call arrived and is held
	waittest.For(t, "every request in the gateway", func() bool {
		mfs, _ := w.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "ficus_inflight_requests" {
				return mf.GetMetric()[0].GetGauge().GetValue() == n
			}
		}
		return false
	})
	close(hold)
	for range n {
		if s := <-statuses; s != http.StatusOK {
			t.Fatalf("status %d", s)
		}
	}
	if got := w.mono.whoamis.Load(); got != 1 {
		t.Fatalf("%d who-am-I calls for %d concurrent requests", got, n)
	}
}

// Answers, logged on or not, are reused for cache_ttl by the injected
// clock, then asked again; a reload with the same bridge keeps them.
func TestCacheLifetime(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "2s")
	sid := w.mono.login("alice")
	get := func(cookie string) { w.service(t, http.DefaultClient, "/orders", "Cookie", cookie) }
	for _, cookie := range []string{"JSESSIONID=" + sid, "JSESSIONID=UNKNOWN"} {
		get(cookie)
		get(cookie)
	}
	if n := w.mono.whoamis.Load(); n != 2 {
		t.Fatalf("%d calls, want one per cookie value", n)
	}
	w.load(t, reloadSame(w))
	w.clock.Add(9 * time.Second)
	get("JSESSIONID=" + sid)
	get("JSESSIONID=UNKNOWN")
	if n := w.mono.whoamis.Load(); n != 2 {
		t.Fatalf("%d calls within cache_ttl (and a reload), want 2", n)
	}
	w.clock.Add(2 * time.Second)
	get("JSESSIONID=" + sid)
	get("JSESSIONID=UNKNOWN")
	if n := w.mono.whoamis.Load(); n != 4 {
		t.Fatalf("%d calls after cache_ttl, want 4", n)
	}
}

// reloadSame renders the live rules again, as a reload of an unchanged
// file does.
func reloadSame(w *world) string {
	f := w.gwh.Rules()
	return strings.NewReplacer("MONO", f.Upstreams["legacy"].URL, "SVC", f.Upstreams["orders"].URL, "TIMEOUT", "2s").Replace(rulesYAML)
}

// Who-am-I calls in flight are bounded: past the bound, a request with a
// new cookie value gets 503 without a call (a flood of random cookies
// cannot pile up on the monolith), while cached answers are still served.
func TestInflightCallsBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "5s", func(o *bridge.Options) { o.MaxInflight = 1 })
	sid := w.mono.login("alice")
	w.service(t, http.DefaultClient, "/orders", "Cookie", "JSESSIONID="+sid) // cached now
	<-w.mono.whoamiCookie
	hold := make(chan struct{})
	w.mono.release.Store(&hold)
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, w.gw.URL+"/orders", nil)
		req.Header.Set("Cookie", "JSESSIONID=FIRST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-w.mono.whoamiCookie // the one call allowed is in flight
	if resp := w.do(t, http.DefaultClient, http.MethodGet, "/orders", "Cookie", "JSESSIONID=SECOND"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("past the bound: %d", resp.StatusCode)
	}
	if s := w.service(t, http.DefaultClient, "/orders", "Cookie", "JSESSIONID="+sid); s.Claims["sub"] != "1001" {
		t.Fatalf("a cached answer while the bound is reached: %+v", s)
	}
	close(hold)
	if code := <-held; code != http.StatusOK {
		t.Fatalf("the held request: %d", code)
	}
	if got, calls := w.outcome("busy"), w.mono.whoamis.Load(); got != 1 || calls != 2 {
		t.Fatalf("busy %v, who-am-I calls %d", got, calls)
	}
}
