package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
)

// chromiumPath is Debian's chromium, which `make test` installs when it
// runs as root.
const chromiumPath = "/usr/bin/chromium"

// startBrowser launches headless chromium with a fresh profile and returns
// a context for chromedp actions, ending after timeout. A missing chromium
// fails the test: it never skips.
func startBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s (%v): install it with `apt-get install chromium` as root, or run `make test` as root, which installs it", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// Issue 10: a real browser logs in on the demo's legacy page, opens the
// "my orders" page, which moved to the orders service through the session
// bridge, sees its name there, logs out and sees it gone. Then, in the new
// web app behind a ficus session, it is greeted as a new visitor, logs in
// with ficus and is greeted by name (the web app's service call with its
// JPT says logged_on), logs out and is greeted as a returning visitor.
func TestBrowserDemo(t *testing.T) {
	t.Parallel()
	front, c := startDemoWithCredentials(t)
	ctx := startBrowser(t, time.Minute)

	// step runs the actions of one step of the walk, and fails the test
	// saying where the browser was.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", name, loc, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("the text of #%s: %v", id, err)
		}
		return s
	}

	// My orders, not logged on: the monolith sends the browser to log in.
	step("the login form", chromedp.Navigate(front+demo.LegacyOrdersPath), chromedp.WaitVisible(chromedp.ID("password")))
	step("log in",
		chromedp.SendKeys(chromedp.ID("username"), c.Username),
		chromedp.SendKeys(chromedp.ID("password"), c.Password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("orders")),
	)
	if name := text("name"); name != demo.DemoUser.Name {
		t.Fatalf("my orders shows %q, want %q", name, demo.DemoUser.Name)
	}
	if by := text("served-by"); !strings.Contains(by, "served by the orders service") {
		t.Fatalf("my orders is %q, not the moved page", by)
	}
	step("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("message")))
	if msg := text("message"); !strings.Contains(msg, "logged out") {
		t.Fatalf("after logout: %q", msg)
	}
	step("my orders after logout", chromedp.Navigate(front+demo.LegacyOrdersPath), chromedp.WaitVisible(chromedp.ID("password")))
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, demo.DemoUser.Name) {
		t.Fatalf("the name is still shown after logout:\n%s", page)
	}

	// The new web app, behind a ficus session.
	step("the web app", chromedp.Navigate(front+demo.WebAppPath), chromedp.WaitVisible(chromedp.ID("greeting")))
	if g, level := text("greeting"), text("level"); !strings.Contains(g, "new visitor") || level != "anonymous" {
		t.Fatalf("first visit: %q, level %q", g, level)
	}
	step("log in with ficus",
		chromedp.SendKeys(chromedp.ID("username"), c.Username),
		chromedp.SendKeys(chromedp.ID("password"), c.Password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
	if g := text("greeting"); !strings.Contains(g, "Hello, "+demo.DemoUser.Name) {
		t.Fatalf("logged on: %q", g)
	}
	if a := text("service-answer"); !strings.Contains(a, "answered 200") || !strings.Contains(a, "level logged_on") {
		t.Fatalf("the service call with the JPT: %q", a)
	}
	step("log out of ficus", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login")))
	if g, level := text("greeting"), text("level"); !strings.Contains(g, "Welcome back") || level != "returning" {
		t.Fatalf("after logout: %q, level %q", g, level)
	}
}
