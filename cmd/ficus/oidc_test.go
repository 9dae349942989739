package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"golang.org/x/oauth2"
)

// `ficus serve` as an OpenID Provider, without the web session layer: a
// client registered with the CLI (pairwise, a post-logout URI), go-oidc as
// the relying party through the front door, single sign-on with
// prompt=none, and the IDP's cookie never reaching the monolith.
func TestServeOpenIDProvider(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seenCookies []string
	monolith := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenCookies = append(seenCookies, r.Header.Get("Cookie"))
		mu.Unlock()
		io.WriteString(w, "monolith")
	}))
	t.Cleanup(monolith.Close)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "pairwise")
	os.WriteFile(secretFile, []byte(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("p", 32)))), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	issuer := "http://" + addr
	cfgPath := filepath.Join(dir, "ficus.yaml")
	cfgYAML := fmt.Sprintf(`listen: {addr: "%s", ops_addr: "127.0.0.1:0"}
store: {driver: postgres, dsn: %s}
routes: {file: %s}
idp: {issuer: "%s", oidc: {pairwise_secret: "file:%s", id_token_ttl: 10m}}
`, addr, pgDSN(t), routeFile(t, monolith.URL), issuer, secretFile)
	os.WriteFile(cfgPath, []byte(cfgYAML), 0o600)
	cli := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runCLIInput(t, stdin, append(args, "--config", cfgPath)...)
		if code != 0 {
			t.Fatalf("ficus %v: %s", args, errs)
		}
		return out
	}
	out := cli("", "idp", "client", "create", "rp", "--grant", "authorization_code", "--scope", "openid", "--scope", "email",
		"--redirect-uri", "https://rp.example/cb", "--post-logout-redirect-uri", "https://rp.example/bye", "--subject-type", "pairwise")
	secret := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)[1]
	userID := regexp.MustCompile(`user_id:\s+(\S+)`).FindStringSubmatch(cli("pw-of-ann-123\n", "idp", "user", "create", "ann", "--password-stdin",
		"--claim", "email=ann@example.com"))[1]
	if code, _, errs := runCLI(t, "idp", "client", "create", "bad", "--grant", "authorization_code", "--redirect-uri", "https://x.example/cb",
		"--post-logout-redirect-uri", "not-a-url", "--config", cfgPath); code == 0 || !strings.Contains(errs, "post-logout redirect URI") {
		t.Fatalf("a bad post-logout URI: %d %s", code, errs)
	}

	front, _, _ := testServer(t, cfgYAML)
	if front != issuer {
		t.Fatalf("front door %s, issuer %s", front, issuer)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery through the front door: %v", err)
	}
	conf := oauth2.Config{ClientID: "rp", ClientSecret: secret, RedirectURL: "https://rp.example/cb", Endpoint: provider.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "email"}}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	verifier := oauth2.GenerateVerifier()
	req, _ := http.NewRequest("GET", conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-serve")), nil)
	resp, page := fetch(req)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	f := url.Values{"username": {"ann"}, "password": {"pw-of-ann-123"}, "consent": {"allow"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	req, _ = http.NewRequest("POST", issuer+"/oauth2/authorize", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, page = fetch(req)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d %s %s", resp.StatusCode, loc, page)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	id, err := provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil || id.Nonce != "n-serve" {
		t.Fatalf("ID token: %v %+v", err, id)
	}
	if id.Subject == userID || id.Expiry.Sub(id.IssuedAt).Minutes() != 10 {
		t.Fatalf("pairwise sub %s (user %s), lifetime %s", id.Subject, userID, id.Expiry.Sub(id.IssuedAt))
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != id.Subject || info.Email != "ann@example.com" {
		t.Fatalf("userinfo %+v %v", info, err)
	}

	// Single sign-on: prompt=none answers with a code.
	req, _ = http.NewRequest("GET", conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), nil)
	resp, _ = fetch(req)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none after sign-in: %d %s", resp.StatusCode, loc)
	}

	// The browser holds the IDP's cookie for this host; the monolith
	// behind the gateway never sees it.
	u, _ := url.Parse(issuer)
	held := false
	for _, c := range jar.Cookies(u) {
		held = held || c.Name == "ficus_idp"
	}
	req, _ = http.NewRequest("GET", issuer+"/account", nil)
	req.AddCookie(&http.Cookie{Name: "app", Value: "1"})
	if resp, body := fetch(req); !held || resp.StatusCode != 200 || body != "monolith" {
		t.Fatalf("through the gateway: held %v, %d %s", held, resp.StatusCode, body)
	}
	mu.Lock()
	got := seenCookies
	mu.Unlock()
	if len(got) != 1 || strings.Contains(got[0], "ficus_idp") || !strings.Contains(got[0], "app=1") {
		t.Fatalf("the monolith saw cookies %q", got)
	}

	// RP-initiated logout through the front door.
	req, _ = http.NewRequest("GET", issuer+"/oauth2/logout?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
		"post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"b"}}.Encode(), nil)
	if resp, _ := fetch(req); resp.Header.Get("Location") != "https://rp.example/bye?state=b" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ = http.NewRequest("GET", conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), nil)
	resp, _ = fetch(req)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %s", loc)
	}
}

// The configuration examples of docs/oidc.md's provider section are
// configurations ficus accepts.
func TestOIDCProviderDocExamples(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/oidc.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "# Ficus as an OpenID Provider\n")
	if start < 0 {
		t.Fatal("docs/oidc.md has no section # Ficus as an OpenID Provider")
	}
	section := doc[start:]
	if end := strings.Index(section[1:], "\n# "); end >= 0 {
		section = section[:end+1]
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) == 0 {
		t.Fatal("no YAML examples")
	}
	for i, m := range blocks {
		p := filepath.Join(t.TempDir(), "ficus.yaml")
		os.WriteFile(p, []byte(m[1]), 0o600)
		if _, _, err := config.Load(p, config.ForCheck); err != nil {
			t.Errorf("example %d is refused:\n%v\n%s", i+1, err, m[1])
		}
	}
}
