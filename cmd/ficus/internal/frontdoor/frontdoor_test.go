package frontdoor_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/frontdoor"
	"github.com/ficus-gw/ficus/idp/idptest"
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

// Issue 9: the IDP and the web-hook adapters get the path that the door
// decided on, the normalised one; /oauth2/./token was a 404 from the IDP's
// router. The gateway gets the request as it came (it normalises, and
// refuses, by itself).
func TestDoorPassesTheNormalisedPathOn(t *testing.T) {
	t.Parallel()
	d := newDoor(t, true)
	for given, want := range map[string]string{
		"/oauth2/./token":                   "idp /oauth2/token",
		"/x/..;/oauth2/token":               "idp /oauth2/token",
		"/.well-known//jwks.json":           "idp /.well-known/jwks.json",
		"/webhooks/./stripe":                "stripe /webhooks/stripe",
		"/webhooks/%73tripe":                "stripe /webhooks/stripe",
		"/api/./orders":                     "gateway /api/./orders",
		"/oauth2/token":                     "idp /oauth2/token",
		"/api/%2e%2e/.well-known/jwks.json": "idp /.well-known/jwks.json",
	} {
		if got := serve(d, given); got != want {
			t.Errorf("%s: %q, want %q", given, got, want)
		}
	}
}

func TestDoorReachesTheRealIDPOnANormalisedPath(t *testing.T) {
	t.Parallel()
	s := idptest.Start(t)
	d, err := frontdoor.New(frontdoor.Options{Gateway: named("gateway"), IDP: s.P.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/./jwks.json", "/oauth2/../.well-known/jwks.json"} {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"keys"`) {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("POST", "/oauth2/./token", strings.NewReader("grant_type=client_credentials&client_id=nobody&client_secret=x")))
	if rec.Code == http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("POST /oauth2/./token: %d %s, want the token endpoint's OAuth2 error", rec.Code, rec.Body.String())
	}
}

// Issue 10: the session layer's login and logout are claimed by their
// normalised paths, whatever the spelling; other paths stay the gateway's.
func TestDoorSendsSessionEndpoints(t *testing.T) {
	t.Parallel()
	d, err := frontdoor.New(frontdoor.Options{Gateway: named("gateway"), Sessions: named("sessions"), SessionPaths: []string{"/auth/login", "/auth/logout"}})
	if err != nil {
		t.Fatal(err)
	}
	for given, want := range map[string]string{
		"/auth/login":         "sessions /auth/login",
		"/auth/./login":       "sessions /auth/login",
		"/x/../auth//logout":  "sessions /auth/logout",
		"/auth/%6cogin":       "sessions /auth/login",
		"/auth/login/":        "gateway /auth/login/",
		"/auth/loginx":        "gateway /auth/loginx",
		"/auth":               "gateway /auth",
		"/auth/login%2f..%2f": "gateway /auth/login%2f..%2f",
	} {
		if got := serve(d, given); got != want {
			t.Errorf("%s: %q, want %q", given, got, want)
		}
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{"/webhooks/stripe"}, "both a session endpoint and a web-hook path"},
		{[]string{"/oauth2/token"}, "is a path of the IDP"},
		{[]string{"/a%2fb"}, `session endpoint "/a%2fb"`},
	} {
		_, err := frontdoor.New(frontdoor.Options{Gateway: named("gateway"), Hooks: map[string]http.Handler{"/webhooks/stripe": named("stripe")},
			Sessions: named("sessions"), SessionPaths: tc.paths})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.paths, err, tc.want)
		}
	}
}
