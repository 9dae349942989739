package demo

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is an injected time for the legacy sessions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startLegacy(t *testing.T) (*httptest.Server, *legacy, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)}
	l := newLegacy(DemoUser, "s3cret", Httpbin(), clk.now)
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv, l, clk
}

// browser is a cookie-jar client that does not follow redirects, so each
// step's answer is seen.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func whoamiOf(t *testing.T, c *http.Client, base string) whoamiAnswer {
	t.Helper()
	resp, body := do(t, c, http.MethodGet, base+LegacyWhoamiPath, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("whoami: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var a whoamiAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("whoami answers %q: %v", body, err)
	}
	return a
}

// The legacy web application: log in with the demo user's password, a
// random HttpOnly JSESSIONID, "my orders" with the user's name, who am I
// in JSON, logout ending the session; every other path is go-httpbin's.
func TestLegacyLoginOrdersWhoamiLogout(t *testing.T) {
	t.Parallel()
	srv, l, _ := startLegacy(t)
	c := browser(t)

	resp, _ := do(t, c, http.MethodGet, srv.URL+LegacyOrdersPath, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != LegacyLoginPath {
		t.Fatalf("orders before login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := do(t, c, http.MethodGet, srv.URL+LegacyLoginPath, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login form: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("login form CSP: %q", csp)
	}
	if a := whoamiOf(t, c, srv.URL); a.LoggedOn || a.User != nil {
		t.Fatalf("whoami before login: %+v", a)
	}

	resp, body = do(t, c, http.MethodPost, srv.URL+LegacyLoginPath, url.Values{"username": {"demo"}, "password": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("a failed login set cookies: %v", resp.Cookies())
	}

	resp, _ = do(t, c, http.MethodPost, srv.URL+LegacyLoginPath, url.Values{"username": {"demo"}, "password": {"s3cret"}},
		"Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != LegacyOrdersPath {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == LegacySessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.Path != "/" || session.SameSite != http.SameSiteLaxMode || len(session.Value) < 43 {
		t.Fatalf("session cookie: %+v", session)
	}
	l.mu.Lock()
	_, hashed := l.sessions[sha256.Sum256([]byte(session.Value))]
	l.mu.Unlock()
	if !hashed {
		t.Fatal("the session is not kept under the hash of its cookie value")
	}

	resp, body = do(t, c, http.MethodGet, srv.URL+LegacyOrdersPath, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Demo User") || !strings.Contains(body, servedByMonolith) ||
		!strings.Contains(body, "Fig tree") {
		t.Fatalf("my orders: %d %s", resp.StatusCode, body)
	}
	if a := whoamiOf(t, c, srv.URL); !a.LoggedOn || a.User == nil || *a.User != (whoamiUser{ID: "demo", CustomerNumber: "C-0001", Name: "Demo User"}) {
		t.Fatalf("whoami after login: %+v", a)
	}

	resp, body = do(t, c, http.MethodGet, srv.URL+"/get", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"headers"`) {
		t.Fatalf("go-httpbin behind the legacy app: %d %s", resp.StatusCode, body)
	}

	resp, _ = do(t, c, http.MethodPost, srv.URL+LegacyLogoutPath, url.Values{})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), LegacyLoginPath) {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if a := whoamiOf(t, c, srv.URL); a.LoggedOn {
		t.Fatalf("whoami after logout: %+v", a)
	}
	// The old cookie value, replayed, is dead too.
	replay := browser(t)
	u, _ := url.Parse(srv.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: LegacySessionCookie, Value: session.Value}})
	if a := whoamiOf(t, replay, srv.URL); a.LoggedOn {
		t.Fatal("the logged-out cookie still logs on")
	}
}

// Refused and harmless: cross-site form posts, wrong methods, oversized
// forms, forged cookies.
func TestLegacyRefuses(t *testing.T) {
	t.Parallel()
	srv, _, _ := startLegacy(t)
	good := url.Values{"username": {"demo"}, "password": {"s3cret"}}
	tests := []struct {
		name       string
		method     string
		path       string
		form       url.Values
		hdr        []string
		wantStatus int
	}{
		{"cross-site login", http.MethodPost, LegacyLoginPath, good, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same-site login from another origin", http.MethodPost, LegacyLoginPath, good, []string{"Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{"cross-site logout", http.MethodPost, LegacyLogoutPath, url.Values{}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"logout by GET", http.MethodGet, LegacyLogoutPath, nil, nil, http.StatusMethodNotAllowed},
		{"login by PUT", http.MethodPut, LegacyLoginPath, good, nil, http.StatusMethodNotAllowed},
		{"oversized form", http.MethodPost, LegacyLoginPath, url.Values{"username": {strings.Repeat("a", legacyMaxForm)}}, nil, http.StatusBadRequest},
		{"wrong user", http.MethodPost, LegacyLoginPath, url.Values{"username": {"root"}, "password": {"s3cret"}}, nil, http.StatusUnauthorized},
		{"forged cookie", http.MethodGet, LegacyOrdersPath, nil, []string{"Cookie", LegacySessionCookie + "=forged"}, http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, browser(t), tt.method, srv.URL+tt.path, tt.form, tt.hdr...)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == LegacySessionCookie && ck.Value != "" {
					t.Fatalf("a session was started: %+v", ck)
				}
			}
		})
	}
}

// Sessions expire after their lifetime, and an anonymous caller cannot
// make the monolith hold more than legacyMaxSessions.
func TestLegacySessionsExpireAndAreBounded(t *testing.T) {
	t.Parallel()
	srv, l, clk := startLegacy(t)
	c := browser(t)
	do(t, c, http.MethodPost, srv.URL+LegacyLoginPath, url.Values{"username": {"demo"}, "password": {"s3cret"}})
	if !whoamiOf(t, c, srv.URL).LoggedOn {
		t.Fatal("not logged on")
	}
	clk.add(legacySessionLifetime)
	if whoamiOf(t, c, srv.URL).LoggedOn {
		t.Fatal("the session outlived its lifetime")
	}

	for range legacyMaxSessions + 5 {
		if _, err := l.newSession(); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Millisecond)
	}
	first, err := l.newSession()
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	n := len(l.sessions)
	l.mu.Unlock()
	if n > legacyMaxSessions {
		t.Fatalf("%d sessions held, at most %d", n, legacyMaxSessions)
	}
	// The newest session survives the eviction.
	req := httptest.NewRequest(http.MethodGet, LegacyWhoamiPath, nil)
	req.AddCookie(&http.Cookie{Name: LegacySessionCookie, Value: first})
	if !l.loggedOn(req) {
		t.Fatal("the newest session was evicted")
	}
}
