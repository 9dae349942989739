package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// dashboardRules has a route in each state; orders is the canary the test
// flips.
func dashboardRules(legacy, orders string) string {
	return fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: %[1]q}
  orders: {url: %[2]q}
  search: {url: %[2]q}
  profile: {url: %[2]q}
  cart: {url: %[2]q}
routes:
  - {name: home, match: {path: /}, to: legacy}
  - name: search
    match: {prefix: /search}
    to: legacy
    shadow: {to: search, percent: 10, compare: true}
  - name: cart
    match: {prefix: /cart}
    split: [{to: cart, weight: 25}, {to: legacy, weight: 75}]
  - name: orders
    match: {prefix: /api/orders}
    split: [{to: orders, weight: 10}, {to: legacy, weight: 90}]
  - {name: profile, match: {prefix: /profile}, to: profile}
`, legacy, orders)
}

// Issue 12: the dashboard served by a real ficus (routes.source postgres,
// its IDP checking the admin tokens) in headless Chromium: anyone can read
// it, it shows the routes in their states; a flip through the page, with a
// pasted admin token and a reason, stores a revision by the token's client
// that every request then follows, and the page shows it; a rollback
// button undoes it. With FICUS_UPDATE_SCREENSHOT=1 the test writes the
// screenshot of docs/dashboard.png.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	s := newAdminSetup(t, "")
	if code, body := s.call(t, "POST", "/admin/routes/revisions?reason=the+migration+starts", "release-bot", dashboardRules(s.legacy, s.orders)); code != 201 {
		t.Fatalf("apply: %d %s", code, body)
	}
	serves := func(rev string) {
		t.Helper()
		waittest.For(t, "the instance to serve "+rev, func() bool {
			_, body := get(t, s.ops+"/readyz")
			return strings.Contains(body, "rules: "+rev+"\n")
		})
	}
	serves("revision 1")
	for i := range 20 {
		for _, p := range []string{"/", "/cart/1", "/api/orders/1", "/profile/me", fmt.Sprintf("/other/%d", i)} {
			if code, _ := get(t, s.front+p); code != 200 {
				t.Fatalf("%s: %d", p, code)
			}
		}
	}
	// Read-only without a token: the page is there, the admin API is not.
	if code, _ := get(t, s.ops+"/dashboard/"); code != 200 {
		t.Fatalf("the dashboard without a token: %d", code)
	}
	if code, _ := s.call(t, "GET", "/admin/routes/status", "", ""); code != 401 {
		t.Fatalf("the admin API without a token: %d", code)
	}

	ctx := startBrowser(t, 2*time.Minute)
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			out, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
			t.Fatalf("%s (the page says %q): %v", name, out, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("the text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(v), " ")
	}
	// waitFor polls a JavaScript condition on the page.
	waitFor := func(name, cond string) {
		t.Helper()
		step(name, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond)))
	}

	step("the dashboard", chromedp.EmulateViewport(1360, 900), chromedp.Navigate(s.ops+"/dashboard/"), chromedp.WaitVisible(chromedp.ID("route-orders")))
	for route, want := range map[string]string{"home": "legacy", "search": "shadow 10 % to search", "cart": "canary 25 %", "orders": "canary 10 %", "profile": "migrated"} {
		if got := text("#route-" + route + " .state"); got != want {
			t.Errorf("route %s is shown %q, want %q", route, got, want)
		}
	}
	if got := text("#share"); got == "0 %" {
		t.Errorf("share of new services: %q", got)
	}
	if got := text("#live-revision"); got != "revision 1" {
		t.Fatalf("live: %q", got)
	}
	if enabled, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById('flip-button-orders').disabled`)); enabled {
		t.Fatal("the flip button is enabled without a token")
	}

	// The flip: orders from canary to migrated.
	step("flip orders to migrated",
		chromedp.SendKeys(chromedp.ID("token"), s.tokens["release-bot"]),
		chromedp.SendKeys(chromedp.ID("reason"), "orders is healthy at 10 %"),
		chromedp.SetValue(chromedp.ID("state-orders"), "migrated"),
		chromedp.WaitEnabled(chromedp.ID("flip-button-orders")),
		chromedp.Click(chromedp.ID("flip-button-orders")),
	)
	waitFor("the page to show revision 2", `document.getElementById('live-revision').textContent === 'revision 2' &&
		document.querySelector('#route-orders .state').dataset.state === 'migrated'`)
	if got := text("#result"); !strings.Contains(got, "201: stored revision 2 (parent 1, by release-bot)") {
		t.Errorf("the page says %q", got)
	}
	if got := text("#revision-2"); !strings.Contains(got, "release-bot") || !strings.Contains(got, "orders is healthy at 10 %") ||
		!strings.Contains(got, "state orders migrated") {
		t.Errorf("revision 2 in the history: %q", got)
	}
	// It takes effect: the instance follows and every request goes to orders.
	serves("revision 2")
	for range 20 {
		if code, body := get(t, s.front+"/api/orders/1"); code != 200 || body != "orders" {
			t.Fatalf("after the flip: %d %q", code, body)
		}
	}
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("route-orders")))
	if got := text("#route-orders .state"); got != "migrated" {
		t.Errorf("after a reload orders is %q", got)
	}
	if got, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("token"))); got != "" {
		t.Error("the token survived a reload: it must live in the page only")
	}
	if os.Getenv("FICUS_UPDATE_SCREENSHOT") == "1" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../docs/dashboard.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The rollback button: back to revision 1 (a new revision 3).
	step("roll back to 1",
		chromedp.SendKeys(chromedp.ID("token"), s.tokens["release-bot"]),
		chromedp.SendKeys(chromedp.ID("reason"), "orders answers 500"),
		chromedp.WaitEnabled(chromedp.ID("rollback-1")),
		chromedp.Click(chromedp.ID("rollback-1")),
	)
	waitFor("the page to show revision 3", `document.getElementById('live-revision').textContent === 'revision 3' &&
		document.querySelector('#route-orders .state').dataset.state === 'canary'`)
	if got := text("#route-orders .state"); got != "canary 10 %" {
		t.Errorf("after the rollback orders is %q", got)
	}
	if got := text("#revision-3"); !strings.Contains(got, "rollback to 1") || !strings.Contains(got, "orders answers 500") {
		t.Errorf("revision 3: %q", got)
	}
	serves("revision 3")
}
