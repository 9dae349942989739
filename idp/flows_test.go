package idp_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func forBoth(t *testing.T, f func(t *testing.T, pg bool)) {
	t.Run("memory", func(t *testing.T) { f(t, false) })
	t.Run("postgres", func(t *testing.T) { f(t, true) })
}

func TestClientCredentialsWithOAuth2Library(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cc := clientcredentials.Config{ClientID: "machine", ClientSecret: ti.secret["machine"], TokenURL: ti.url("/oauth2/token"),
				Scopes: []string{"orders.read"}, AuthStyle: style}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.AccessToken, idp.AccessTokenPrefix) || len(tok.AccessToken) < len(idp.AccessTokenPrefix)+43 {
				t.Fatalf("token %q is not a ficus opaque token with 256 bits", tok.AccessToken)
			}
			if tok.RefreshToken != "" || tok.Extra("scope") != "orders.read" || time.Until(tok.Expiry) < 119*time.Minute {
				t.Fatalf("token = %+v scope %v", tok, tok.Extra("scope"))
			}
			if !ti.active(t, tok.AccessToken) {
				t.Fatal("issued token not active")
			}
		}
		cc := clientcredentials.Config{ClientID: "machine", ClientSecret: ti.secret["machine"], TokenURL: ti.url("/oauth2/token"), Scopes: []string{"admin"}}
		if _, err := cc.Token(context.Background()); !isOAuthErr(err, "invalid_scope") {
			t.Fatalf("scope beyond the client's: %v", err)
		}
		cc = clientcredentials.Config{ClientID: "machine", ClientSecret: "wrong", TokenURL: ti.url("/oauth2/token")}
		if _, err := cc.Token(context.Background()); !isOAuthErr(err, "invalid_client") {
			t.Fatalf("wrong secret: %v", err)
		}
		cc = clientcredentials.Config{ClientID: "web", ClientSecret: ti.secret["web"], TokenURL: ti.url("/oauth2/token")}
		if _, err := cc.Token(context.Background()); !isOAuthErr(err, "unauthorized_client") {
			t.Fatalf("grant not allowed: %v", err)
		}
	})
}

func isOAuthErr(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestPasswordAndRefreshWithOAuth2Library(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		conf := &oauth2.Config{ClientID: "web", ClientSecret: ti.secret["web"], Endpoint: oauth2.Endpoint{TokenURL: ti.url("/oauth2/token")}}
		ctx := context.Background()
		tok, err := conf.PasswordCredentialsToken(ctx, testUser, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok.RefreshToken, idp.RefreshTokenPrefix) {
			t.Fatalf("refresh token %q", tok.RefreshToken)
		}
		// Expire it locally: the library refreshes with the refresh token.
		stale := *tok
		stale.Expiry = time.Now().Add(-time.Minute)
		fresh, err := conf.TokenSource(ctx, &stale).Token()
		if err != nil {
			t.Fatal(err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate both tokens")
		}
		if !ti.active(t, fresh.AccessToken) || ti.active(t, tok.RefreshToken) {
			t.Fatal("rotation: the new access token must be active and the used refresh token not")
		}
		if _, err := conf.PasswordCredentialsToken(ctx, testUser, "wrong password"); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("wrong password: %v", err)
		}
		if _, err := conf.PasswordCredentialsToken(ctx, "nobody", "whatever1"); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("unknown user: %v", err)
		}
	})
}

func TestPasswordGrantOnlyForFirstPartyAndWhenEnabled(t *testing.T) {
	ti := newTestIDP(t, false, func(c *idp.Config) { c.AllowPassword = false })
	code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}, "web")
	if code != 400 || decode(t, b)["error"] != "unauthorized_client" {
		t.Fatalf("password grant while disabled: %d %s", code, b)
	}
}

// authorize drives the login page like a browser and returns the redirect.
func authorize(t *testing.T, authURL, username, password, consent string) (*url.URL, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", username)
	form.Set("password", password)
	form.Set("consent", consent)
	action, _ := url.Parse(authURL)
	resp, err = browser.PostForm(action.Scheme+"://"+action.Host+"/oauth2/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, resp.StatusCode
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc, resp.StatusCode
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		ctx := context.Background()
		conf := &oauth2.Config{ClientID: "thirdp", ClientSecret: ti.secret["thirdp"], RedirectURL: "https://thirdp.example/callback",
			Scopes: []string{"profile"}, Endpoint: oauth2.Endpoint{AuthURL: ti.url("/oauth2/authorize"), TokenURL: ti.url("/oauth2/token")}}
		verifier := oauth2.GenerateVerifier()
		loc, status := authorize(t, conf.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "allow")
		if loc == nil {
			t.Fatalf("login: %d", status)
		}
		if loc.Host != "thirdp.example" || loc.Query().Get("state") != "st-123" || loc.Query().Get("code") == "" {
			t.Fatalf("redirect = %v", loc)
		}
		code := loc.Query().Get("code")
		if _, err := conf.Exchange(ctx, code); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("exchange without the verifier: %v", err)
		}
		// That failed attempt consumed the code: a fresh login for the rest.
		loc, _ = authorize(t, conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "allow")
		code = loc.Query().Get("code")
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("wrong verifier: %v", err)
		}
		loc, _ = authorize(t, conf.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "allow")
		code = loc.Query().Get("code")
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if !ti.active(t, tok.AccessToken) || tok.RefreshToken == "" {
			t.Fatal("tokens from the code are not usable")
		}
		// Code reuse: refused, and what the code produced is revoked.
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("code reuse: %v", err)
		}
		if ti.active(t, tok.AccessToken) {
			t.Fatal("tokens of a reused code stay active")
		}
		// Codes live at most 60 s.
		loc, _ = authorize(t, conf.AuthCodeURL("st-4", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "allow")
		ti.clock.Add(61 * time.Second)
		if _, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier)); !isOAuthErr(err, "invalid_grant") {
			t.Fatalf("expired code: %v", err)
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	ti := newTestIDP(t, false)
	conf := &oauth2.Config{ClientID: "spa", RedirectURL: "http://127.0.0.1:9999/cb", Scopes: []string{"profile"},
		Endpoint: oauth2.Endpoint{AuthURL: ti.url("/oauth2/authorize"), TokenURL: ti.url("/oauth2/token"), AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()

	t.Run("public client with PKCE works", func(t *testing.T) {
		loc, status := authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "allow")
		if loc == nil {
			t.Fatalf("%d", status)
		}
		if _, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("redirect URI mismatch is shown, never followed", func(t *testing.T) {
		bad := *conf
		bad.RedirectURL = "http://127.0.0.1:9999/cb/evil"
		resp, err := http.Get(bad.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Request.URL.Host != strings.TrimPrefix(ti.srv.URL, "http://") {
			t.Fatalf("mismatch: %d at %v", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("PKCE required", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, _ := noRedirect.Get(conf.AuthCodeURL("s"))
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 303 || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
			t.Fatalf("no PKCE: %d %v", resp.StatusCode, loc)
		}
		resp, _ = noRedirect.Get(conf.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		resp.Body.Close()
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("plain PKCE accepted: %v", loc)
		}
	})
	t.Run("deny", func(t *testing.T) {
		loc, _ := authorize(t, conf.AuthCodeURL("s9", oauth2.S256ChallengeOption(verifier)), testUser, testPassword, "deny")
		if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s9" {
			t.Fatalf("deny: %v", loc)
		}
	})
	t.Run("wrong password stays on the page", func(t *testing.T) {
		loc, status := authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), testUser, "nope-nope", "allow")
		if loc != nil || status != 401 {
			t.Fatalf("wrong password: %v %d", loc, status)
		}
	})
	t.Run("public client cannot use client credentials", func(t *testing.T) {
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"spa"}}, "")
		if code != 400 || decode(t, b)["error"] != "unauthorized_client" {
			t.Fatalf("%d %s", code, b)
		}
	})
}

func TestRefreshRotationRaceHasOneWinner(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		rt := ti.password(t, nil)["refresh_token"].(string)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web")
				if code == 200 {
					mu.Lock()
					winners = append(winners, decode(t, b)["refresh_token"].(string))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d winners, want exactly 1", len(winners))
		}
		// The winner's family lives on: its refresh token works.
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {winners[0]}}, "web")
		if code != 200 {
			t.Fatalf("winner's refresh token: %d %s", code, b)
		}
	})
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		first := ti.password(t, nil)
		rt1 := first["refresh_token"].(string)
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, "web")
		if code != 200 {
			t.Fatal(string(b))
		}
		second := decode(t, b)
		ti.clock.Add(10 * time.Second) // past the reuse grace: this is theft, not a race
		code, _, b = ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, "web")
		if code != 400 || decode(t, b)["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %s", code, b)
		}
		for _, tok := range []string{first["access_token"].(string), second["access_token"].(string), second["refresh_token"].(string)} {
			if ti.active(t, tok) {
				t.Fatal("a token of the reused family is still active")
			}
		}
		if !strings.Contains(ti.logs.String(), `"event":"refresh_reuse"`) {
			t.Fatal("reuse not audited")
		}
	})
}

func TestLifetimesAndLevels(t *testing.T) {
	ti := newTestIDP(t, false)
	ctx := context.Background()
	loggedOn := ti.password(t, nil)
	rt := loggedOn["refresh_token"].(string)
	// A logged-on session is never extended: refreshing at 3h59 gives
	// tokens that end at 4h.
	ti.clock.Add(3*time.Hour + 59*time.Minute)
	code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web")
	if code != 200 {
		t.Fatal(string(b))
	}
	next := decode(t, b)
	if exp := next["expires_in"].(float64); exp > 61 {
		t.Fatalf("access token outlives the logged-on session: %vs", exp)
	}
	ti.clock.Add(2 * time.Minute)
	code, _, _ = ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next["refresh_token"].(string)}}, "web")
	if code != 400 {
		t.Fatal("logged-on refresh works past 4h")
	}
	// A returning token slides a week per use.
	ret := ti.password(t, url.Values{"remember": {"true"}})
	rt = ret["refresh_token"].(string)
	for i := 0; i < 3; i++ {
		ti.clock.Add(6 * 24 * time.Hour)
		code, _, b = ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web")
		if code != 200 {
			t.Fatalf("returning refresh after %d weeks: %s", i+1, b)
		}
		rt = decode(t, b)["refresh_token"].(string)
	}
	at := decode(t, b)["access_token"].(string)
	code, _, b = ti.post(t, "/oauth2/introspect", url.Values{"token": {at}}, "gateway")
	if code != 200 {
		t.Fatalf("introspection: %d %s", code, b)
	}
	if lvl := decode(t, b)["level"]; lvl != "returning" {
		t.Fatalf("level after refresh = %v", lvl)
	}
	_ = ctx
}

func TestUserLifecycleRevokesTokens(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		ctx := context.Background()
		var revoked [][]string
		var mu sync.Mutex
		ti.p.OnRevoke(func(h []string) { mu.Lock(); revoked = append(revoked, h); mu.Unlock() })

		a := ti.password(t, nil)
		if err := ti.p.Logout(ctx, ti.userID); err != nil {
			t.Fatal(err)
		}
		if ti.active(t, a["access_token"].(string)) || ti.active(t, a["refresh_token"].(string)) {
			t.Fatal("logout left tokens active")
		}
		b := ti.password(t, nil)
		if err := ti.p.SetPassword(ctx, ti.userID, "a brand new password"); err != nil {
			t.Fatal(err)
		}
		if ti.active(t, b["access_token"].(string)) {
			t.Fatal("password change left tokens active")
		}
		code, _, _ := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}, "web")
		if code != 400 {
			t.Fatal("old password still works")
		}
		c := ti.password(t, url.Values{"password": {"a brand new password"}})
		if err := ti.p.SetUserEnabled(ctx, ti.userID, false); err != nil {
			t.Fatal(err)
		}
		if ti.active(t, c["access_token"].(string)) {
			t.Fatal("disabling left tokens active")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(revoked) < 3 {
			t.Fatalf("revocation hook heard %d events", len(revoked))
		}
	})
}

// A deleted client's tokens stop working: a token it was issued before
// the delete is inactive at once and the revocation hook hears it (the
// other instances drop their cached look-ups).
func TestDeletedClientsTokensAreRevoked(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		var revoked []string
		var mu sync.Mutex
		ti.p.OnRevoke(func(h []string) { mu.Lock(); revoked = append(revoked, h...); mu.Unlock() })
		token := func(client string) string {
			code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, client)
			if code != 200 {
				t.Fatalf("client_credentials for %s: %d %s", client, code, b)
			}
			return decode(t, b)["access_token"].(string)
		}
		at := token("machine")
		web := ti.password(t, nil)
		if !ti.active(t, at) {
			t.Fatal("the fresh token is not active")
		}
		if err := ti.p.DeleteClient(context.Background(), "machine"); err != nil {
			t.Fatal(err)
		}
		if ti.active(t, at) {
			t.Fatal("the deleted client's token is still active")
		}
		if !ti.active(t, web["access_token"].(string)) {
			t.Fatal("another client's token was revoked")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(revoked) != 1 {
			t.Fatalf("revocation hook heard %v, want the deleted client's one token", revoked)
		}
	})
}

func TestTokenLimitEvictsOldest(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg) // MaxFamiliesPerUser: 3
		var logins []map[string]any
		for i := 0; i < 4; i++ {
			logins = append(logins, ti.password(t, nil))
			ti.clock.Add(time.Second)
		}
		if ti.active(t, logins[0]["access_token"].(string)) || ti.active(t, logins[0]["refresh_token"].(string)) {
			t.Fatal("the oldest login survived the token limit")
		}
		for _, l := range logins[1:] {
			if !ti.active(t, l["access_token"].(string)) {
				t.Fatal("a login within the limit was revoked")
			}
		}
	})
}

func TestRevokeEndpoint(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		l := ti.password(t, nil)
		// Another client's token: answered 200, not revoked.
		code, _, _ := ti.post(t, "/oauth2/revoke", url.Values{"token": {l["access_token"].(string)}}, "machine")
		if code != 200 || !ti.active(t, l["access_token"].(string)) {
			t.Fatal("a client revoked another client's token")
		}
		code, _, _ = ti.post(t, "/oauth2/revoke", url.Values{"token": {l["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}}, "web")
		if code != 200 || ti.active(t, l["access_token"].(string)) {
			t.Fatal("revoking the refresh token left its family's access token active")
		}
		code, _, _ = ti.post(t, "/oauth2/revoke", url.Values{"token": {"ficus_at_unknown"}}, "web")
		if code != 200 {
			t.Fatalf("unknown token: %d", code)
		}
	})
}

func TestClientSecretRotationGrace(t *testing.T) {
	ti := newTestIDP(t, false)
	old := ti.secret["machine"]
	newSecret, err := ti.p.RotateSecret(context.Background(), "machine")
	if err != nil {
		t.Fatal(err)
	}
	try := func(secret string) error {
		_, err := (&clientcredentials.Config{ClientID: "machine", ClientSecret: secret, TokenURL: ti.url("/oauth2/token")}).Token(context.Background())
		return err
	}
	if err := try(old); err != nil {
		t.Fatalf("old secret within the grace: %v", err)
	}
	if err := try(newSecret); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	ti.clock.Add(25 * time.Hour)
	if err := try(old); !isOAuthErr(err, "invalid_client") {
		t.Fatalf("old secret after the grace: %v", err)
	}
	if err := try(newSecret); err != nil {
		t.Fatalf("new secret after the grace: %v", err)
	}
}

func TestRateLimits(t *testing.T) {
	ti := newTestIDP(t, false, func(c *idp.Config) { c.ClientRate, c.ClientBurst = 1, 3 })
	var last int
	var hdr http.Header
	for i := 0; i < 12; i++ {
		last, hdr, _ = ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {"wrong-" + fmt.Sprint(i)}}, "web")
		if last == 429 {
			break
		}
	}
	if last != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("no 429 with Retry-After: %d %v", last, hdr)
	}

	ti = newTestIDP(t, false, func(c *idp.Config) { c.LoginRate, c.LoginBurst = 0.001, 3 })
	for i := 0; i < 3; i++ {
		ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {"wrong"}}, "web")
	}
	code, hdr, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}, "web")
	if code != 429 || hdr.Get("Retry-After") == "" || decode(t, b)["error"] != "slow_down" {
		t.Fatalf("login limit: %d %v %s", code, hdr, b)
	}
}

func TestTokenExchangeJWTVerifiedByGoOIDC(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		ctx := context.Background()
		login := ti.password(t, url.Values{"scope": {"profile orders.read"}})
		code, _, b := ti.post(t, "/oauth2/token", url.Values{
			"grant_type": {idp.GrantTokenExchange}, "subject_token": {login["access_token"].(string)},
			"subject_token_type": {idp.TokenTypeAccessToken}, "audience": {"orders-svc"}, "requested_token_type": {idp.TokenTypeJWT},
		}, "gateway")
		if code != 200 {
			t.Fatalf("exchange: %d %s", code, b)
		}
		resp := decode(t, b)
		if resp["issued_token_type"] != idp.TokenTypeJWT || resp["token_type"] != "Bearer" || resp["expires_in"].(float64) > 300 {
			t.Fatalf("exchange answer: %v", resp)
		}
		// An independent verifier: go-oidc with ficus's JWKS.
		ks := oidc.NewRemoteKeySet(ctx, ti.url("/.well-known/jwks.json"))
		v := oidc.NewVerifier(ti.p.Config().Issuer, ks, &oidc.Config{ClientID: "orders-svc", SupportedSigningAlgs: []string{oidc.EdDSA}, Now: ti.clock.Now})
		tok, err := v.Verify(ctx, resp["access_token"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		_ = tok.Claims(&claims)
		for k, want := range map[string]any{"sub": ti.userID, "client_id": "web", "scope": "profile orders.read", "level": "logged_on",
			"customer_number": "C-1001", "name": "Ann Example", "iss": ti.p.Config().Issuer} {
			if claims[k] != want {
				t.Errorf("claim %s = %v, want %v", k, claims[k], want)
			}
		}
		if claims["jti"] == nil || claims["iat"] == nil {
			t.Errorf("jti/iat missing: %v", claims)
		}
		if _, err := oidc.NewVerifier(ti.p.Config().Issuer, ks, &oidc.Config{ClientID: "billing-svc", SupportedSigningAlgs: []string{oidc.EdDSA}, Now: ti.clock.Now}).Verify(ctx, resp["access_token"].(string)); err == nil {
			t.Error("a JWT for orders-svc verified for billing-svc")
		}
		code, _, b = ti.post(t, "/oauth2/token", url.Values{"grant_type": {idp.GrantTokenExchange}, "subject_token": {login["access_token"].(string)},
			"subject_token_type": {idp.TokenTypeAccessToken}, "audience": {"payroll"}}, "gateway")
		if code != 400 || decode(t, b)["error"] != "invalid_target" {
			t.Fatalf("audience not allowed: %d %s", code, b)
		}
		code, _, b = ti.post(t, "/oauth2/token", url.Values{"grant_type": {idp.GrantTokenExchange}, "subject_token": {"ficus_at_forged"},
			"subject_token_type": {idp.TokenTypeAccessToken}, "audience": {"orders-svc"}}, "gateway")
		if code != 400 || decode(t, b)["error"] != "invalid_grant" {
			t.Fatalf("unknown subject: %d %s", code, b)
		}
	})
}

func TestIntrospection(t *testing.T) {
	ti := newTestIDP(t, false)
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: "machine", ClientSecret: ti.secret["machine"], TokenURL: ti.url("/oauth2/token")}
	tok, _ := cc.Token(ctx)

	code, _, b := ti.post(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "gateway")
	in := decode(t, b)
	if code != 200 || in["active"] != true || in["client_id"] != "machine" || in["level"] != "anonymous" || in["scope"] != "orders.read orders.write" {
		t.Fatalf("introspect: %d %v", code, in)
	}
	for _, junk := range []string{"", "x", "ficus_at_" + strings.Repeat("A", 43), strings.Repeat("\xff", 300)} {
		code, _, b = ti.post(t, "/oauth2/introspect", url.Values{"token": {junk}}, "gateway")
		if junk == "" {
			if code != 400 {
				t.Errorf("empty token: %d", code)
			}
			continue
		}
		if code != 200 || decode(t, b)["active"] != false {
			t.Errorf("junk %q: %d %s", junk, code, b)
		}
	}
	code, _, _ = ti.post(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "")
	if code != 401 {
		t.Fatalf("unauthenticated introspection: %d", code)
	}
	code, _, _ = ti.post(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "machine")
	if code != 400 {
		t.Fatalf("client without the introspection permission: %d", code)
	}

	// RFC 9701: a signed answer, verified against the JWKS.
	code, hdr, b := ti.post(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "gateway", "Accept", "application/token-introspection+jwt")
	if code != 200 || hdr.Get("Content-Type") != "application/token-introspection+jwt" {
		t.Fatalf("JWT introspection: %d %v", code, hdr)
	}
	payload, err := oidc.NewRemoteKeySet(ctx, ti.url("/.well-known/jwks.json")).VerifySignature(ctx, string(b))
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, payload)
	if m["aud"] != "gateway" || m["iss"] != ti.p.Config().Issuer || m["token_introspection"].(map[string]any)["active"] != true {
		t.Fatalf("introspection JWT claims: %v", m)
	}
}

func TestMetadataAndJWKS(t *testing.T) {
	ti := newTestIDP(t, false)
	resp, err := http.Get(ti.url("/.well-known/oauth-authorization-server"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	md := decode(t, b)
	iss := ti.p.Config().Issuer
	for k, want := range map[string]string{"issuer": iss, "token_endpoint": iss + "/oauth2/token", "jwks_uri": iss + "/.well-known/jwks.json",
		"introspection_endpoint": iss + "/oauth2/introspect", "revocation_endpoint": iss + "/oauth2/revoke", "authorization_endpoint": iss + "/oauth2/authorize"} {
		if md[k] != want {
			t.Errorf("%s = %v", k, md[k])
		}
	}
	if fmt.Sprint(md["code_challenge_methods_supported"]) != "[S256]" {
		t.Errorf("PKCE methods: %v", md["code_challenge_methods_supported"])
	}
	resp, _ = http.Get(ti.url("/.well-known/jwks.json"))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	keys := decode(t, b)["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("jwks: %s", b)
	}
	k := keys[0].(map[string]any)
	if k["kty"] != "OKP" || k["alg"] != "EdDSA" || k["d"] != nil {
		t.Fatalf("jwk: %v (must never carry private parts)", k)
	}
}

func TestMalformedRequestsNever500(t *testing.T) {
	ti := newTestIDP(t, false)
	for _, tc := range []struct {
		body, ctype string
		want        int
	}{
		{"grant_type=client_credentials", "application/json", 400},
		{"%%%", "application/x-www-form-urlencoded", 400},
		{"grant_type=client_credentials&grant_type=password", "application/x-www-form-urlencoded", 400},
		{"grant_type=nonsense&client_id=machine", "application/x-www-form-urlencoded", 401},
		{"", "application/x-www-form-urlencoded", 400},
	} {
		req, _ := http.NewRequest("POST", ti.url("/oauth2/token"), strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%q (%s): %d, want %d", tc.body, tc.ctype, resp.StatusCode, tc.want)
		}
	}
}

// A refresh token of a user disabled behind the provider's back (in the
// store, no revocation) is not rotated: the user comes with the token in
// the rotation's read, and a disabled one fails it; the token stays
// unused, and the refusal is audited.
func TestRefreshOfADisabledUserIsRefused(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		ctx := context.Background()
		rt := ti.password(t, nil)["refresh_token"].(string)
		if err := ti.st.SetUserEnabled(ctx, ti.userID, false); err != nil {
			t.Fatal(err)
		}
		code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web")
		if code != 400 || decode(t, b)["error"] != "invalid_grant" {
			t.Fatalf("disabled user's refresh: %d %s", code, b)
		}
		if !strings.Contains(ti.logs.String(), "refresh for a disabled or deleted user") {
			t.Fatal("refusal not audited")
		}
		if err := ti.st.SetUserEnabled(ctx, ti.userID, true); err != nil {
			t.Fatal(err)
		}
		if code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web"); code != 200 {
			t.Fatalf("the refused rotation used the token up: %d %s", code, b)
		}
	})
}
