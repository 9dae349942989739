package strangler

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/strangler/rawtest"
)

// uriRecorder is a real upstream that records the request-target of every
// request it receives, byte for byte.
type uriRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	uris []string
}

func newURIRecorder(t testing.TB) *uriRecorder {
	t.Helper()
	u := &uriRecorder{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.uris = append(u.uris, r.RequestURI)
		u.mu.Unlock()
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns the request-targets received since the last call.
func (u *uriRecorder) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	got := u.uris
	u.uris = nil
	return got
}

// pathSpellings are request-targets that reach a protected route by way of
// dot segments, ;parameters or percent-escapes (issue 8, item 5). Those
// without forwarded are refused (by the route's auth policy, or as a bad
// path) and must not reach the upstream; the others must reach it with
// exactly the forwarded request-target.
var pathSpellings = []struct {
	target    string
	forwarded string // "" when the request must be refused
	status    int
}{
	{"/x/..;/admin/x", "", 401},
	{"/.;/admin/x", "", 401},
	{"/x/..;jsessionid=x/admin/x", "", 401},
	{"/x/%2e%2e;/admin/x", "", 401},
	{"/x/%2E%2E%3B/admin/x", "", 401},
	{"/x/..%3bjsessionid=x/admin/x", "", 401},
	{"/x/.%2e;a=b/admin/x", "", 401},
	{"/;x/admin/x", "", 401},
	{"/%3bx/admin/x", "", 401},
	{"/admin;x=1/y", "", 401},
	{"/Admin/x", "", 401},
	{"/public/..;/admin", "", 401},
	{"/console/;jsessionid=1", "", 401},
	{"/console/.;x", "", 401},
	{"/x/..;/console", "", 401},
	{"/x/..;/public/y", "/public/y", 200},
	{"/public/.;/y", "/public/y", 200},
	{"/admin/..;/public", "/public", 200},
	{"/admin/x/..;/..;/public/y", "/public/y", 200},
	{"/public;jsessionid=1/y", "/public;jsessionid=1/y", 200},
	{"/public/y/..;", "/public/", 200},
	{"/x/..;", "/", 200},
	{"/x/%2F..;/admin", "", 400},
	{"http://shop.example.com/x/..;/admin/x", "", 401},
	{"http://shop.example.com/x/..;/public/y", "/public/y", 200},
}

// Issue 8, item 5: a spelling that an upstream resolves to a protected path
// is matched as that path, and the upstream receives the normalised path,
// never the spelling.
func TestGatewayPathSpellingsCannotBypassARoute(t *testing.T) {
	t.Parallel()
	up := newURIRecorder(t)
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "`+up.URL+`"}
routes:
  - {name: admin, match: {prefix: /admin}, to: legacy, auth: {policy: oauth2}}
  - {name: console, match: {path: /console}, to: legacy, auth: {policy: oauth2}}
`)
	addr := fx.srv.Listener.Addr().String()
	for _, tt := range pathSpellings {
		t.Run(tt.target, func(t *testing.T) {
			resp, _ := rawtest.Get(t, addr, "shop.example.com", tt.target) // no client library cleans or re-escapes it
			got := up.take()
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: %d, want %d (upstream received %q)", tt.target, resp.StatusCode, tt.status, got)
			}
			switch {
			case tt.forwarded == "" && len(got) > 0:
				t.Fatalf("GET %s was refused but the upstream received %q", tt.target, got)
			case tt.forwarded != "" && (len(got) != 1 || got[0] != tt.forwarded):
				t.Fatalf("GET %s: the upstream received %q, want exactly %q", tt.target, got, tt.forwarded)
			}
		})
	}
}

// Issue 8, item 5: a route's strip_prefix applies to every spelling the
// route matches, so the new service receives the path it expects.
func TestStripPrefixAppliesToEverySpellingTheRouteMatches(t *testing.T) {
	t.Parallel()
	up := newURIRecorder(t)
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "`+up.URL+`/base"}
routes:
  - {name: orders, match: {prefix: /api/orders}, to: orders, rewrite: {strip_prefix: /api, add_prefix: /v2}}
`)
	addr := fx.srv.Listener.Addr().String()
	for _, tt := range []struct{ target, forwarded string }{
		{"/api/orders/7", "/base/v2/orders/7"},
		{"/API/Orders/7", "/base/v2/Orders/7"},
		{"/api;jsessionid=1/orders/7", "/base/v2/orders/7"},
		{"/x/..;/api/orders;v=1/7", "/base/v2/orders;v=1/7"},
		{"/api/.;/orders", "/base/v2/orders"},
	} {
		resp, _ := rawtest.Get(t, addr, "shop.example.com", tt.target) // no client library cleans or re-escapes it
		if got := up.take(); resp.StatusCode != 200 || len(got) != 1 || got[0] != tt.forwarded {
			t.Errorf("GET %s: %d, the service received %q; want %q", tt.target, resp.StatusCode, got, tt.forwarded)
		}
	}
}
