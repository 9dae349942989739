package auth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
)

// A limit by client counts each OAuth2 client's tokens in a bucket of its
// own: one client spending its burst leaves another untouched. An
// anonymous caller of a policy optional route (who gets the route's
// application token) is counted by address, not as that application.
func TestRateLimitByClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	monolith := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "legacy") }))
	t.Cleanup(monolith.Close)
	gw, err := strangler.New(strangler.Options{Auth: w.stage})
	if err != nil {
		t.Fatal(err)
	}
	f, err := routes.Parse("r.yaml", []byte(strings.ReplaceAll(`
version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
rate_limits:
  per-client: {rate: 1/m, burst: 2, by: client}
routes:
  - {name: read, match: {prefix: /orders}, to: legacy, auth: {policy: oauth2}, rate_limit: per-client}
  - {name: catalog, match: {prefix: /catalog}, to: legacy, auth: {policy: optional, client: web-anon}, rate_limit: per-client}
`, "MONO", monolith.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	get := func(path, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	reader, writer := w.token(t, "reader"), w.token(t, "writer")
	reader2 := w.token(t, "reader") // a second token of the same client
	for i, want := range []int{200, 200, 429} {
		if got := get("/orders/1", []string{reader, reader2, reader}[i]); got != want {
			t.Fatalf("reader's request %d: %d, want %d", i+1, got, want)
		}
	}
	for i := range 2 {
		if got := get("/orders/1", writer); got != 200 {
			t.Fatalf("writer's request %d: %d; another client's limit must not throttle it", i+1, got)
		}
	}
	// The limit is taken after the auth stage: a bad token is 401, not
	// counted, whatever the bucket.
	if got := get("/orders/1", "not-a-token"); got != 401 {
		t.Fatalf("a bad token: %d, want 401", got)
	}
	// Anonymous callers share their address's bucket; a client with a
	// token of its own keeps its own (writer spent its burst above, so
	// use a fresh client through the same named limit's buckets).
	anon := []int{get("/catalog", ""), get("/catalog", ""), get("/catalog", "")}
	if anon[0] != 200 || anon[1] != 200 || anon[2] != 429 {
		t.Fatalf("anonymous callers from one address: %v, want 200 200 429", anon)
	}
	if got := get("/catalog", w.token(t, "web-anon")); got != 200 {
		t.Fatalf("the application client's own token was throttled by the anonymous callers' bucket: %d", got)
	}
}
