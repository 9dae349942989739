package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/strangler/auth"
	"golang.org/x/oauth2/clientcredentials"
)

// Issue 11: the admin API takes an IDP access token checked like a route
// policy: none or a bad one 401 with the Bearer challenge, a missing
// scope 403, the read scope only for GET, the IDP unreachable 503; the
// handler learns the token's holder. The IDP is remote (introspection
// over HTTP) so that it can go down.
func TestAdminGuard(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	ids := idptest.Start(t, func(o *idptest.Options) {
		o.Wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if down.Load() && r.URL.Path == "/oauth2/introspect" {
					http.Error(w, "down", http.StatusBadGateway)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	gwSecret := ids.Client(t, idp.NewClient{ID: "gateway", Grants: []string{idp.PermissionIntrospect, idp.GrantTokenExchange}})
	token := func(client string, scopes ...string) string {
		t.Helper()
		secret := ids.Client(t, idp.NewClient{ID: client, Grants: []string{idp.GrantClientCredentials}, Scopes: scopes})
		tok, err := (&clientcredentials.Config{ClientID: client, ClientSecret: secret, TokenURL: ids.TokenURL()}).Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	admin, viewer, other := token("ops-bot", "ficus.admin"), token("dashboard", "ficus.admin.read"), token("orders-app", "orders.read")
	custom := token("release-bot", "release.manage")

	remote, err := auth.NewRemote(context.Background(), auth.RemoteOptions{Issuer: ids.Issuer, ClientID: "gateway", ClientSecret: gwSecret})
	if err != nil {
		t.Fatal(err)
	}
	// No cache of positive or negative answers: the IDP is asked each time.
	stage, err := auth.New(auth.Options{Issuer: remote, MaxCacheTTL: 1, NegativeTTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := auth.AdminCaller(r.Context())
		io.WriteString(w, who)
	})
	srv := httptest.NewServer(auth.AdminGuard{Stage: stage}.Wrap(next))
	t.Cleanup(srv.Close)
	customSrv := httptest.NewServer(auth.AdminGuard{Stage: stage, Scope: "release.manage", ReadScope: "release.view"}.Wrap(next))
	t.Cleanup(customSrv.Close)
	noIDP := httptest.NewServer(auth.AdminGuard{}.Wrap(next))
	t.Cleanup(noIDP.Close)

	tests := []struct {
		name, url, method, authz string
		idpDown                  bool
		wantStatus               int
		wantBody, wantChallenge  string
	}{
		{"no token", srv.URL, "GET", "", false, 401, "", `Bearer realm="ficus"`},
		{"not a bearer token", srv.URL, "POST", "Basic eDp5", false, 401, "", `Bearer realm="ficus", error="invalid_request", error_description="a Bearer token is required"`},
		{"unknown token", srv.URL, "POST", "Bearer ficus_at_nope", false, 401, "", `Bearer realm="ficus", error="invalid_token", error_description="the token is not active"`},
		{"admin reads", srv.URL, "GET", "Bearer " + admin, false, 200, "ops-bot", ""},
		{"admin changes", srv.URL, "POST", "Bearer " + admin, false, 200, "ops-bot", ""},
		{"read scope reads", srv.URL, "GET", "Bearer " + viewer, false, 200, "dashboard", ""},
		{"read scope cannot change", srv.URL, "POST", "Bearer " + viewer, false, 403, "", `Bearer realm="ficus", error="insufficient_scope", error_description="missing scope", scope="ficus.admin"`},
		{"another scope cannot read", srv.URL, "GET", "Bearer " + other, false, 403, "", `Bearer realm="ficus", error="insufficient_scope", error_description="missing scope", scope="ficus.admin ficus.admin.read"`},
		{"configured scope", customSrv.URL, "DELETE", "Bearer " + custom, false, 200, "release-bot", ""},
		{"default scope is not the configured one", customSrv.URL, "GET", "Bearer " + admin, false, 403, "", `Bearer realm="ficus", error="insufficient_scope", error_description="missing scope", scope="release.manage release.view"`},
		{"IDP down", srv.URL, "GET", "Bearer " + admin, true, 503, "", ""},
		{"no IDP at all", noIDP.URL, "GET", "Bearer " + admin, false, 503, "", ""},
	}
	for _, tt := range tests {
		// Serial: the IDP's state is shared.
		down.Store(tt.idpDown)
		req, _ := http.NewRequest(tt.method, tt.url+"/admin/routes/status", nil)
		if tt.authz != "" {
			req.Header.Set("Authorization", tt.authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || resp.Header.Get("WWW-Authenticate") != tt.wantChallenge {
			t.Errorf("%s: %d %q %s, want %d %q", tt.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tt.wantStatus, tt.wantChallenge)
			continue
		}
		if tt.wantStatus == 200 {
			if string(body) != tt.wantBody {
				t.Errorf("%s: the handler saw caller %q, want %q", tt.name, body, tt.wantBody)
			}
			continue
		}
		// Refusals are the OAuth2 JSON errors of any route; the handler
		// never ran.
		var e map[string]string
		if err := json.Unmarshal(body, &e); err != nil || e["error"] == "" {
			t.Errorf("%s: body %s", tt.name, body)
		}
	}
}
