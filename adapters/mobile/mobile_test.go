package mobile_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/verify"
	"golang.org/x/oauth2/clientcredentials"
)

func TestAppKeysBecomeOAuth2Calls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var tokenCalls atomic.Int64
	is := idptest.Start(t, func(o *idptest.Options) {
		o.Wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/oauth2/token" {
					tokenCalls.Add(1)
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	p, issuer := is.P, is.Issuer
	appSecret := is.Client(t, idp.NewClient{ID: "shop-app", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"catalog.read"}})
	webSecret := is.Client(t, idp.NewClient{ID: "web", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"catalog.read"}})

	v, _ := verify.New(ctx, verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "catalog"})
	svc := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"client_id": c.ClientID, "level": c.Level, "device_id": c.DeviceID, "app_key": r.Header.Get("X-App-Key")})
	})))
	defer svc.Close()
	stage, _ := auth.New(auth.Options{Issuer: auth.Local{P: p}})
	gw, _ := strangler.New(strangler.Options{Auth: stage})
	f, _ := routes.Parse("r.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  catalog: {url: "`+svc.URL+`", audience: catalog}
routes:
  - {name: catalog, match: {prefix: /m/catalog}, to: catalog, auth: {policy: oauth2}}
`))
	gw.Load(f)
	secrets := map[string]string{"env:KEY": "app-key-0123456789abcdef", "env:OLDKEY": "old-key-0123456789abcdef", "env:SECRET": appSecret}
	resolve := func(ref string) (string, error) { return secrets[ref], nil }
	ad, err := mobile.New(mobile.Config{Paths: []string{"/m"}, Apps: []mobile.App{
		{Name: "shop", Key: "env:KEY", ClientID: "shop-app", ClientSecret: "env:SECRET", MinVersion: "2.3.0", PerDevice: 2},
		{Name: "old", Key: "env:OLDKEY", ClientID: "shop-app", ClientSecret: "env:SECRET", Disabled: true},
	}}, resolve, issuer+"/oauth2/token", gw)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(ad)
	defer front.Close()

	call := func(hdr ...string) (int, map[string]string) {
		req, _ := http.NewRequest("GET", front.URL+"/m/catalog/items", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]string
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	code, got := call("X-App-Key", "app-key-0123456789abcdef", "X-Device-Id", "dev-1", "X-App-Version", "2.4.1")
	if code != 200 || got["client_id"] != "shop-app" || got["level"] != "anonymous" || got["device_id"] != "dev-1" || got["app_key"] != "" {
		t.Fatalf("app-key call: %d %v", code, got)
	}
	call("X-App-Key", "app-key-0123456789abcdef", "X-Device-Id", "dev-1", "X-App-Version", "2.4.1")
	if n := tokenCalls.Load(); n != 1 {
		t.Fatalf("%d token requests for one app and device, want 1 (cached)", n)
	}
	for name, tc := range map[string]struct {
		hdr  []string
		want int
	}{
		"unknown key":      {[]string{"X-App-Key", "nope-0123456789abcdef"}, 401},
		"disabled key":     {[]string{"X-App-Key", "old-key-0123456789abcdef"}, 401},
		"old version":      {[]string{"X-App-Key", "app-key-0123456789abcdef", "X-App-Version", "2.2.9", "X-Device-Id", "dev-2"}, 426},
		"no version":       {[]string{"X-App-Key", "app-key-0123456789abcdef", "X-Device-Id", "dev-2"}, 426},
		"no key, no token": {nil, 401},
	} {
		if code, _ := call(tc.hdr...); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	// dev-1 has used its burst (2 per second, burst 4): soon 429.
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		code, _ := call("X-App-Key", "app-key-0123456789abcdef", "X-Device-Id", "dev-1", "X-App-Version", "2.4.1")
		limited = code == 429
	}
	if !limited {
		t.Fatal("no per-device rate limit")
	}
	// An app that already has a real OAuth2 token is an ordinary caller.
	tok, _ := (&clientcredentials.Config{ClientID: "web", ClientSecret: webSecret, TokenURL: issuer + "/oauth2/token"}).Token(ctx)
	code, got = call("Authorization", "Bearer "+tok.AccessToken, "X-App-Key", "app-key-0123456789abcdef")
	if code != 200 || got["client_id"] != "web" || got["app_key"] != "" {
		t.Fatalf("OAuth2 caller on an app-key path: %d %v", code, got)
	}
	if !strings.HasPrefix(issuer, "http://") {
		t.Fatal(issuer)
	}
}
