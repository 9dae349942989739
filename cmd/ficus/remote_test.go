package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2/clientcredentials"
)

// A gateway-only ficus (idp.enabled: false) uses a second ficus process as
// its IDP: introspection with the signed answer, then token exchange.
func TestRemoteIDPMode(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	dir := t.TempDir()
	idpPort := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", idpPort)

	// The service verifies what it receives against the IDP's JWKS.
	claims := make(chan map[string]any, 10)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.NotFound(w, r) // the monolith's answer to anything else
			return
		}
		v := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(r.Context(), issuer+"/.well-known/jwks.json"), &oidc.Config{ClientID: "svc", SupportedSigningAlgs: []string{oidc.EdDSA}})
		tok, err := v.Verify(r.Context(), raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var c map[string]any
		tok.Claims(&c)
		select {
		case claims <- c:
		default: // the test reads the first claims only; later calls never block
		}
		io.WriteString(w, "ok")
	}))
	defer svc.Close()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"%[1]s\"}\n  svc: {url: \"%[1]s\", audience: svc}\nroutes:\n  - {name: api, match: {prefix: /api}, to: svc, auth: {policy: oauth2}}\n", svc.URL)), 0o600)

	idpCfg := fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:0\"}\nstore: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nroutes: {file: %s}\n", idpPort, rf)
	cfgFile := filepath.Join(dir, "idp.yaml")
	os.WriteFile(cfgFile, []byte(idpCfg), 0o600)
	secretOf := func(out string) string { return regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)[1] }
	_, out, errs := runCLI(t, "idp", "client", "create", "app", "--grant", "client_credentials", "--scope", "orders.read", "--config", cfgFile)
	if out == "" {
		t.Fatal(errs)
	}
	appSecret := secretOf(out)
	_, out, errs = runCLI(t, "idp", "client", "create", "gateway", "--grant", "urn:ietf:params:oauth:grant-type:token-exchange",
		"--grant", "introspection", "--audience", "svc", "--config", cfgFile)
	if out == "" {
		t.Fatal(errs)
	}
	t.Setenv("FICUS_TEST_GW_SECRET", secretOf(out))

	idpFront, _, _ := testServer(t, idpCfg)
	gwFront, _, _ := testServer(t, fmt.Sprintf(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
routes: {file: %s}
idp: {enabled: false}
gateway:
  cache_ttl: 1s
  remote_idp: {issuer: %q, client_id: gateway, client_secret: env:FICUS_TEST_GW_SECRET}
`, rf, issuer))
	if idpFront != issuer {
		t.Fatalf("IDP at %s, want %s", idpFront, issuer)
	}
	if code, _ := get(t, gwFront+"/.well-known/jwks.json"); code != 404 {
		t.Fatal("the gateway-only instance serves IDP endpoints")
	}
	tok, err := (&clientcredentials.Config{ClientID: "app", ClientSecret: appSecret, TokenURL: issuer + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := authGet(t, gwFront+"/api/x", tok.AccessToken); c != 200 {
		t.Fatalf("through the remote-IDP gateway: %d", c)
	}
	c := <-claims
	if c["client_id"] != "app" || c["aud"] != "svc" || c["scope"] != "orders.read" {
		b, _ := json.Marshal(c)
		t.Fatalf("claims %s", b)
	}
	if c := authGet(t, gwFront+"/api/x", "ficus_at_forged"); c != 401 {
		t.Fatalf("forged token: %d", c)
	}
	resp, err := http.PostForm(issuer+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {"app"}, "client_secret": {appSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !waittest.Until(3*time.Second, func() bool { return authGet(t, gwFront+"/api/x", tok.AccessToken) == 401 }) {
		t.Fatal("revoked token still accepted after the remote cache TTL")
	}
}
