package frontdoor_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/frontdoor"
)

// named answers with its name and the path it was given.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(name + " " + r.URL.EscapedPath()))
	})
}

func newDoor(t *testing.T, idp bool) http.Handler {
	t.Helper()
	o := frontdoor.Options{Gateway: named("gateway"), Hooks: map[string]http.Handler{"/webhooks/stripe": named("stripe")}}
	if idp {
		o.IDP = named("idp")
	}
	d, err := frontdoor.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func serve(h http.Handler, target string) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", target, nil))
	return rec.Body.String()
}

func TestDoorDecidesByThePath(t *testing.T) {
	t.Parallel()
	withIDP, withoutIDP := newDoor(t, true), newDoor(t, false)
	for _, tc := range []struct {
		given       string
		want        string // handler name
		wantWithout string // without the IDP
	}{
		{"/oauth2/token", "idp", "gateway"},
		{"/oauth2/introspect", "idp", "gateway"},
		{"/.well-known/jwks.json", "idp", "gateway"},
		{"/.well-known/oauth-authorization-server", "idp", "gateway"},
		{"/.well-known/other", "gateway", "gateway"},
		{"/oauth2", "gateway", "gateway"},
		{"/webhooks/stripe", "stripe", "stripe"},
		{"/webhooks/stripe/", "gateway", "gateway"},
		{"/webhooks//stripe", "stripe", "stripe"},
		{"/x/../webhooks/stripe", "stripe", "stripe"},
		{"/api/orders", "gateway", "gateway"},
		{"/api/%2e%2e/oauth2/token", "idp", "gateway"},
		{"/oauth2%2ftoken", "gateway", "gateway"}, // refused by the normaliser: the gateway answers 400
	} {
		for _, c := range []struct {
			door http.Handler
			want string
		}{{withIDP, tc.want}, {withoutIDP, tc.wantWithout}} {
			if got, _, _ := strings.Cut(serve(c.door, tc.given), " "); got != c.want {
				t.Errorf("%s: served by %s, want %s", tc.given, got, c.want)
			}
		}
	}
}

func TestNewRefusesBadHookPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		given map[string]http.Handler
		want  string
	}{
		{"no gateway", nil, "a gateway is required"},
		{"unnormalisable", map[string]http.Handler{"/a%2fb": named("a")}, `web-hook path "/a%2fb"`},
		{"relative", map[string]http.Handler{"a": named("a")}, `web-hook path "a"`},
		{"twice", map[string]http.Handler{"/a/b": named("a"), "/a//b": named("b")}, "two web-hook adapters on the path /a/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := frontdoor.Options{Gateway: named("gateway"), Hooks: tc.given}
			if tc.name == "no gateway" {
				o.Gateway = nil
			}
			if _, err := frontdoor.New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
