package session_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/strangler/session"
)

func randomCookie() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue 10: forged, tampered and guessed session cookies give nobody's
// session: the browser gets a new anonymous one, and the logged-on user's
// session is untouched.
func TestForgedCookiesAreNobodys(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	alice := w.user(t, "alice", "C-1")
	victim := w.browser(t)
	if victim.login(t, "alice", "password-alice").StatusCode != 200 {
		t.Fatal("login")
	}
	real := victim.cookie("ficus_session")
	last := real[len(real)-1]
	flipped := byte('A')
	if last == 'A' {
		flipped = 'B'
	}
	for name, forged := range map[string]string{
		"guessed":        randomCookie(),
		"tampered":       real[:len(real)-1] + string(flipped),
		"truncated":      real[:len(real)-1],
		"extended":       real + "A",
		"garbage":        "not-a-cookie",
		"the hash of it": "", // the stored hash, filled below
	} {
		t.Run(name, func(t *testing.T) {
			if name == "the hash of it" {
				_, a := victim.page(t, "/shop")
				forged = a.Header.Get("X-Ficus-JPT") // carries sid, the hash: as good as nothing
			}
			b := w.browser(t)
			b.setCookie("ficus_session", forged)
			_, a := b.page(t, "/shop")
			if a.Header.Get("X-Ficus-User") == alice || a.Header.Get("X-Ficus-Level") != "anonymous" {
				t.Fatalf("a forged cookie got %q %q", a.Header.Get("X-Ficus-User"), a.Header.Get("X-Ficus-Level"))
			}
			if got := b.cookie("ficus_session"); got == forged || got == real {
				t.Fatal("the forged cookie was kept")
			}
		})
	}
	if _, a := victim.page(t, "/account"); a.Header.Get("X-Ficus-User") != alice {
		t.Fatal("the victim's session suffered")
	}
}

// Issue 10: a browser's copies of the session layer's headers never reach
// an upstream, on session routes, on monolith routes and on routes nobody
// declared.
func TestSpoofedContextHeadersAreStripped(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := w.browser(t)
	spoof := []string{"X-Ficus-User", "admin", "X-Ficus-Level", "logged_on", "X-Ficus-Customer", "C-0", "X-Ficus-Login-Time", "2026-01-01T00:00:00Z",
		"X-Ficus-Session-Attrs", `{"cart_id":"x"}`, "X-Ficus-JPT", "forged", "X-Ficus-CSRF-Token", "forged", "X-Ficus-Context-Update", `{"cart_id":"x"}`}
	_, a := b.page(t, "/shop", spoof...)
	for i := 0; i < len(spoof); i += 2 {
		if got := a.Header.Get(spoof[i]); got == spoof[i+1] {
			t.Errorf("session route: the web app got the browser's %s", spoof[i])
		}
	}
	if a.Header.Get("X-Ficus-Level") != "anonymous" || a.Header.Get("X-Ficus-User") != "" {
		t.Fatalf("session route: %v", a.Header)
	}
	for _, path := range []string{"/legacy/page", "/nowhere"} {
		b.do(t, "GET", path, nil, spoof...)
		w.monoMu.Lock()
		seen := w.monoSeen
		w.monoMu.Unlock()
		for k := range seen {
			if strings.HasPrefix(k, "X-Ficus-") {
				t.Errorf("%s: the monolith got %s", path, k)
			}
		}
		if strings.Contains(seen.Get("Cookie"), "ficus_") {
			t.Errorf("%s: the monolith got ficus's cookies: %q", path, seen.Get("Cookie"))
		}
	}
}

// Issue 10: state-changing requests to session routes must show that they
// come from the site itself (Sec-Fetch-Site, Origin) or carry the
// session's CSRF token; cross-site ones are refused with 403 and counted.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *session.Options) { o.AllowedOrigins = []string{"https://partner.example"} })
	b := w.browser(t)
	_, a := b.page(t, "/shop") // a session, and its CSRF token
	token := a.Header.Get("X-Ficus-CSRF-Token")
	fresh := func() *browser { return w.browser(t) }
	tests := []struct {
		name   string
		b      *browser
		method string
		hdr    []string
		want   int
	}{
		{"cross-site fetch", b, "POST", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site sibling host", b, "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://evil.example.com"}, 403},
		{"same-origin fetch", b, "POST", []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"navigation typed by the user", b, "POST", []string{"Sec-Fetch-Site", "none"}, 200},
		{"allowed origin", b, "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://partner.example"}, 200},
		{"other origin, old browser", b, "PUT", []string{"Origin", "https://evil.example"}, 403},
		{"null origin", b, "DELETE", []string{"Origin", "null"}, 403},
		{"own origin, old browser", b, "PATCH", []string{"Origin", w.front.URL}, 200},
		{"no evidence, no token", b, "POST", nil, 403},
		{"no evidence, wrong token", b, "POST", []string{"X-CSRF-Token", "forged"}, 403},
		{"no evidence, the session's token", b, "POST", []string{"X-CSRF-Token", token}, 200},
		{"no evidence, no session to abuse", fresh(), "POST", nil, 200},
		{"cross-site GET", b, "GET", []string{"Sec-Fetch-Site", "cross-site"}, 200},
	}
	refused := 0
	for _, tt := range tests {
		resp, body := tt.b.do(t, tt.method, "/shop/form", strings.NewReader("x=1"), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, tt.hdr...)...)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.name, resp.StatusCode, tt.want, body)
		}
		if tt.want == 403 {
			refused++
			if !strings.Contains(string(body), `"error":"csrf"`) {
				t.Errorf("%s: the refusal does not say why: %s", tt.name, body)
			}
		}
	}
	if n := counter(t, w, "ficus_session_csrf_refusals_total", "route"); n != float64(refused) {
		t.Fatalf("refusals counted %v, want %d", n, refused)
	}
}

// Issue 10: after a login ficus redirects only to a path of its own site
// (or a configured host), whatever spelling return_to tries.
func TestLoginRedirectsOnlyHome(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *session.Options) { o.RedirectHosts = []string{"shop.example.com"} })
	w.user(t, "carol", "")
	tests := []struct{ given, want string }{
		{"", "/"},
		{"/account?tab=orders", "/account?tab=orders"},
		{"/account/./../account", "/account"},
		{"/ok#fragment", "/ok"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"http:evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/\t/evil.example", "/"},
		{" //evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"https://shop.example.com/basket", "https://shop.example.com/basket"},
		{"https://shop.example.com.evil.example/", "/"},
		{"https://user@shop.example.com/", "/"},
	}
	for _, tt := range tests {
		b := w.browser(t)
		form := url.Values{"username": {"carol"}, "password": {"password-carol"}, "return_to": {tt.given}}
		resp, body := b.do(t, "POST", "/auth/login", strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", "Origin", w.front.URL)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.want {
			t.Errorf("return_to %q: %d to %q, want %q: %s", tt.given, resp.StatusCode, resp.Header.Get("Location"), tt.want, body)
		}
	}
}

// Issue 10: a failed login says nothing about the user (the same answer
// for a wrong password and an unknown user); a form goes back to its page
// with login_error=1; too many attempts get 429 with Retry-After.
func TestFailedLogins(t *testing.T) {
	t.Parallel()
	w := buildWorld(t, func(c *idp.Config) { c.LoginRate, c.LoginBurst = 0.001, 3 })
	w.user(t, "dave", "")
	b := w.browser(t)
	wrong := b.login(t, "dave", "wrong-password")
	unknown := b.login(t, "nobody", "wrong-password")
	if wrong.StatusCode != 401 || unknown.StatusCode != 401 {
		t.Fatalf("wrong password %d, unknown user %d; want 401 both", wrong.StatusCode, unknown.StatusCode)
	}
	form := url.Values{"username": {"dave"}, "password": {"wrong-password"}}
	resp, _ := b.do(t, "POST", "/auth/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded",
		"Origin", w.front.URL, "Referer", w.front.URL+"/shop/login?next=%2Faccount")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/shop/login?login_error=1&next=%2Faccount" {
		t.Fatalf("form login failed: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.do(t, "POST", "/auth/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded",
		"Origin", w.front.URL, "Referer", "https://evil.example/phish")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?login_error=1" {
		t.Fatalf("a foreign Referer: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// dave's budget (3) is spent: even the right password waits now.
	resp = b.login(t, "dave", "password-dave")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, a := b.page(t, "/shop"); a.Header.Get("X-Ficus-Level") == "logged_on" {
		t.Fatal("logged on after failures")
	}
}

// Issue 10: login CSRF (a foreign page logging the victim in as the
// attacker) is refused like any cross-site POST; the login form may carry
// the session's token in csrf_token instead of Origin.
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.user(t, "eve", "")
	b := w.browser(t)
	form := url.Values{"username": {"eve"}, "password": {"password-eve"}}
	for _, hdr := range [][]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}, nil} {
		resp, _ := b.do(t, "POST", "/auth/login", strings.NewReader(form.Encode()), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
		if resp.StatusCode != 403 || b.cookie("ficus_session") != "" {
			t.Fatalf("%v: %d, session cookie %q", hdr, resp.StatusCode, b.cookie("ficus_session"))
		}
	}
	_, a := b.page(t, "/shop")
	form.Set("csrf_token", a.Header.Get("X-Ficus-CSRF-Token"))
	resp, _ := b.do(t, "POST", "/auth/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the form's token: %d", resp.StatusCode)
	}
	if _, a := b.page(t, "/shop"); a.Header.Get("X-Ficus-Level") != "logged_on" {
		t.Fatal("not logged on")
	}
	// Logging out cross-site is refused too.
	if resp, _ := b.do(t, "POST", "/auth/logout", nil, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}
}

// Issue 10: malformed requests to the endpoints get a clear 4xx, and a
// route's levels are enforced (403 when logging on would not help).
func TestEndpointAndLevelRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.user(t, "fay", "")
	b := w.browser(t)
	o := []string{"Origin", w.front.URL}
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"GET", "/auth/login", "", "", 405},
		{"POST", "/auth/login", "text/plain", "username=fay", 415},
		{"POST", "/auth/login", "application/json", `{"username":`, 400},
		{"POST", "/auth/login", "application/json", `{"username":"fay"}`, 400},
		{"POST", "/auth/login", "application/json", `{"username":"fay","password":"` + strings.Repeat("p", 20<<10) + `"}`, 413},
		{"POST", "/auth/login", "application/x-www-form-urlencoded", "username=fay&password=%zz", 400},
		{"GET", "/auth/logout", "", "", 405},
	} {
		resp, body := b.do(t, tc.method, tc.path, strings.NewReader(tc.body), append([]string{"Content-Type", tc.ctype}, o...)...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s: %d, want %d: %s", tc.method, tc.path, tc.body[:min(len(tc.body), 30)], resp.StatusCode, tc.want, body)
		}
	}
	if b.login(t, "fay", "password-fay").StatusCode != 200 {
		t.Fatal("login")
	}
	resp, body := b.do(t, "GET", "/welcome", nil)
	if resp.StatusCode != 403 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("a logged-on session on an anonymous-only page: %d %s", resp.StatusCode, body)
	}
}

// Issue 10 (attack): every start of a session writes a session and a
// visitor to the store, and a client that never sends its cookies back
// (a flood of cookieless requests, of bogus session cookies, of logins
// without a session) would write a pair of rows per request. Starts are
// bounded per client address; a browser that keeps its cookie is not.
func TestSessionStartsBoundedPerAddress(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *session.Options) { o.StartsPerMinute = 3 })
	w.user(t, "alice", "")
	keeper := w.browser(t)
	if resp, _ := keeper.page(t, "/shop"); resp.StatusCode != 200 {
		t.Fatalf("first visit: %d", resp.StatusCode)
	}
	for i := range 2 {
		b := w.browser(t)
		b.setCookie("ficus_session", randomCookie()) // a bogus cookie starts a session too
		if resp, _ := b.page(t, "/shop"); resp.StatusCode != 200 {
			t.Fatalf("start %d: %d", i+2, resp.StatusCode)
		}
	}
	started := counter(t, w, "ficus_session_started_total", "anonymous")
	flood := []struct {
		name string
		send func(b *browser) *http.Response
	}{
		{"no cookie", func(b *browser) *http.Response { r, _ := b.page(t, "/shop"); return r }},
		{"bogus cookie", func(b *browser) *http.Response {
			b.setCookie("ficus_session", randomCookie())
			r, _ := b.page(t, "/shop")
			return r
		}},
		{"login without a session", func(b *browser) *http.Response { return b.login(t, "alice", "wrong") }},
		{"form login without a session", func(b *browser) *http.Response {
			r, _ := b.do(t, "POST", "/auth/login", strings.NewReader("username=alice&password=wrong"),
				"Content-Type", "application/x-www-form-urlencoded", "Origin", w.front.URL)
			return r
		}},
	}
	for _, f := range flood {
		t.Run(f.name, func(t *testing.T) {
			resp := f.send(w.browser(t))
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("over the limit: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if len(resp.Cookies()) != 0 {
				t.Fatalf("over the limit, cookies were set: %v", resp.Cookies())
			}
		})
	}
	if n := counter(t, w, "ficus_session_started_total", "anonymous"); n != started {
		t.Fatalf("%v sessions started over the limit", n-started)
	}
	if resp, a := keeper.page(t, "/shop"); resp.StatusCode != 200 || a.Header.Get("X-Ficus-Level") != "anonymous" {
		t.Fatalf("a browser with its session got %d", resp.StatusCode)
	}
	if resp := keeper.login(t, "alice", "password-alice"); resp.StatusCode != 200 {
		t.Fatalf("a browser with its session could not log in: %d", resp.StatusCode)
	}
	w.clk.Add(time.Minute)
	if resp, _ := w.browser(t).page(t, "/shop"); resp.StatusCode != 200 {
		t.Fatalf("a minute later: %d", resp.StatusCode)
	}
}
