package idp_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// The OpenID Provider's clients (beside newTestIDP's):
//
//	rp      third party, confidential: authorization_code, refresh_token;
//	        scopes openid profile email orders.read; post-logout URI
//	first   first party, public: no consent asked
//	pw, pw2 pairwise, on two sectors; pw3 pairwise on pw's sector
const (
	rpRedirect   = "https://rp.example/cb"
	rpPostLogout = "https://rp.example/bye"
)

// newOIDCIDP runs newTestIDP's provider with browser sessions (the web
// session layer's Manager on the same store) and a pairwise secret.
func newOIDCIDP(t *testing.T, pg bool) *testIDP {
	t.Helper()
	ctx := context.Background()
	ti := newTestIDPHooked(t, pg, nil, func(ti *testIDP) {
		var jpt idp.KeyStorage
		switch st := ti.st.(type) {
		case *memory.Store:
			jpt = st.JPTKeys()
		case *postgres.Store:
			jpt = st.JPTKeys()
		}
		keys, err := idp.NewKeyManager(ctx, jpt, idp.KeyOptions{Now: ti.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		m, err := session.New(session.Options{Store: ti.st.(session.Storage), Users: ti.p, Keys: keys, Issuer: ti.p.Config().Issuer, Now: ti.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		ti.p.UseBrowserSessions(m.Browser())
	}, func(c *idp.Config) { c.PairwiseSecret = bytes.Repeat([]byte("s"), 32) })
	for _, c := range []idp.NewClient{
		{ID: "rp", Name: "Relying Party", Grants: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken},
			Scopes: []string{"openid", "profile", "email", "orders.read"}, RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{rpPostLogout}},
		{ID: "first", Public: true, FirstParty: true, Grants: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid", "profile"},
			RedirectURIs: []string{"https://first.example/cb"}},
		{ID: "pw", Grants: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid"}, RedirectURIs: []string{"https://pw.example/cb"},
			SubjectType: "pairwise"},
		{ID: "pw2", Grants: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid"}, RedirectURIs: []string{"https://other.example/cb"},
			SubjectType: "pairwise"},
		{ID: "pw3", Grants: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid"}, RedirectURIs: []string{"https://app.pw.example/cb"},
			SubjectType: "pairwise", SectorIdentifier: "pw.example"},
	} {
		s, err := ti.p.CreateClient(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		ti.secret[c.ID] = s
	}
	return ti
}

// browser is a user agent with a cookie jar that does not follow
// redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, f url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// formOf returns the hidden fields of a page's form.
func formOf(page string) url.Values {
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	return f
}

// submit posts a page's form, with more fields, to the endpoint (path
// relative to the issuer) and returns the answer.
func (b *browser) submit(ti *testIDP, path, page string, more url.Values) (*http.Response, string) {
	b.t.Helper()
	f := formOf(page)
	for k, v := range more {
		f[k] = v
	}
	return b.post(ti.url(path), f)
}

// signIn starts an authorization request and, if the sign-in page comes,
// signs in with the password and allows; it returns the redirect to the
// client.
func (b *browser) signIn(ti *testIDP, authURL, password string) *url.URL {
	b.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode == http.StatusOK {
		if !strings.Contains(page, `name="password"`) {
			b.t.Fatalf("not the sign-in page: %s", page)
		}
		resp, page = b.submit(ti, "/oauth2/authorize", page, url.Values{"username": {testUser}, "password": {password}, "consent": {"allow"}})
	}
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d %s", resp.StatusCode, page)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc
}

// authURL is an authorization request of client with PKCE, for scope, with
// more parameters.
func authURL(ti *testIDP, client, redirect, scope, verifier string, more ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "scope": {scope}, "state": {"st-1"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(more); i += 2 {
		q.Set(more[i], more[i+1])
	}
	return ti.url("/oauth2/authorize?" + q.Encode())
}

// exchange redeems a code at the token endpoint.
func exchange(t *testing.T, ti *testIDP, client, redirect string, loc *url.URL, verifier string) map[string]any {
	t.Helper()
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	if ti.secret[client] == "" {
		f.Set("client_id", client)
		client = ""
	}
	status, _, b := ti.post(t, "/oauth2/token", f, client)
	if status != 200 {
		t.Fatalf("token: %d %s", status, b)
	}
	return decode(t, b)
}

// idClaims verifies an ID token with the provider's published keys and
// returns its claims and header.
func idClaims(t *testing.T, ti *testIDP, raw string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	var c jwt.MapClaims
	tok, err := jwt.ParseWithClaims(raw, &c, ti.p.Keys().Keyfunc, jwt.WithValidMethods(ti.p.Keys().Algorithms()), jwt.WithTimeFunc(ti.clock.Now),
		jwt.WithIssuer(ti.srv.URL), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	return c, tok.Header
}

const verifier1 = "a-verifier-of-the-relying-party-that-is-long-enough-0001"

func TestOIDCDiscovery(t *testing.T) {
	ti := newOIDCIDP(t, false)
	status, _, b := get(t, ti.url("/.well-known/openid-configuration"), "")
	if status != 200 {
		t.Fatalf("discovery: %d %s", status, b)
	}
	d := decode(t, b)
	iss := ti.srv.URL
	for k, want := range map[string]any{"issuer": iss, "authorization_endpoint": iss + "/oauth2/authorize", "token_endpoint": iss + "/oauth2/token",
		"userinfo_endpoint": iss + "/oauth2/userinfo", "end_session_endpoint": iss + "/oauth2/logout", "jwks_uri": iss + "/.well-known/jwks.json"} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("response_types_supported"); !slices.Equal(got, []string{"code"}) {
		t.Errorf("response_types_supported = %v", got)
	}
	if got := list("id_token_signing_alg_values_supported"); !slices.Equal(got, ti.p.Keys().Algorithms()) || slices.Contains(got, "none") || slices.Contains(got, "HS256") {
		t.Errorf("id_token_signing_alg_values_supported = %v", got)
	}
	if got := list("subject_types_supported"); !slices.Equal(got, []string{"public", "pairwise"}) {
		t.Errorf("subject_types_supported = %v", got)
	}
	if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
	for _, k := range []string{"scopes_supported", "claims_supported", "prompt_values_supported"} {
		if len(list(k)) == 0 {
			t.Errorf("%s is empty", k)
		}
	}
	if !slices.Contains(list("prompt_values_supported"), "none") || !slices.Contains(list("claims_supported"), "nonce") || !slices.Contains(list("scopes_supported"), "openid") {
		t.Errorf("discovery misses standard values: %s", b)
	}
	// The RFC 8414 document says the same.
	_, _, b2 := get(t, ti.url("/.well-known/oauth-authorization-server"), "")
	if m := decode(t, b2); len(m) != len(d) || m["issuer"] != iss || m["end_session_endpoint"] != d["end_session_endpoint"] {
		t.Errorf("RFC 8414 metadata differs: %s", b2)
	}
}

func get(t *testing.T, u, bearerToken string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if bearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestIDTokenOnTheCodeFlow(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "postgres"}[pg], func(t *testing.T) {
			ti := newOIDCIDP(t, pg)
			b := newBrowser(t)
			loginAt := ti.clock.Now()
			loc := b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid profile email", verifier1, "nonce", "n-0S6_WzA2Mj"), testPassword)
			if loc.Query().Get("state") != "st-1" {
				t.Fatalf("redirect %s", loc)
			}
			ti.clock.Add(10 * time.Second)
			tok := exchange(t, ti, "rp", rpRedirect, loc, verifier1)
			raw, _ := tok["id_token"].(string)
			c, h := idClaims(t, ti, raw)
			if h["typ"] != "JWT" || h["kid"] == nil {
				t.Errorf("header %v", h)
			}
			at := tok["access_token"].(string)
			sum := sha512.Sum512([]byte(at)) // EdDSA: SHA-512
			for k, want := range map[string]any{"iss": ti.srv.URL, "sub": ti.userID, "aud": "rp", "azp": "rp", "nonce": "n-0S6_WzA2Mj",
				"acr": "logged_on", "auth_time": float64(loginAt.Unix()), "at_hash": base64.RawURLEncoding.EncodeToString(sum[:32]),
				"email": "ann@example.com", "name": "Ann Example", "preferred_username": testUser} {
				if c[k] != want {
					t.Errorf("%s = %v, want %v", k, c[k], want)
				}
			}
			if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
				t.Errorf("amr = %v", c["amr"])
			}
			sid, _ := c["sid"].(string)
			if sid == "" || c["customer_number"] != nil || c["iss"] == "must-not-override" {
				t.Errorf("claims %v", c)
			}

			// Refresh: a new ID token, the same authentication, no nonce.
			ti.clock.Add(time.Minute)
			status, _, body := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}, "rp")
			if status != 200 {
				t.Fatalf("refresh: %d %s", status, body)
			}
			r := decode(t, body)
			rc, _ := idClaims(t, ti, r["id_token"].(string))
			if rc["nonce"] != nil || rc["auth_time"] != c["auth_time"] || rc["sid"] != sid || rc["sub"] != c["sub"] || rc["iat"] == c["iat"] {
				t.Errorf("refreshed ID token %v (first %v)", rc, c)
			}

			// No openid in the scope: no ID token.
			b2 := newBrowser(t)
			loc = b2.signIn(ti, authURL(ti, "rp", rpRedirect, "orders.read", verifier1), testPassword)
			if tok := exchange(t, ti, "rp", rpRedirect, loc, verifier1); tok["id_token"] != nil {
				t.Errorf("an ID token without openid: %v", tok)
			}
		})
	}
}

func TestPromptAndMaxAge(t *testing.T) {
	ti := newOIDCIDP(t, false)
	b := newBrowser(t)
	// prompt=none without a session: login_required at the redirect URI.
	resp, _ := b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "prompt", "none"))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "st-1" ||
		!strings.HasPrefix(loc.String(), rpRedirect) {
		t.Fatalf("prompt=none without a session: %d %s", resp.StatusCode, loc)
	}
	// Sign in (and allow openid profile).
	loc1 := b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid profile", verifier1), testPassword)
	c1, _ := idClaims(t, ti, exchange(t, ti, "rp", rpRedirect, loc1, verifier1)["id_token"].(string))

	// Now prompt=none answers with a code, without a page, and the same
	// authentication.
	ti.clock.Add(2 * time.Minute)
	resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "prompt", "none", "nonce", "n2"))
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with a session: %d %s", resp.StatusCode, loc)
	}
	c2, _ := idClaims(t, ti, exchange(t, ti, "rp", rpRedirect, loc, verifier1)["id_token"].(string))
	if c2["auth_time"] != c1["auth_time"] || c2["sid"] != c1["sid"] || c2["nonce"] != "n2" {
		t.Errorf("SSO ID token %v, first %v", c2, c1)
	}
	// A scope not yet allowed: consent_required.
	resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid email", verifier1, "prompt", "none"))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "consent_required" {
		t.Fatalf("new scope with prompt=none: %s", loc)
	}
	// Without prompt, the consent page; allowing it gives a code.
	resp, page := b.get(authURL(ti, "rp", rpRedirect, "openid email", verifier1))
	if resp.StatusCode != 200 || !strings.Contains(page, "Allow access") || strings.Contains(page, `name="password"`) {
		t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	resp, _ = b.submit(ti, "/oauth2/authorize", page, url.Values{"consent": {"allow"}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", resp.StatusCode, loc)
	}
	// A consent form without the CSRF cookie's value is refused.
	_, page = b.get(authURL(ti, "rp", rpRedirect, "openid orders.read", verifier1))
	resp, _ = b.submit(ti, "/oauth2/authorize", page, url.Values{"consent": {"allow"}, "csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("consent without CSRF: %d", resp.StatusCode)
	}
	// A first-party client is never asked.
	resp, _ = b.get(authURL(ti, "first", "https://first.example/cb", "openid", verifier1, "prompt", "none"))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Fatalf("first party with prompt=none: %s", loc)
	}

	// prompt=login: the sign-in page although the session is live, and a
	// new auth_time after it.
	resp, page = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "prompt", "login"))
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("prompt=login: %d", resp.StatusCode)
	}
	ti.clock.Add(time.Minute)
	loc = b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "prompt", "login"), testPassword)
	c3, _ := idClaims(t, ti, exchange(t, ti, "rp", rpRedirect, loc, verifier1)["id_token"].(string))
	if c3["auth_time"] == c1["auth_time"] || c3["sid"] == c1["sid"] {
		t.Errorf("prompt=login kept the old authentication: %v", c3)
	}

	// max_age: within it, SSO; beyond it, sign in again (prompt=none:
	// login_required).
	ti.clock.Add(10 * time.Minute)
	resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "max_age", "3600"))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Fatalf("within max_age: %d %s", resp.StatusCode, loc)
	}
	resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "max_age", "300", "prompt", "none"))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("beyond max_age with prompt=none: %s", loc)
	}
	resp, page = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "max_age", "300"))
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("beyond max_age: %d, not the sign-in page", resp.StatusCode)
	}
	loc = b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "max_age", "300"), testPassword)
	c4, _ := idClaims(t, ti, exchange(t, ti, "rp", rpRedirect, loc, verifier1)["id_token"].(string))
	if c4["auth_time"] != float64(ti.clock.Now().Unix()) {
		t.Errorf("auth_time after re-authentication = %v, now %d", c4["auth_time"], ti.clock.Now().Unix())
	}

	// Another user signing in in the same browser does not inherit the
	// first user's consent.
	if _, err := ti.p.CreateUser(context.Background(), idp.NewUser{Username: "bob", Password: "bob's long password"}); err != nil {
		t.Fatal(err)
	}
	_, page = b.get(authURL(ti, "first", "https://first.example/cb", "openid", verifier1, "prompt", "login"))
	resp, _ = b.submit(ti, "/oauth2/authorize", page, url.Values{"username": {"bob"}, "password": {"bob's long password"}, "consent": {"allow"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's sign-in: %d", resp.StatusCode)
	}
	resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid profile", verifier1, "prompt", "none"))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "consent_required" {
		t.Fatalf("bob inherited ann's consent: %s", loc)
	}

	// Bad prompt and max_age values go back to the client as errors.
	for _, more := range [][]string{{"prompt", "none login"}, {"prompt", "sometimes"}, {"max_age", "-1"}, {"max_age", "soon"}} {
		resp, _ = b.get(authURL(ti, "rp", rpRedirect, "openid", verifier1, more...))
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
			t.Errorf("%v: %s", more, loc)
		}
	}
}

func TestUserinfo(t *testing.T) {
	ti := newOIDCIDP(t, false)
	b := newBrowser(t)
	loc := b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid email", verifier1), testPassword)
	at := exchange(t, ti, "rp", rpRedirect, loc, verifier1)["access_token"].(string)

	status, _, body := get(t, ti.url("/oauth2/userinfo"), at)
	info := decode(t, body)
	if status != 200 || info["sub"] != ti.userID || info["email"] != "ann@example.com" || info["name"] != nil || info["customer_number"] != nil {
		t.Fatalf("userinfo: %d %v", status, info)
	}
	req, _ := http.NewRequest("POST", ti.url("/oauth2/userinfo"), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("userinfo by POST: %v %v", resp, err)
	}

	for _, tt := range []struct {
		name, url, token string
		status           int
		challenge        string
	}{
		{"no token", ti.url("/oauth2/userinfo"), "", 401, `Bearer realm="ficus"`},
		{"token in the query", ti.url("/oauth2/userinfo?access_token=" + at), "", 400, `error="invalid_request"`},
		{"unknown token", ti.url("/oauth2/userinfo"), "at_nothing", 401, `error="invalid_token"`},
		{"malformed token", ti.url("/oauth2/userinfo"), "a,b", 400, `error="invalid_request"`},
		{"no openid", ti.url("/oauth2/userinfo"), ti.password(t, nil)["access_token"].(string), 403, `error="insufficient_scope"`},
	} {
		status, h, body := get(t, tt.url, tt.token)
		if status != tt.status || !strings.Contains(h.Get("WWW-Authenticate"), tt.challenge) {
			t.Errorf("%s: %d %q %s", tt.name, status, h.Get("WWW-Authenticate"), body)
		}
	}
	// A revoked token stops working.
	if code, _, b := ti.post(t, "/oauth2/revoke", url.Values{"token": {at}}, "rp"); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if status, _, _ := get(t, ti.url("/oauth2/userinfo"), at); status != 401 {
		t.Fatalf("userinfo with a revoked token: %d", status)
	}
}

func TestEndSession(t *testing.T) {
	ti := newOIDCIDP(t, false)
	b := newBrowser(t)
	loc := b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid", verifier1), testPassword)
	idt := exchange(t, ti, "rp", rpRedirect, loc, verifier1)["id_token"].(string)
	live := func() bool {
		resp, _ := b.get(authURL(ti, "rp", rpRedirect, "openid", verifier1, "prompt", "none"))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query().Get("code") != ""
	}
	if !live() {
		t.Fatal("no session after sign-in")
	}
	logout := func(q url.Values) (*http.Response, string) { return b.get(ti.url("/oauth2/logout?" + q.Encode())) }

	// Refused, shown on a page, never redirected, and the session stays.
	for name, q := range map[string]url.Values{
		"unregistered URI":      {"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"a redirect URI":        {"id_token_hint": {idt}, "post_logout_redirect_uri": {rpRedirect}},
		"URI without client":    {"post_logout_redirect_uri": {rpPostLogout}},
		"another client's hint": {"id_token_hint": {idt}, "client_id": {"first"}, "post_logout_redirect_uri": {rpPostLogout}},
		"forged hint":           {"id_token_hint": {idt[:len(idt)-4] + "AAAA"}, "post_logout_redirect_uri": {rpPostLogout}},
	} {
		resp, page := logout(q)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, "refused") {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if !live() {
		t.Fatal("a refused logout ended the session")
	}

	// Without a hint, the user confirms; a form without the CSRF value
	// changes nothing.
	resp, page := logout(url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {rpPostLogout}, "state": {"bye-1"}})
	if resp.StatusCode != 200 || !strings.Contains(page, `name="confirm"`) {
		t.Fatalf("confirmation: %d %s", resp.StatusCode, page)
	}
	if resp, _ := b.submit(ti, "/oauth2/logout", page, url.Values{"confirm": {"yes"}, "csrf": {"x"}}); resp.StatusCode != 403 || !live() {
		t.Fatalf("confirmation without CSRF: %d", resp.StatusCode)
	}

	// With the hint: signed out at once, back to the registered URI with
	// the state.
	resp, _ = logout(url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpPostLogout}, "state": {"bye-2"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != rpPostLogout+"?state=bye-2" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if live() {
		t.Fatal("the session outlived the logout")
	}

	// Confirmed on the page, then the registered URI.
	loc = b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid", verifier1), testPassword)
	_ = exchange(t, ti, "rp", rpRedirect, loc, verifier1)
	_, page = logout(url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {rpPostLogout}})
	resp, _ = b.submit(ti, "/oauth2/logout", page, url.Values{"confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != rpPostLogout || live() {
		t.Fatalf("confirmed logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if logs := ti.logs.String(); !strings.Contains(logs, `"event":"logout","client_id":"rp","user_id":"`+ti.userID+`"`) || strings.Contains(logs, idt) {
		t.Errorf("logout not audited, or the ID token logged: %s", logs)
	}
}

func TestPairwiseSubjects(t *testing.T) {
	ti := newOIDCIDP(t, false)
	sub := func(client, redirect string) (string, string) {
		ti.clock.Add(time.Second) // the newest login keeps its tokens under the per-user limit
		b := newBrowser(t)
		loc := b.signIn(ti, authURL(ti, client, redirect, "openid", verifier1), testPassword)
		tok := exchange(t, ti, client, redirect, loc, verifier1)
		c, _ := idClaims(t, ti, tok["id_token"].(string))
		_, _, body := get(t, ti.url("/oauth2/userinfo"), tok["access_token"].(string))
		if info := decode(t, body); info["sub"] != c["sub"] {
			t.Errorf("%s: userinfo sub %v, ID token sub %v", client, info["sub"], c["sub"])
		}
		// The gateway's JWT names the user.
		res, err := ti.p.ResolveToken(context.Background(), tok["access_token"].(string))
		if err != nil {
			t.Fatal(err)
		}
		j, _, err := ti.p.MintResolved(res, "orders-svc")
		if err != nil {
			t.Fatal(err)
		}
		ac, err := ti.p.VerifyJWT(j, "orders-svc")
		if err != nil || ac.Subject != ti.userID {
			t.Errorf("gateway JWT sub %v (%v)", ac, err)
		}
		return c["sub"].(string), c["aud"].(string)
	}
	s1, _ := sub("pw", "https://pw.example/cb")
	s2, _ := sub("pw2", "https://other.example/cb")
	s3, _ := sub("pw3", "https://app.pw.example/cb")
	again, _ := sub("pw", "https://pw.example/cb")
	if s1 == ti.userID || s2 == ti.userID || s1 == s2 || s1 != s3 || s1 != again {
		t.Fatalf("pairwise subjects: pw %s, pw2 %s, pw3 %s, pw again %s (user %s)", s1, s2, s3, again, ti.userID)
	}

	// Registration refuses what cannot work.
	ctx := context.Background()
	for name, c := range map[string]idp.NewClient{
		"token exchange":  {ID: "x1", Grants: []string{idp.GrantAuthorizationCode, idp.GrantTokenExchange}, RedirectURIs: []string{"https://x.example/cb"}, SubjectType: "pairwise"},
		"two hosts":       {ID: "x2", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb"}, SubjectType: "pairwise"},
		"bad sector":      {ID: "x3", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb"}, SubjectType: "pairwise", SectorIdentifier: "https://a.example/"},
		"unknown type":    {ID: "x4", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb"}, SubjectType: "secret"},
		"sector, public":  {ID: "x5", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb"}, SectorIdentifier: "a.example"},
		"logout URI":      {ID: "x6", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"/bye"}},
		"logout, no code": {ID: "x7", Grants: []string{idp.GrantClientCredentials}, PostLogoutRedirectURIs: []string{"https://a.example/bye"}},
	} {
		if _, err := ti.p.CreateClient(ctx, c); err == nil {
			t.Errorf("%s: registered", name)
		}
		if _, err := ti.st.GetClient(ctx, c.ID); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	plain := newTestIDP(t, false)
	if _, err := plain.p.CreateClient(ctx, idp.NewClient{ID: "p", Grants: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{"https://a.example/cb"},
		SubjectType: "pairwise"}); err == nil || !strings.Contains(err.Error(), "pairwise_secret") {
		t.Errorf("pairwise without a secret: %v", err)
	}
}

// TestIDTokenAlgorithmPinned: an id_token_hint signed with none or with
// HS256 keyed by the public key is no ID token of this provider.
func TestIDTokenAlgorithmPinned(t *testing.T) {
	ti := newOIDCIDP(t, false)
	b := newBrowser(t)
	loc := b.signIn(ti, authURL(ti, "rp", rpRedirect, "openid", verifier1), testPassword)
	idt := exchange(t, ti, "rp", rpRedirect, loc, verifier1)["id_token"].(string)
	c, h := idClaims(t, ti, idt)

	none := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	none.Header["kid"] = h["kid"]
	noneRaw, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	var pub []byte
	for _, k := range ti.p.Keys().Keys() {
		pub = append(pub, k.ID...)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	hs.Header["kid"], hs.Header["typ"] = h["kid"], "JWT"
	hsRaw, _ := hs.SignedString(pub)
	for name, raw := range map[string]string{"none": noneRaw, "HS256": hsRaw} {
		resp, _ := b.get(ti.url("/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {rpPostLogout}}.Encode()))
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%s hint: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The genuine hint works.
	resp, _ := b.get(ti.url("/oauth2/logout?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpPostLogout}}.Encode()))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("genuine hint: %d", resp.StatusCode)
	}
}
