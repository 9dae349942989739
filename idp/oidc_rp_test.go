package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Relying parties from outside: coreos/go-oidc and zitadel/oidc's rp
// package, each against a ficus IDP on a real HTTP server, through the
// real sign-in page with a cookie-jar browser.

func TestRelyingPartyGoOIDC(t *testing.T) {
	ti := newOIDCIDP(t, false)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, ti.srv.URL) // discovery; go-oidc checks the issuer
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		EndSession string   `json:"end_session_endpoint"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&claims); err != nil || claims.EndSession != ti.srv.URL+"/oauth2/logout" {
		t.Fatalf("discovery claims %+v %v", claims, err)
	}
	conf := oauth2.Config{ClientID: "rp", ClientSecret: ti.secret["rp"], RedirectURL: rpRedirect, Endpoint: provider.Endpoint(),
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "rp"}) // algorithms from discovery

	signIn := func(b *browser, nonce string) (*oauth2.Token, *gooidc.IDToken) {
		t.Helper()
		pkce := oauth2.GenerateVerifier()
		loc := b.signIn(ti, conf.AuthCodeURL("st-go", oauth2.S256ChallengeOption(pkce), gooidc.Nonce(nonce)), testPassword)
		if loc.Query().Get("state") != "st-go" {
			t.Fatalf("redirect %s", loc)
		}
		tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("go-oidc refuses the ID token: %v", err)
		}
		return tok, id
	}

	tok, id := signIn(newBrowser(t), "nonce-go-1")
	if id.Nonce != "nonce-go-1" || id.Subject != ti.userID || id.Issuer != ti.srv.URL {
		t.Fatalf("ID token %+v", id)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var idc struct {
		Email    string   `json:"email"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
		SID      string   `json:"sid"`
	}
	if err := id.Claims(&idc); err != nil || idc.Email != "ann@example.com" || idc.ACR != "logged_on" || len(idc.AMR) != 1 || idc.AuthTime == 0 || idc.SID == "" {
		t.Fatalf("ID token claims %+v %v", idc, err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != id.Subject || info.Email != "ann@example.com" {
		t.Fatalf("userinfo %+v %v", info, err)
	}

	// A wrong nonce is the RP's to notice (go-oidc leaves the comparison
	// to it): a code from another authorization request (an injected
	// one) carries that request's nonce, not the one this RP stored.
	stored := "nonce-go-2"
	if _, id2 := signIn(newBrowser(t), "nonce-of-another-request"); id2.Nonce == stored || id2.Nonce != "nonce-of-another-request" {
		t.Fatalf("the ID token's nonce is %q", id2.Nonce)
	}

	// An access token changed by one character does not pass at_hash.
	if err := id.VerifyAccessToken(tok.AccessToken[:len(tok.AccessToken)-1] + "x"); err == nil {
		t.Fatal("at_hash accepted another access token")
	}
	// go-oidc, pinned to the algorithms discovery names, refuses an
	// HS256 token.
	forged := strings.Join([]string{"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", strings.Split(tok.Extra("id_token").(string), ".")[1], "c2ln"}, ".")
	if _, err := verifier.Verify(ctx, forged); err == nil {
		t.Fatal("go-oidc took an HS256 ID token")
	}
}

func TestRelyingPartyZitadel(t *testing.T) {
	ti := newOIDCIDP(t, false)
	ctx := context.Background()
	rpSrv := httptest.NewUnstartedServer(nil)
	base := "http://" + rpSrv.Listener.Addr().String()
	secret, err := ti.p.CreateClient(ctx, idp.NewClient{ID: "zrp", Name: "Zitadel RP", Grants: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken},
		Scopes: []string{"openid", "profile", "email"}, RedirectURIs: []string{base + "/good/callback", base + "/wrong/callback"}, PostLogoutRedirectURIs: []string{base + "/bye"}})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	newRP := func(path, expectNonce string) rp.RelyingParty {
		r, err := rp.NewRelyingPartyOIDC(ctx, ti.srv.URL, "zrp", secret, base+path+"callback", []string{"openid", "profile", "email"},
			rp.WithPKCE(httphelper.NewCookieHandler(key, key, httphelper.WithUnsecure())), rp.WithSigningAlgsFromDiscovery(),
			rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return expectNonce }), rp.WithIssuedAtOffset(5*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good, wrong := newRP("/good/", "z-nonce"), newRP("/wrong/", "a-nonce-this-RP-never-sent")
	mux := http.NewServeMux()
	callback := rp.UserinfoCallback(func(w http.ResponseWriter, _ *http.Request, tokens *zoidc.Tokens[*zoidc.IDTokenClaims], state string, _ rp.RelyingParty, info *zoidc.UserInfo) {
		_ = json.NewEncoder(w).Encode(map[string]any{"state": state, "sub": info.Subject, "email": info.Email, "nonce": tokens.IDTokenClaims.Nonce,
			"amr": tokens.IDTokenClaims.AuthenticationMethodsReferences, "acr": tokens.IDTokenClaims.AuthenticationContextClassReference,
			"id_token": tokens.IDToken})
	})
	for path, r := range map[string]rp.RelyingParty{"/good/": good, "/wrong/": wrong} {
		mux.Handle(path+"login", rp.AuthURLHandler(func() string { return "z-state" }, r, rp.WithURLParam("nonce", "z-nonce")))
		mux.Handle(path+"callback", rp.CodeExchangeHandler(callback, r))
	}
	rpSrv.Config.Handler = mux
	rpSrv.Start()
	t.Cleanup(rpSrv.Close)

	run := func(path string) (int, string) {
		t.Helper()
		b := newBrowser(t)
		resp, _ := b.get(base + path + "login")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("rp login: %d", resp.StatusCode)
		}
		loc := b.signIn(ti, resp.Header.Get("Location"), testPassword)
		if !strings.HasPrefix(loc.String(), base+path+"callback") {
			t.Fatalf("redirect %s", loc)
		}
		resp, body := b.get(loc.String())
		return resp.StatusCode, body
	}

	status, body := run("/good/")
	var got map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("zitadel RP: %d %s", status, body)
	}
	if got["state"] != "z-state" || got["sub"] != ti.userID || got["email"] != "ann@example.com" || got["nonce"] != "z-nonce" || got["acr"] != "logged_on" {
		t.Fatalf("zitadel RP saw %v", got)
	}

	// The RP that expects another nonce refuses the ID token.
	if status, body := run("/wrong/"); status != http.StatusUnauthorized || !strings.Contains(body, "nonce") {
		t.Fatalf("wrong nonce: %d %s", status, body)
	}

	// RP-initiated logout: a registered URI comes back with the state; an
	// unregistered one is refused.
	idt := got["id_token"].(string)
	u, err := rp.EndSession(ctx, good, idt, base+"/bye", "z-bye", "", nil)
	if err != nil || u == nil || u.String() != base+"/bye?state=z-bye" {
		t.Fatalf("end session: %v %v", u, err)
	}
	if u, err := rp.EndSession(ctx, good, idt, "https://evil.example/", "z-bye", "", nil); err == nil || u != nil {
		t.Fatalf("end session with an unregistered URI: %v %v", u, err)
	}
}
