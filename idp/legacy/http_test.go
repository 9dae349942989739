package legacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/idp/legacy/legacytest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

func newHTTP(t *testing.T, c legacy.HTTPConfig) *legacy.HTTP {
	t.Helper()
	h, err := legacy.NewHTTP(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHTTPJSONAnswerMapsUser(t *testing.T) {
	t.Parallel()
	m := legacytest.NewMonolith(t)
	m.Add(legacytest.User{ID: 9007199254740993, Username: "bob", CustomerNumber: "C-77", Email: "bob@example.com"}, "pw-of-bob")
	h := newHTTP(t, legacy.HTTPConfig{URL: m.URL, UserID: "/user/id", CustomerNumber: "/user/customer/number",
		Claims: map[string]string{"email": "/email", "nickname": "/absent"}})
	u, err := h.CheckLegacy(context.Background(), "bob", "pw-of-bob")
	if err != nil {
		t.Fatal(err)
	}
	// A 64-bit id is kept exactly (not through a float).
	if u.ID != "9007199254740993" || u.CustomerNumber != "C-77" || u.Claims["email"] != "bob@example.com" || len(u.Claims) != 1 {
		t.Fatalf("user = %+v", u)
	}
	for _, pw := range []string{"wrong", ""} {
		if _, err := h.CheckLegacy(context.Background(), "bob", pw); !errors.Is(err, idp.ErrLegacyDenied) {
			t.Errorf("password %q: %v, want ErrLegacyDenied", pw, err)
		}
	}
	if _, err := h.CheckLegacy(context.Background(), "nobody", "x"); !errors.Is(err, idp.ErrLegacyDenied) {
		t.Errorf("unknown user: %v, want ErrLegacyDenied", err)
	}
}

// recorder is a monolith endpoint that answers with handle and keeps
// what it was sent.
func recorder(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (url string, got chan *http.Request, bodies chan string) {
	got, bodies = make(chan *http.Request, 10), make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got, bodies
}

func TestHTTPJSONBodyAndFieldNames(t *testing.T) {
	t.Parallel()
	url, got, bodies := recorder(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := newHTTP(t, legacy.HTTPConfig{URL: url + "/session", Body: "json", UsernameField: "login", PasswordField: "pass"})
	if _, err := h.CheckLegacy(context.Background(), "ann", `p"w`); err != nil {
		t.Fatal(err)
	}
	r := <-got
	var sent map[string]string
	if err := json.Unmarshal([]byte(<-bodies), &sent); err != nil || sent["login"] != "ann" || sent["pass"] != `p"w` || len(sent) != 2 {
		t.Fatalf("sent %v (%v)", sent, err)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost || r.URL.Path != "/session" {
		t.Fatalf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
}

func TestHTTPStatuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		success  string
		status   int
		location string
		body     string
		denied   bool // else: an error that is not a denial
		ok       bool
	}{
		{"status: 200", "status", 200, "", "{}", false, true},
		{"status: 401", "status", 401, "", "", true, false},
		{"status: 403", "status", 403, "", "", true, false},
		{"status: 422", "status", 422, "", "", true, false},
		{"status: 500 is an outage, not a wrong password", "status", 500, "", "", false, false},
		{"status: 502", "status", 502, "", "", false, false},
		{"status: 429", "status", 429, "", "", false, false},
		{"status: a redirect is not followed", "status", 302, "/elsewhere", "", false, false},
		{"redirect: to the success prefix", "redirect", 302, "/account/home", "", false, true},
		{"redirect: absolute to the success prefix", "redirect", 303, "{base}/account", "", false, true},
		{"redirect: back to the login page", "redirect", 302, "/login?error=1", "", true, false},
		{"redirect: same path on another host", "redirect", 302, "https://evil.example/account", "", true, false},
		{"redirect: 200 is the login page again", "redirect", 200, "", "<html>", true, false},
		{"redirect: 500", "redirect", 500, "", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var base string
			url, _, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.location != "" {
					w.Header().Set("Location", strings.ReplaceAll(tc.location, "{base}", base))
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			base = url
			c := legacy.HTTPConfig{URL: url + "/login", Success: tc.success}
			if tc.success == "redirect" {
				c.SuccessRedirect = "/account"
			}
			_, err := newHTTP(t, c).CheckLegacy(context.Background(), "u", "p")
			switch {
			case tc.ok && err != nil:
				t.Fatalf("want success, got %v", err)
			case !tc.ok && err == nil:
				t.Fatal("want an error")
			case err != nil && errors.Is(err, idp.ErrLegacyDenied) != tc.denied:
				t.Fatalf("denied = %v, want %v (%v)", errors.Is(err, idp.ErrLegacyDenied), tc.denied, err)
			}
		})
	}
}

func TestHTTPBoundsAndFailures(t *testing.T) {
	t.Parallel()
	t.Run("answer over max_response", func(t *testing.T) {
		t.Parallel()
		url, _, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 2000)) })
		_, err := newHTTP(t, legacy.HTTPConfig{URL: url, MaxResponse: 1000}).CheckLegacy(context.Background(), "u", "p")
		if err == nil || errors.Is(err, idp.ErrLegacyDenied) || !strings.Contains(err.Error(), "max_response") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a 2xx answer without the user id", func(t *testing.T) {
		t.Parallel()
		url, _, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"user":{}}`) })
		_, err := newHTTP(t, legacy.HTTPConfig{URL: url, UserID: "/user/id"}).CheckLegacy(context.Background(), "u", "p")
		if err == nil || errors.Is(err, idp.ErrLegacyDenied) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		url, asked, _ := waittest.Hanging(t)
		h := newHTTP(t, legacy.HTTPConfig{URL: url, Timeout: routes.Duration(50 * time.Millisecond)})
		var err error
		waittest.Returns(t, "a check of a hanging monolith", func() { _, err = h.CheckLegacy(context.Background(), "u", "p") })
		<-asked
		if err == nil || errors.Is(err, idp.ErrLegacyDenied) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the caller's context", func(t *testing.T) {
		t.Parallel()
		url, asked, _ := waittest.Hanging(t)
		h := newHTTP(t, legacy.HTTPConfig{URL: url})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-asked; cancel() }()
		var err error
		waittest.Returns(t, "a cancelled check", func() { _, err = h.CheckLegacy(ctx, "u", "p") })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := newHTTP(t, legacy.HTTPConfig{URL: url}).CheckLegacy(context.Background(), "u", "p")
		if err == nil || errors.Is(err, idp.ErrLegacyDenied) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestHTTPConfigRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    legacy.HTTPConfig
		want string
	}{
		{legacy.HTTPConfig{URL: "ftp://x"}, "url: must be"},
		{legacy.HTTPConfig{URL: "https://u:p@x/login"}, "url: must be"},
		{legacy.HTTPConfig{URL: "https://x", Body: "xml"}, "body: must be form or json"},
		{legacy.HTTPConfig{URL: "https://x", Success: "cookie"}, "success: must be status or redirect"},
		{legacy.HTTPConfig{URL: "https://x", Success: "redirect"}, "success_redirect: is required"},
		{legacy.HTTPConfig{URL: "https://x", Success: "redirect", SuccessRedirect: "account"}, "success_redirect: must be"},
		{legacy.HTTPConfig{URL: "https://x", Success: "redirect", SuccessRedirect: "/a", UserID: "/id"}, "no JSON"},
		{legacy.HTTPConfig{URL: "https://x", SuccessRedirect: "/a"}, "success_redirect: is only used"},
		{legacy.HTTPConfig{URL: "https://x", UserID: "id"}, "user_id: \"id\" is not a JSON pointer"},
		{legacy.HTTPConfig{URL: "https://x", Claims: map[string]string{"email": "/a~9"}}, "claims.email:"},
		{legacy.HTTPConfig{URL: "https://x", UsernameField: "password"}, "password_field: must differ"},
	} {
		_, err := legacy.NewHTTP(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.c, err, tc.want)
		}
	}
}
