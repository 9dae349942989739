package mobile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/rawtest"
	"github.com/ficus-gw/ficus/strangler/verify"
)

// Issue 8, item 5: the adapter decides where app keys are accepted on the
// path as the gateway normalises and matches it, so an app key cannot be
// spent outside its paths (/m/../catalog) and is accepted on every
// spelling of them that the gateway routes there (/M, /m;v=1).
func TestAppKeyPathsMatchLikeTheGateway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	is := idptest.Start(t)
	appSecret := is.Client(t, idp.NewClient{ID: "shop-app", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"catalog.read"}})
	v, _ := verify.New(ctx, verify.Options{JWKSURL: is.Issuer + "/.well-known/jwks.json", Issuer: is.Issuer, Audience: "catalog"})
	svc := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"client_id": c.ClientID, "path": r.RequestURI})
	})))
	t.Cleanup(svc.Close)
	stage, err := auth.New(auth.Options{Issuer: auth.Local{P: is.P}})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := strangler.New(strangler.Options{Auth: stage})
	if err != nil {
		t.Fatal(err)
	}
	f, err := routes.Parse("r.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  catalog: {url: "`+svc.URL+`", audience: catalog}
routes:
  - {name: mobile-catalog, match: {prefix: /m/catalog}, to: catalog, auth: {policy: oauth2}}
  - {name: catalog, match: {prefix: /catalog}, to: catalog, auth: {policy: oauth2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"env:KEY": "app-key-0123456789abcdef", "env:SECRET": appSecret}
	ad, err := mobile.New(mobile.Config{Paths: []string{"/m"}, Apps: []mobile.App{
		{Name: "shop", Key: "env:KEY", ClientID: "shop-app", ClientSecret: "env:SECRET", PerKey: 1000, PerDevice: 1000},
	}}, func(ref string) (string, error) { return secrets[ref], nil }, is.TokenURL(), gw)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(ad)
	t.Cleanup(front.Close)
	addr := strings.TrimPrefix(front.URL, "http://")

	for _, tt := range []struct {
		target    string
		want      int
		forwarded string
	}{
		{"/m/catalog/items", 200, "/m/catalog/items"},
		{"/M/catalog/items", 200, "/M/catalog/items"},
		{"/m;v=1/catalog/items", 200, "/m;v=1/catalog/items"},
		{"/x/..;/m/catalog/items", 200, "/m/catalog/items"},
		{"/m/../catalog/items", 401, ""},
		{"/m/..;/catalog/items", 401, ""},
		{"/m/%2e%2e/catalog/items", 401, ""},
		{"/m/.%2E;x/catalog/items", 401, ""},
	} {
		t.Run(tt.target, func(t *testing.T) {
			resp, body := rawtest.Get(t, addr, "api.example.com", tt.target, "X-App-Key: app-key-0123456789abcdef", "X-Device-Id: dev-1")
			var got map[string]string
			_ = json.Unmarshal(body, &got)
			if resp.StatusCode != tt.want || got["path"] != tt.forwarded {
				t.Fatalf("GET %s with an app key: %d %v; want %d and the service to receive %q", tt.target, resp.StatusCode, got, tt.want, tt.forwarded)
			}
		})
	}
}
