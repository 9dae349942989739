package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Issue 13: `ficus serve` with idp.federation puts a button per upstream
// on the login page and serves the upstreams' callbacks beside the IDP;
// an upstream that cannot be reached ends on a 502 page.
func TestServeOffersUpstreamProviders(t *testing.T) {
	t.Parallel()
	secretFile := t.TempDir() + "/corp-secret"
	os.WriteFile(secretFile, []byte("s3cret"), 0o600)
	cfg := pgConfig(t, "http://127.0.0.1:1", `idp:
  issuer: "http://ficus.test"
  federation:
    providers:
      - {name: corp, display_name: Corp, issuer: "http://127.0.0.1:1", client_id: ficus, client_secret: "file:`+secretFile+`"}
`)
	text, _ := os.ReadFile(cfg)
	if code, _, errs := runCLI(t, "idp", "client", "create", "app", "--grant", "authorization_code", "--public",
		"--redirect-uri", "https://app.example/cb", "--config", cfg); code != 0 {
		t.Fatal(errs)
	}
	front, _, _ := testServer(t, string(text))

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	conf := oauth2.Config{ClientID: "app", RedirectURL: "https://app.example/cb", Endpoint: oauth2.Endpoint{AuthURL: front + "/oauth2/authorize"}}
	resp, err := c.Get(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in with Corp") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:1") {
		t.Fatalf("login page %d, CSP %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("upstream", "corp")
	resp, err = c.PostForm(front+"/oauth2/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "Corp cannot be reached") {
		t.Fatalf("dead upstream: %d\n%s", resp.StatusCode, body)
	}
	resp, err = c.Get(front + "/oauth2/federation/corp/callback?state=0123456789abcdef&code=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not started in this browser") {
		t.Fatalf("callback without a login: %d\n%s", resp.StatusCode, body)
	}
}
