package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/routes"
	"go.yaml.in/yaml/v3"
)

// Issue 10: every YAML example of docs/web-sessions.md is valid: process
// configuration (sessions:) or route rules (routes:).
func TestWebSessionsDocExamples(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/web-sessions.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 2 {
		t.Fatalf("%d YAML examples", len(blocks))
	}
	for i, m := range blocks {
		var keys map[string]any
		if err := yaml.Unmarshal([]byte(m[1]), &keys); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		switch {
		case keys["routes"] != nil:
			src := "version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  web: {url: \"http://127.0.0.1:2\"}\n" + m[1]
			if _, err := routes.Parse(fmt.Sprintf("web-sessions.md example %d", i+1), []byte(src)); err != nil {
				t.Errorf("example %d: %v", i+1, err)
			}
		default:
			p := filepath.Join(t.TempDir(), "ficus.yaml")
			os.WriteFile(p, []byte(m[1]), 0o600)
			if _, _, err := config.Load(p, config.ForCheck); err != nil {
				t.Errorf("example %d: %v", i+1, err)
			}
		}
	}
}

// Issue 10, through ficus serve: the session layer is wired — cookies,
// the context to the web app under a configured header name (whose
// browser copy is removed), login and logout on the front door, the JPT
// swapped for a JWT on an oauth2 route and refused after the logout, and
// a route with policy session refused when sessions are off.
func TestServeWithSessions(t *testing.T) {
	t.Parallel()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(web.Close)
	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "%[1]s"}
  web: {url: "%[1]s"}
routes:
  - {name: shop, match: {prefix: /shop}, to: web, auth: {policy: session}}
  - {name: api, match: {prefix: /api}, to: web, auth: {policy: oauth2}}
`, web.URL)), 0o600)
	cfgText := fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: %s}\nidp: {issuer: \"http://ficus.test\"}\n"+
		"sessions: {enabled: true, headers: {user: X-Shop-User}, starts_per_minute: 2}\n", rf)
	p := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(p, []byte(cfgText), 0o600)
	cfg, sec, err := config.Load(p, config.ForServe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started, providers, done := make(chan string, 1), make(chan *idp.Provider, 1), make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, sec, serverIO{stdout: io.Discard, stderr: io.Discard,
			provider: func(p *idp.Provider) { providers <- p }, started: func(a, _ string) { started <- "http://" + a }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var front string
	select {
	case front = <-started:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	uid, err := (<-providers).CreateUser(ctx, idp.NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr ...string) http.Header {
		t.Helper()
		req, _ := http.NewRequest("GET", front+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h http.Header
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&h) != nil {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return h
	}
	if h := get("/shop", "X-Shop-User", "admin"); h.Get("X-Shop-User") != "" || h.Get("X-Ficus-Level") != "anonymous" || strings.Contains(h.Get("Cookie"), "ficus_") {
		t.Fatalf("first visit: the web app saw %v", h)
	}
	req, _ := http.NewRequest("POST", front+"/auth/./login", strings.NewReader(`{"username":"alice","password":"password-alice"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", front)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", err, resp)
	}
	resp.Body.Close()
	h := get("/shop")
	if h.Get("X-Shop-User") != uid || h.Get("X-Ficus-Level") != "logged_on" {
		t.Fatalf("after login: %v", h)
	}
	jpt := h.Get("X-Ficus-Jpt")
	api := get("/api/x", "Authorization", "Bearer "+jpt)
	if a := api.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") || a == "Bearer "+jpt {
		t.Fatalf("the service got %q, want a JWT in place of the JPT", a)
	}
	req, _ = http.NewRequest("POST", front+"/auth/logout", nil)
	req.Header.Set("Origin", front)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %v %v", err, resp)
	}
	req, _ = http.NewRequest("GET", front+"/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+jpt)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the JPT after logout: %v %v", err, resp)
	}

	// sessions.starts_per_minute: this address started one session so
	// far; the second is its last this minute.
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		resp, err := http.Get(front + "/shop")
		if err != nil || resp.StatusCode != want {
			t.Fatalf("a session start without cookies: %v %v, want %d", err, resp, want)
		}
		resp.Body.Close()
	}

	// Sessions off: the route file is refused at start.
	os.WriteFile(p, []byte(strings.Replace(cfgText, "enabled: true", "enabled: false", 1)), 0o600)
	cfg, sec, err = config.Load(p, config.ForServe)
	if err != nil {
		t.Fatal(err)
	}
	err = runServer(context.Background(), cfg, sec, serverIO{stdout: io.Discard, stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "route shop: policy session needs the session layer") {
		t.Fatalf("sessions off: %v", err)
	}
}
