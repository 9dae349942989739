package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// startDemo runs the demo with its route file in dir until stop is called.
func startDemo(t *testing.T, dir string) (front string, out *lockedBuffer, stop func()) {
	t.Helper()
	return startDemoWith(t, demoOptions{dir: dir})
}

// startDemoWith runs the demo with o (on free loopback ports, hints for
// bin/ficus) until stop is called.
func startDemoWith(t *testing.T, o demoOptions) (front string, out *lockedBuffer, stop func()) {
	t.Helper()
	o.addr, o.opsAddr, o.prog = "127.0.0.1:0", "127.0.0.1:0", "bin/ficus"
	ctx, cancel := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	done := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		done <- runDemo(ctx, o, serverIO{stdout: out, stderr: out, started: func(a, _ string) { started <- a }})
	}()
	select {
	case a := <-started:
		front = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("demo did not start: %v\n%s", err, out.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("demo did not start")
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return front, out, stop
}

// Issue 8 item 18: the demo says when an edit of its route file is taken,
// its hints name the binary as it was run, and `demo --dir` keeps an
// edited route file (serving the upstreams it names) instead of
// overwriting it.
func TestDemoReloadsAndKeepsTheRouteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	front, out, stop := startDemo(t, dir)
	if !strings.Contains(out.String(), "  bin/ficus routes validate ") || strings.Contains(out.String(), "\n  ficus ") {
		t.Fatalf("hints do not name bin/ficus:\n%s", out.String())
	}
	rf := filepath.Join(dir, "routes.yaml")
	b, err := os.ReadFile(rf)
	if err != nil {
		t.Fatal(err)
	}
	// Send /get to the new service instead of the monolith.
	// The watcher may start after the demo says it serves: write until an
	// edit is seen, each time a different file.
	var edited string
	for i := 0; ; i++ {
		edited = strings.Replace(string(b), "routes:\n", "routes:\n  - {name: get-moved, match: {path: /get}, to: orders}\n", 1) + fmt.Sprintf("# edit %d\n", i)
		if err := os.WriteFile(rf, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		if waittest.Until(2*time.Second, func() bool { return strings.Contains(out.String(), "route file reloaded") }) {
			break
		}
		if i == 10 {
			t.Fatalf("no reload reported:\n%s", out.String())
		}
	}
	if _, body := get(t, front+"/get"); !strings.Contains(body, "the new service") {
		t.Fatalf("the edit is not live: %s", body)
	}
	stop()

	front, out, _ = startDemo(t, dir)
	if b, _ := os.ReadFile(rf); string(b) != edited {
		t.Fatalf("the edited route file was overwritten:\n%s", b)
	}
	if !strings.Contains(out.String(), "keeping the existing route file") {
		t.Fatalf("the demo does not say it keeps the file:\n%s", out.String())
	}
	if code, body := get(t, front+"/get"); code != 200 || !strings.Contains(body, "the new service") {
		t.Fatalf("the kept file's upstreams are not served: %d %s", code, body)
	}
	if code, body := get(t, front+"/headers"); code != 200 || !strings.Contains(body, `"headers"`) {
		t.Fatalf("the monolith of the kept file: %d %s", code, body)
	}
}

// startDemoWithCredentials runs the demo in a fresh directory and returns
// its front door and seeded credentials.
func startDemoWithCredentials(t *testing.T) (front string, c demo.Credentials) {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "creds.json")
	front, _, _ = startDemoWith(t, demoOptions{dir: t.TempDir(), credsFile: creds})
	b, err := os.ReadFile(creds)
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("the demo credentials: %v %s", err, b)
	}
	return front, c
}

// Issue 10: in the demo, a legacy login on the monolith reaches the moved
// "my orders" page, served by the orders service for that user (the JWT
// it verified), with the browser's cookie unchanged; after the legacy
// logout the moved page sends the browser to log in again.
func TestDemoLegacyPageMovedThroughTheBridge(t *testing.T) {
	t.Parallel()
	front, c := startDemoWithCredentials(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, front+path, body)
		req.Header.Set("Accept", "text/html")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	if resp, _ := page(http.MethodGet, demo.LegacyOrdersPath, nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != demo.LegacyLoginPath {
		t.Fatalf("my orders before login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ := page(http.MethodPost, demo.LegacyLoginPath, url.Values{"username": {c.Username}, "password": {c.Password}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("legacy login: %d", resp.StatusCode)
	}
	u, _ := url.Parse(front)
	before := jar.Cookies(u)
	resp, body := page(http.MethodGet, demo.LegacyOrdersPath, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, demo.DemoUser.Name) || !strings.Contains(body, "served by the orders service") {
		t.Fatalf("the moved page: %d\n%s", resp.StatusCode, body)
	}
	if len(resp.Cookies()) != 0 || !reflect.DeepEqual(jar.Cookies(u), before) {
		t.Fatalf("the moved page touched the browser's cookies: %v", resp.Cookies())
	}
	// The monolith still serves its own pages with its own cookie.
	if resp, body := page(http.MethodGet, demo.LegacyWhoamiPath, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"logged_on":true`) {
		t.Fatalf("the monolith's who am I: %d %s", resp.StatusCode, body)
	}

	if resp, _ := page(http.MethodPost, demo.LegacyLogoutPath, url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("legacy logout: %d", resp.StatusCode)
	}
	// The browser dropped its cookie: the moved page sends it to log in.
	if resp, body := page(http.MethodGet, demo.LegacyOrdersPath, nil); resp.StatusCode != http.StatusFound || strings.Contains(body, demo.DemoUser.Name) {
		t.Fatalf("my orders after logout: %d %s", resp.StatusCode, body)
	}
	// A copy of the logged-out cookie stops working on the moved page
	// once the bridge's cached answer expires (cache_ttl, 5s in the demo).
	jar.SetCookies(u, before)
	waittest.For(t, "the moved page to refuse the logged-out cookie", func() bool {
		resp, body := page(http.MethodGet, demo.LegacyOrdersPath, nil)
		if resp.StatusCode == http.StatusOK && !strings.Contains(body, demo.DemoUser.Name) {
			t.Fatalf("the moved page served someone else: %s", body)
		}
		return resp.StatusCode == http.StatusFound
	})
}

// Issue 10: the demo's new web app behind a ficus session greets a first
// visit as anonymous, counts page views through context updates, logs in
// with ficus (form, new session id), calls the orders service with its
// JPT (the service sees a JWT for the user), and after logout greets a
// returning visitor.
func TestDemoWebAppSessionLevels(t *testing.T) {
	t.Parallel()
	front, c := startDemoWithCredentials(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	u, _ := url.Parse(front)
	sessionCookie := func() string {
		for _, ck := range jar.Cookies(u) {
			if ck.Name == "ficus_session" {
				return ck.Value
			}
		}
		return ""
	}
	get := func() string {
		t.Helper()
		resp, err := browser.Get(front + demo.WebAppPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Ficus-Context-Update") != "" {
			t.Fatalf("the web app: %d %v\n%s", resp.StatusCode, resp.Header, b)
		}
		return string(b)
	}
	post := func(path string, form url.Values) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, front+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.Path != demo.WebAppPath {
			t.Fatalf("%s ended at %s, not back at the web app", path, resp.Request.URL)
		}
	}

	body := get()
	for _, want := range []string{"Welcome, new visitor", `id="level">anonymous<`, `id="visits">1<`, "level anonymous"} {
		if !strings.Contains(body, want) {
			t.Fatalf("first visit lacks %q:\n%s", want, body)
		}
	}
	if body := get(); !strings.Contains(body, `id="visits">2<`) {
		t.Fatalf("the context update was not applied:\n%s", body)
	}
	anonymous := sessionCookie()
	post("/auth/login", url.Values{"username": {c.Username}, "password": {c.Password}, "return_to": {demo.WebAppPath}})
	if s := sessionCookie(); s == "" || s == anonymous {
		t.Fatal("the login did not rotate the session id")
	}
	body = get()
	for _, want := range []string{"Hello, " + demo.DemoUser.Name, `id="level">logged_on<`, "orders (the new service) answered 200", "level logged_on"} {
		if !strings.Contains(body, want) {
			t.Fatalf("logged on, the page lacks %q:\n%s", want, body)
		}
	}
	post("/auth/logout", url.Values{"return_to": {demo.WebAppPath}})
	body = get()
	if !strings.Contains(body, "Welcome back") || !strings.Contains(body, `id="level">returning<`) || strings.Contains(body, demo.DemoUser.Name) {
		t.Fatalf("after logout:\n%s", body)
	}
}
