package session_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify"
)

// Issue 10, solution C, with a cookie jar and an injected clock: first
// visit (anonymous), back a day later (returning), login (new session id),
// the web app calls a service with its JPT (the service sees a JWT it
// verifies), context update, logout (the JPT is refused at once).
func TestBrowserJourney(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	alice := w.user(t, "alice", "C-1001")
	b := w.browser(t)

	// First visit: an anonymous session, its cookies set as they must be.
	resp, a := b.page(t, "/shop")
	if resp.StatusCode != 200 || a.Header.Get("X-Ficus-Level") != "anonymous" || a.Header.Get("X-Ficus-User") != "" {
		t.Fatalf("first visit: %d, level %q, user %q", resp.StatusCode, a.Header.Get("X-Ficus-Level"), a.Header.Get("X-Ficus-User"))
	}
	if a.Header.Get("X-Ficus-JPT") == "" || a.Header.Get("X-Ficus-CSRF-Token") == "" {
		t.Fatalf("the web app got no JPT or CSRF token: %v", a.Header)
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") || !strings.Contains(c, "Path=/") || strings.Contains(c, "Secure") {
			t.Errorf("cookie %q: want HttpOnly, SameSite=Lax, Path=/ and (plain HTTP) not Secure", c)
		}
	}
	first, visitor := b.cookie("ficus_session"), b.cookie("ficus_visitor")
	if len(first) < 43 || len(visitor) < 43 || first == visitor {
		t.Fatalf("cookies: session %q, visitor %q", first, visitor)
	}
	if strings.Contains(a.Header.Get("Cookie"), "ficus_") {
		t.Fatalf("the web app got ficus's cookies: %q", a.Header.Get("Cookie"))
	}

	// A day later: the anonymous session is over, the visitor returns.
	w.clk.Add(25 * time.Hour)
	_, a = b.page(t, "/shop")
	if lvl := a.Header.Get("X-Ficus-Level"); lvl != "returning" {
		t.Fatalf("a day later: level %q, want returning", lvl)
	}
	if b.cookie("ficus_session") == first {
		t.Fatal("the expired session's cookie is still in use")
	}

	// Logged-on pages need a login: 401 with a hint, the page is not served.
	resp, body := b.do(t, "GET", "/account", nil)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `login="/auth/login"`) || !strings.Contains(string(body), "login_required") {
		t.Fatalf("account before login: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}

	// Login: a new session id, logged on.
	before := b.cookie("ficus_session")
	if resp := b.login(t, "alice", "password-alice"); resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	loggedOn := b.cookie("ficus_session")
	if loggedOn == before || loggedOn == "" {
		t.Fatal("login kept the session id (fixation)")
	}
	_, a = b.page(t, "/account")
	if a.Header.Get("X-Ficus-Level") != "logged_on" || a.Header.Get("X-Ficus-User") != alice || a.Header.Get("X-Ficus-Customer") != "C-1001" ||
		a.Header.Get("X-Ficus-Login-Time") != w.clk.Now().UTC().Format(time.RFC3339) {
		t.Fatalf("after login the web app saw %v", a.Header)
	}
	// The session cookie from before the login is worth nothing now.
	old := w.browser(t)
	old.setCookie("ficus_session", before)
	if _, a := old.page(t, "/shop"); a.Header.Get("X-Ficus-Level") == "logged_on" || a.Header.Get("X-Ficus-User") == alice {
		t.Fatalf("the pre-login cookie is logged on: %v", a.Header)
	}

	// The web app calls a service through the gateway with its JPT; the
	// service gets a JWT for the user, which it verifies.
	_, a = b.page(t, "/shop/call")
	var c verify.Claims
	if a.Status != 200 || json.Unmarshal([]byte(a.Service), &c) != nil || c.Subject != alice || c.Level != "logged_on" ||
		c.CustomerNumber != "C-1001" || c.ClientID != "ficus-session" {
		t.Fatalf("service call with the JPT: %d %s", a.Status, a.Service)
	}
	jpt := a.Header.Get("X-Ficus-JPT")
	// The JPT itself is no JWT for a service.
	if _, err := w.verifier.Verify(t.Context(), jpt); err == nil {
		t.Fatal("a service accepted a JPT")
	}

	// Context update: applied, and never shown to the browser.
	resp, _ = b.page(t, `/shop/update?u={"cart_id":"cart-7"}`)
	if resp.Header.Get("X-Ficus-Context-Update") != "" {
		t.Fatal("the context update reached the browser")
	}
	_, a = b.page(t, "/shop")
	if got := a.Header.Get("X-Ficus-Session-Attrs"); got != `{"cart_id":"cart-7"}` {
		t.Fatalf("attributes after the update: %q", got)
	}
	// Unknown key, oversize, not JSON: refused whole, stripped, counted.
	for _, u := range []string{`{"cart_id":"x","admin":"yes"}`, `{"cart_id":"` + strings.Repeat("x", 300) + `"}`, `not json`, `["cart_id"]`, `{"cart_id":1}`} {
		resp, _ := b.page(t, "/shop/update?u="+url.QueryEscape(u))
		if resp.StatusCode != 200 || resp.Header.Get("X-Ficus-Context-Update") != "" {
			t.Fatalf("update %s: %d, header %q", u, resp.StatusCode, resp.Header.Get("X-Ficus-Context-Update"))
		}
	}
	_, a = b.page(t, "/shop")
	if got := a.Header.Get("X-Ficus-Session-Attrs"); got != `{"cart_id":"cart-7"}` {
		t.Fatalf("attributes after refused updates: %q", got)
	}
	if n := counter(t, w, "ficus_session_context_updates_total", "refused"); n != 5 {
		t.Fatalf("refused updates counted: %v", n)
	}
	// null clears a key.
	b.page(t, `/shop/update?u={"cart_id":null,"locale":"de-CH"}`)
	if _, a = b.page(t, "/shop"); a.Header.Get("X-Ficus-Session-Attrs") != `{"locale":"de-CH"}` {
		t.Fatalf("attributes after clearing: %q", a.Header.Get("X-Ficus-Session-Attrs"))
	}

	// Logout: the session ends, the JPT is refused at once, the visitor
	// stays.
	resp, _ = b.do(t, "POST", "/auth/logout", nil, "Origin", w.front.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.cookie("ficus_session") != "" || b.cookie("ficus_visitor") != visitor {
		t.Fatalf("after logout: session cookie %q, visitor kept %v", b.cookie("ficus_session"), b.cookie("ficus_visitor") == visitor)
	}
	if code := bearer(t, w, jpt); code != 401 {
		t.Fatalf("the JPT after logout: %d, want 401", code)
	}
	if _, a = b.page(t, "/shop"); a.Header.Get("X-Ficus-Level") != "returning" || a.Header.Get("X-Ficus-User") != alice {
		t.Fatalf("after logout the visitor is %q %q, want returning alice", a.Header.Get("X-Ficus-Level"), a.Header.Get("X-Ficus-User"))
	}
}

// bearer calls the service route with a Bearer token, as a web app does.
func bearer(t *testing.T, w *world, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", w.front.URL+"/api/orders/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// counter reads one series of a counter of the stage.
func counter(t *testing.T, w *world, name, label string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Issue 10: a logged-on session ends 4 h after the login however active,
// and after 30 minutes without a visit; a password change ends every
// session of the user at once, its JPTs with it.
func TestSessionsEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.user(t, "bob", "")
	level := func(b *browser) string {
		_, a := b.page(t, "/shop")
		return a.Header.Get("X-Ficus-Level")
	}
	t.Run("4 hours after login", func(t *testing.T) {
		b := w.browser(t)
		if b.login(t, "bob", "password-bob").StatusCode != 200 {
			t.Fatal("login")
		}
		for i := 0; i < 14; i++ { // active every 16 minutes: never idle
			w.clk.Add(16 * time.Minute)
			if l := level(b); l != "logged_on" {
				t.Fatalf("after %v: %s", time.Duration(i+1)*16*time.Minute, l)
			}
		}
		w.clk.Add(16 * time.Minute) // 4h after login
		if l := level(b); l == "logged_on" {
			t.Fatal("still logged on 4 h after the login")
		}
	})
	t.Run("idle", func(t *testing.T) {
		b := w.browser(t)
		if b.login(t, "bob", "password-bob").StatusCode != 200 {
			t.Fatal("login")
		}
		w.clk.Add(29 * time.Minute)
		if l := level(b); l != "logged_on" {
			t.Fatalf("after 29 idle minutes: %s", l)
		}
		w.clk.Add(31 * time.Minute)
		if l := level(b); l == "logged_on" {
			t.Fatal("still logged on after 31 idle minutes")
		}
	})
	t.Run("password change", func(t *testing.T) {
		b := w.browser(t)
		if b.login(t, "bob", "password-bob").StatusCode != 200 {
			t.Fatal("login")
		}
		_, a := b.page(t, "/shop")
		jpt := a.Header.Get("X-Ficus-JPT")
		if code := bearer(t, w, jpt); code != 200 {
			t.Fatalf("JPT before: %d", code)
		}
		if err := w.p.SetPassword(t.Context(), a.Header.Get("X-Ficus-User"), "a-new-password"); err != nil {
			t.Fatal(err)
		}
		if code := bearer(t, w, jpt); code != 401 {
			t.Fatalf("JPT after the password change: %d", code)
		}
		if l := level(b); l == "logged_on" {
			t.Fatal("still logged on after the password change")
		}
	})
}
