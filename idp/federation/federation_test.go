package federation_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/federation"
	"github.com/ficus-gw/ficus/idp/store"
)

func forBoth(t *testing.T, f func(t *testing.T, pg bool)) {
	t.Run("memory", func(t *testing.T) { f(t, false) })
	t.Run("postgres", func(t *testing.T) { f(t, true) })
}

// The whole browser flow against the zitadel example OP: ficus's login
// page, the upstream's own login form, the callback, the RP's code and
// token. The first login creates the user just in time; the second finds
// it by its link.
func TestLoginThroughZitadelCreatesTheUserThenFindsIt(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		r := newRig(t, pg)
		ctx := context.Background()
		var userID string
		for round := range 2 {
			b := newBrowser(t)
			rl := r.rpConfig("orders.read")
			up := r.startFederated(t, b, rl, "zitadel")
			end := zitadelLogin(t, b, up, "alice")
			if end.status != 200 || end.body != "rp got it" {
				t.Fatalf("round %d: the browser ended at %s with %d:\n%s", round, end.url, end.status, end.body)
			}
			_, in := r.exchange(t, rl, r.code(t))
			if in["active"] != true || in["sub"] == "" || in["scope"] != "orders.read" {
				t.Fatalf("round %d: introspection %v", round, in)
			}
			if round == 0 {
				userID = in["sub"].(string)
			} else if in["sub"] != userID {
				t.Fatalf("the second login is user %v, the first %s", in["sub"], userID)
			}
		}
		u, err := r.st.GetUser(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "zitadel:z1" || u.PasswordHash != "" || u.Claims["email"] != "alice@example.com" || u.Claims["name"] != "Alice Doe" ||
			u.Claims["given_name"] != "Alice" || !u.Enabled {
			t.Fatalf("user %+v", u)
		}
		l, err := r.st.GetFederatedLink(ctx, r.zitadel, "z1")
		if err != nil || l.UserID != userID || l.Provider != "zitadel" || l.Tokens != nil {
			t.Fatalf("link %+v, %v (tokens are not kept by default)", l, err)
		}
		if !pg {
			if n := len(r.events(t, "user_federated_login", 2)); n != 2 {
				t.Fatalf("%d user_federated_login events", n)
			}
			if n := r.countEvents("user_created_federated"); n != 1 {
				t.Fatalf("%d user_created_federated events", n)
			}
		}
	})
}

// A verified e-mail links the upstream account to the one user with it
// (compared without case); the user keeps its other claims.
func TestVerifiedEmailLinksTheExistingUser(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	carol, _ := r.st.GetUserByName(ctx, "carol")
	b := newBrowser(t)
	rl := r.rpConfig()
	end := zitadelLogin(t, b, r.startFederated(t, b, rl, "zitadel"), "carol")
	if end.body != "rp got it" {
		t.Fatalf("ended at %s %d: %s", end.url, end.status, end.body)
	}
	_, in := r.exchange(t, rl, r.code(t))
	if in["sub"] != carol.ID {
		t.Fatalf("logged in as %v, not carol %s", in["sub"], carol.ID)
	}
	u, _ := r.st.GetUser(ctx, carol.ID)
	if u.Claims["legacy_user_id"] != "77" || u.Claims["email"] != "Carol@Example.com" || u.Claims["name"] != "Carol C" {
		t.Fatalf("claims %v", u.Claims)
	}
	if ev := r.events(t, "user_linked", 1); ev[0].UserID != carol.ID || ev[0].Grant != "federation:zitadel" {
		t.Fatalf("user_linked %+v", ev)
	}
	if _, err := r.st.GetUserByName(ctx, "zitadel:z3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second user was created: %v", err)
	}
}

// An unverified e-mail that an existing user has never links, and no
// second user is created for it either (create_users is on): a clear 403
// page, no code at the RP, no link.
func TestUnverifiedEmailNeverLinks(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	b := newBrowser(t)
	end := zitadelLogin(t, b, r.startFederated(t, b, r.rpConfig(), "zitadel"), "mallory")
	if end.status != http.StatusForbidden || !strings.Contains(end.body, "is not verified") || !strings.Contains(end.body, "/oauth2/authorize?") {
		t.Fatalf("unverified e-mail: %d %s", end.status, end.body)
	}
	r.noCode(t)
	if _, err := r.st.GetFederatedLink(ctx, r.zitadel, "z2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link: %v", err)
	}
	if _, err := r.st.GetUserByName(ctx, "zitadel:z2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user: %v", err)
	}
	if ev := r.events(t, "user_federated_login", 1); ev[0].Outcome != "denied" {
		t.Fatalf("audit %+v", ev)
	}
}

// A user created just in time from an unverified e-mail carries
// email_verified false: another upstream's account with that e-mail,
// verified, is not linked to it (the first account's holder would share
// the second's ficus user: a pre-hijacked account), and RPs see the
// address as unverified.
func TestUnverifiedEmailOfACreatedUserNeverLinks(t *testing.T) {
	r := newRig(t, false, func(c *federation.Config) { c.Providers[1].LinkByVerifiedEmail = true })
	ctx := context.Background()
	b := newBrowser(t)
	rl := r.rpConfig()
	if end := zitadelLogin(t, b, r.startFederated(t, b, rl, "zitadel"), "eve"); end.body != "rp got it" {
		t.Fatalf("eve: %d %s", end.status, end.body)
	}
	_, in := r.exchange(t, rl, r.code(t))
	eve, err := r.st.GetUserByName(ctx, "zitadel:z4")
	if err != nil || in["sub"] != eve.ID {
		t.Fatalf("eve is %v, %v", in["sub"], err)
	}
	if eve.Claims["email"] != "dave@example.com" || eve.Claims["email_verified"] != false {
		t.Fatalf("the user created from an unverified e-mail has claims %v", eve.Claims)
	}
	p := r.tinyLogin(t, r.rpConfig(), func(c map[string]any) { c["email"] = "dave@example.com" })
	if p.status != http.StatusForbidden {
		t.Fatalf("dave's verified account at tiny was let in (linked to eve's user?): %d %s", p.status, p.body)
	}
	r.noCode(t)
	if _, err := r.st.GetFederatedLink(ctx, r.tiny.issuer, "tiny-42"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dave's account is linked: %v", err)
	}
}

// Linking by e-mail ignores ASCII case only: an upstream's verified
// address that matches a user's only under Unicode case folding (the
// Kelvin sign folds to k) is another mailbox, and never links to that
// user (nor is a second user created beside it).
func TestUnicodeLookalikeEmailNeverLinks(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		r := newRig(t, pg, func(c *federation.Config) { c.Providers[1].LinkByVerifiedEmail = true })
		ctx := context.Background()
		if _, err := r.p.CreateUser(ctx, idp.NewUser{Username: "kim", Password: "kim-password", Claims: map[string]any{"email": "kim@example.com"}}); err != nil {
			t.Fatal(err)
		}
		p := r.tinyLogin(t, r.rpConfig(), func(c map[string]any) { c["email"] = "\u212Aim@example.com" })
		if p.status != http.StatusForbidden {
			t.Fatalf("a lookalike address was let in: %d %s", p.status, p.body)
		}
		r.noCode(t)
		if _, err := r.st.GetFederatedLink(ctx, r.tiny.issuer, "tiny-42"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("linked: %v", err)
		}
		// The same address in other ASCII case links.
		if p := r.tinyLogin(t, r.rpConfig(), func(c map[string]any) { c["email"] = "KIM@Example.com" }); p.body != "rp got it" {
			t.Fatalf("KIM@Example.com: %d %s", p.status, p.body)
		}
		r.code(t)
	})
}

// stopAtCallback runs a zitadel login up to the redirect to ficus's
// callback and returns its URL.
func (r *rig) stopAtCallback(t *testing.T, b *browser, user string) *url.URL {
	t.Helper()
	b.stopAt = r.front + "/oauth2/federation/"
	end := zitadelLogin(t, b, r.startFederated(t, b, r.rpConfig(), "zitadel"), user)
	b.stopAt = ""
	if end.status != http.StatusFound || !strings.HasPrefix(end.loc, r.front+"/oauth2/federation/zitadel/callback?") {
		t.Fatalf("not stopped at the callback: %d %q", end.status, end.loc)
	}
	u, _ := url.Parse(end.loc)
	return u
}

// A forged state, a callback in another browser, a replayed callback and
// a replayed code: each a clear page, no code at the RP, no user.
func TestForgedStateReplayAndAnotherBrowserAreRefused(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()

	t.Run("forged state", func(t *testing.T) {
		b := newBrowser(t)
		cb := r.stopAtCallback(t, b, "alice")
		q := cb.Query()
		st := q.Get("state")
		q.Set("state", st[:len(st)-4]+"AAAA")
		forged := *cb
		forged.RawQuery = q.Encode()
		p := b.get(t, forged.String())
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "does not belong to the sign-in") {
			t.Fatalf("forged state: %d %s", p.status, p.body)
		}
		q.Set("state", "")
		forged.RawQuery = q.Encode()
		if p := b.get(t, forged.String()); p.status != http.StatusBadRequest {
			t.Fatalf("no state: %d %s", p.status, p.body)
		}
		r.noCode(t)
	})

	t.Run("another browser", func(t *testing.T) {
		// Login CSRF: an attacker's callback opened in the victim's browser.
		attacker, victim := newBrowser(t), newBrowser(t)
		cb := r.stopAtCallback(t, attacker, "alice")
		p := victim.get(t, cb.String())
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not started in this browser") {
			t.Fatalf("callback in another browser: %d %s", p.status, p.body)
		}
		r.noCode(t)
	})

	t.Run("replayed callback and code", func(t *testing.T) {
		b := newBrowser(t)
		cb := r.stopAtCallback(t, b, "alice")
		if p := b.get(t, cb.String()); p.body != "rp got it" {
			t.Fatalf("genuine callback: %d %s", p.status, p.body)
		}
		r.code(t)
		p := b.get(t, cb.String())
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not started in this browser, or it is over") {
			t.Fatalf("replayed callback: %d %s", p.status, p.body)
		}
		// The used code with the state of a new login of the same browser:
		// the upstream refuses it.
		cb2 := r.stopAtCallback(t, b, "alice")
		q := cb2.Query()
		q.Set("code", cb.Query().Get("code"))
		cb2.RawQuery = q.Encode()
		p = b.get(t, cb2.String())
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "refused to complete the sign-in") {
			t.Fatalf("replayed code: %d %s", p.status, p.body)
		}
		r.noCode(t)
	})
	if _, err := r.st.GetUserByName(ctx, "zitadel:z1"); err != nil {
		t.Fatalf("the genuine login made its user: %v", err)
	}
}

// tinyLogin runs a login at tinyOP, whose ID token tune shapes.
func (r *rig) tinyLogin(t *testing.T, rl *rpLogin, tune func(map[string]any)) page {
	t.Helper()
	r.tiny.mu.Lock()
	r.tiny.tune = tune
	r.tiny.mu.Unlock()
	return r.startFederated(t, newBrowser(t), rl, "tiny")
}

// ID tokens that are signed by the upstream's key but not for this
// login: another audience, expired, another nonce, several audiences
// without azp, another issuer. Each is a 401 page; nobody logs in.
func TestIDTokensNotForThisLoginAreRefused(t *testing.T) {
	r := newRig(t, false)
	for _, c := range []struct {
		name, want string
		tune       func(map[string]any)
	}{
		{"wrong audience", "cannot accept", func(c map[string]any) { c["aud"] = "someone-else" }},
		{"expired", "has expired", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}},
		{"wrong nonce", "cannot accept", func(c map[string]any) { c["nonce"] = "n-0123456789abcdefghijklmnopqrstuvwxyzABCDEF" }},
		{"no nonce", "cannot accept", func(c map[string]any) { delete(c, "nonce") }},
		{"several audiences without azp", "cannot accept", func(c map[string]any) { c["aud"] = []string{"tiny-client", "other"} }},
		{"another issuer", "cannot accept", func(c map[string]any) { c["iss"] = "https://evil.example" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := r.tinyLogin(t, r.rpConfig(), c.tune)
			if p.status != http.StatusUnauthorized || !strings.Contains(p.body, c.want) {
				t.Fatalf("%d %s", p.status, p.body)
			}
			r.noCode(t)
		})
	}
	if _, err := r.st.GetUserByName(context.Background(), "tiny:tiny-42"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused login created a user: %v", err)
	}
	// The same upstream with a right token works: the refusals were the
	// tokens'.
	rl := r.rpConfig()
	if p := r.tinyLogin(t, rl, nil); p.body != "rp got it" {
		t.Fatalf("%d %s", p.status, p.body)
	}
	r.exchange(t, rl, r.code(t))
}

// A group claim maps to the level claim and bounds the scopes a client
// gets; the AMR of the upstream is kept after "fed".
func TestGroupsMapToLevelAndScopes(t *testing.T) {
	r := newRig(t, false, func(c *federation.Config) { c.Providers[1].Roles.Required = true })
	ctx := context.Background()

	rl := r.rpConfig("orders.read", "orders.write", "admin")
	if p := r.tinyLogin(t, rl, func(c map[string]any) { c["groups"] = []string{"customers", "other"} }); p.body != "rp got it" {
		t.Fatalf("%d %s", p.status, p.body)
	}
	_, in := r.exchange(t, rl, r.code(t))
	if in["scope"] != "orders.read orders.write" {
		t.Fatalf("a customer got scope %q", in["scope"])
	}
	u, _ := r.st.GetUserByName(ctx, "tiny:tiny-42")
	if u.Claims["access_level"] != "customer" || u.Claims["email"] != "dana@example.com" {
		t.Fatalf("claims %v", u.Claims)
	}

	rl = r.rpConfig("orders.read", "admin")
	if p := r.tinyLogin(t, rl, func(c map[string]any) { c["groups"] = "ops" }); p.body != "rp got it" {
		t.Fatalf("%d %s", p.status, p.body)
	}
	if _, in = r.exchange(t, rl, r.code(t)); in["scope"] != "orders.read admin" {
		t.Fatalf("ops got scope %q", in["scope"])
	}
	if u, _ = r.st.GetUserByName(ctx, "tiny:tiny-42"); u.Claims["access_level"] != "staff" {
		t.Fatalf("claims mapped again at this login: %v", u.Claims)
	}

	if p := r.tinyLogin(t, r.rpConfig(), func(c map[string]any) { delete(c, "groups") }); p.status != http.StatusForbidden {
		t.Fatalf("no group, roles required: %d %s", p.status, p.body)
	}
	r.noCode(t)
}

// An upstream that cannot be reached when the button is pressed, and one
// that goes away before the callback: a clear 502 page, never a 500,
// nothing issued.
func TestUpstreamDownEndsOnAClearPage(t *testing.T) {
	dead := "http://127.0.0.1:1"
	r := newRig(t, false, func(c *federation.Config) {
		c.Providers = append(c.Providers, federation.ProviderConfig{Name: "dead", DisplayName: "Dead", Issuer: dead, ClientID: "x"})
	})
	b := newBrowser(t)
	p := r.startFederated(t, b, r.rpConfig(), "dead")
	if p.status != http.StatusBadGateway || !strings.Contains(p.body, "Dead cannot be reached") {
		t.Fatalf("dead upstream: %d %s", p.status, p.body)
	}

	// tinyOP answers discovery and the authorization, then stops.
	b.stopAt = r.front + "/oauth2/federation/"
	p = r.tinyLogin(t, r.rpConfig(), nil)
	b.stopAt = ""
	_ = p
	b2 := newBrowser(t)
	b2.stopAt = r.front + "/oauth2/federation/"
	p = r.startFederated(t, b2, r.rpConfig(), "tiny")
	b2.stopAt = ""
	if p.status != http.StatusFound {
		t.Fatalf("not stopped at the callback: %d", p.status)
	}
	r.tiny.srv.Close()
	p = b2.get(t, p.loc)
	if p.status != http.StatusBadGateway || !strings.Contains(p.body, "Tiny cannot be reached") {
		t.Fatalf("upstream gone before the callback: %d %s", p.status, p.body)
	}
	r.code(t) // the first tiny login, before it stopped
	r.noCode(t)
}

// Malformed callbacks are 400 or 404 pages, never 500.
func TestMalformedCallbacks(t *testing.T) {
	r := newRig(t, false)
	b := newBrowser(t)
	for path, want := range map[string]int{
		"/oauth2/federation/zitadel/callback":                                    400,
		"/oauth2/federation/zitadel/callback?state=%00%01&code=x":                400,
		"/oauth2/federation/zitadel/callback?state=" + strings.Repeat("A", 5000): 400,
		"/oauth2/federation/nobody/callback?state=abc":                           404,
		"/oauth2/federation/zitadel/other":                                       404,
	} {
		if p := b.get(t, r.front+path); p.status != want || !strings.Contains(p.body, "Sign-in failed") {
			t.Errorf("%s: %d %s", path, p.status, p.body)
		}
	}
}

// The web session layer's /auth/login offers the same upstreams: the
// browser comes back logged on, under a new session cookie.
func TestWebSessionLoginThroughZitadel(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	b := newBrowser(t)
	p := b.post(t, r.front+"/auth/login", url.Values{"provider": {"zitadel"}, "return_to": {"/account?x=1"}}, "Origin", r.front)
	end := zitadelLogin(t, b, p, "alice")
	if end.status != 200 || end.body != "the site: /account" {
		t.Fatalf("ended at %s %d: %s", end.url, end.status, end.body)
	}
	front, _ := url.Parse(r.front)
	var cookie string
	for _, c := range b.c.Jar.Cookies(front) {
		if c.Name == "ficus_session" {
			cookie = c.Value
		}
	}
	s, err := r.m.Lookup(ctx, cookie)
	if err != nil || s.Level != "logged_on" {
		t.Fatalf("session %+v, %v", s, err)
	}
	u, _ := r.st.GetUserByName(ctx, "zitadel:z1")
	if s.UserID != u.ID {
		t.Fatalf("session of %s, not %s", s.UserID, u.ID)
	}

	// An unverified e-mail: a clear page and no session.
	b = newBrowser(t)
	p = b.post(t, r.front+"/auth/login", url.Values{"provider": {"zitadel"}}, "Origin", r.front)
	if end := zitadelLogin(t, b, p, "mallory"); end.status != http.StatusForbidden {
		t.Fatalf("unverified: %d %s", end.status, end.body)
	}
	for _, c := range b.c.Jar.Cookies(front) {
		if c.Name == "ficus_session" {
			t.Fatalf("a refused login left a session cookie")
		}
	}
	if p := b.post(t, r.front+"/auth/login", url.Values{"provider": {"nobody"}}, "Origin", r.front); p.status != http.StatusBadRequest {
		t.Fatalf("unknown provider: %d", p.status)
	}
}

// keep_upstream_tokens keeps the upstream's tokens sealed on the link;
// without it nothing is kept.
func TestUpstreamTokensAreKeptOnlyWhenConfigured(t *testing.T) {
	r := newRig(t, false, func(c *federation.Config) { c.Providers[1].KeepUpstreamTokens = true })
	ctx := context.Background()
	if p := r.tinyLogin(t, r.rpConfig(), nil); p.body != "rp got it" {
		t.Fatalf("%d %s", p.status, p.body)
	}
	r.code(t)
	tok, err := r.fed.UpstreamTokens(ctx, "tiny", "tiny-42")
	if err != nil || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("kept tokens %+v, %v", tok, err)
	}
	l, _ := r.st.GetFederatedLink(ctx, r.tiny.issuer, "tiny-42")
	if strings.Contains(string(l.Tokens), tok.AccessToken) {
		t.Fatal("the upstream's access token is stored in the clear")
	}
	b := newBrowser(t)
	if end := zitadelLogin(t, b, r.startFederated(t, b, r.rpConfig(), "zitadel"), "alice"); end.body != "rp got it" {
		t.Fatalf("%d %s", end.status, end.body)
	}
	r.code(t)
	if _, err := r.fed.UpstreamTokens(ctx, "zitadel", "z1"); !errors.Is(err, federation.ErrNoTokens) {
		t.Fatalf("zitadel keeps no tokens: %v", err)
	}
}
