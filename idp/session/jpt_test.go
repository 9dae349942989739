package session_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/golang-jwt/jwt/v5"
)

func TestJPTCarriesTheSessionAndIsReused(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	ann := in.user(t, "ann", "C-7")
	s, cookie, _ := in.start(t, "")
	if err := in.m.Update(ctx, s, map[string]string{"theme": "dark"}); err != nil {
		t.Fatal(err)
	}
	ls, _ := in.login(t, s, "ann")
	jpt, exp, err := in.m.JPT(ctx, ls)
	if err != nil {
		t.Fatal(err)
	}
	if want := in.clk.Now().Add(session.DefaultJPTTTL); !exp.Equal(want) {
		t.Fatalf("exp %s, want %s", exp, want)
	}
	var c session.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(jpt, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["typ"] != "jpt+jwt" || c.Subject != ann || c.SID != ls.ID || c.Level != "logged_on" || c.CustomerNumber != "C-7" ||
		c.LoginTime != ls.LoginAt.Unix() || c.Attrs["theme"] != "dark" || c.Issuer != issuer || c.Audience[0] != session.DefaultAudience {
		t.Fatalf("JPT header %v claims %+v", tok.Header, c)
	}
	if strings.Contains(jpt, cookie) {
		t.Fatal("the JPT carries a cookie")
	}
	got, err := in.m.VerifyJPT(ctx, jpt)
	if err != nil || got.ID != ls.ID {
		t.Fatalf("verify: %+v, %v", got, err)
	}

	in.clk.Add(4*time.Minute + 29*time.Second)
	if again, _, _ := in.m.JPT(ctx, ls); again != jpt {
		t.Fatal("a JPT 31 s from its end was not reused")
	}
	in.clk.Add(2 * time.Second)
	again, _, _ := in.m.JPT(ctx, ls)
	if again == jpt {
		t.Fatal("a JPT 29 s from its end was reused")
	}
	if err := in.m.Update(ctx, ls, map[string]string{"theme": "light"}); err != nil {
		t.Fatal(err)
	}
	updated, _, _ := in.m.JPT(ctx, ls)
	if updated == again {
		t.Fatal("the JPT of a session whose attributes changed was reused")
	}

	// An anonymous session's subject is not a user and not its cookie.
	as, acookie, _ := in.start(t, "")
	ajpt, _, err := in.m.JPT(ctx, as)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = jwt.NewParser().ParseUnverified(ajpt, &c)
	if !strings.HasPrefix(c.Subject, "anon:") || strings.Contains(ajpt, acookie) || c.Level != "anonymous" {
		t.Fatalf("anonymous JPT claims %+v", c)
	}
}

func TestJPTOfAnEndedSessionIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	in.user(t, "ann", "")
	s, _, _ := in.start(t, "")
	before, _, _ := in.m.JPT(ctx, s)
	ls, _ := in.login(t, s, "ann")
	if _, err := in.m.VerifyJPT(ctx, before); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the JPT of the session before login: %v", err)
	}
	jpt, _, _ := in.m.JPT(ctx, ls)
	if _, err := in.m.VerifyJPT(ctx, jpt); err != nil {
		t.Fatal(err)
	}
	if err := in.m.Logout(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if _, err := in.m.VerifyJPT(ctx, jpt); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the JPT of a logged-out session: %v", err)
	}
}

// sign makes a JPT-shaped token with any method, key and header.
func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForgedJPTsAreRefused(t *testing.T) {
	t.Parallel()
	in := newInstance(t, memBacking{memory.New()}, instanceOptions{jptAlg: idp.AlgRS256})
	ctx := context.Background()
	in.user(t, "ann", "")
	s, _, _ := in.start(t, "")
	ls, _ := in.login(t, s, "ann")
	good, _, err := in.m.JPT(ctx, ls)
	if err != nil {
		t.Fatal(err)
	}
	var claims session.Claims
	tok, _, _ := jwt.NewParser().ParseUnverified(good, &claims)
	kid := tok.Header["kid"].(string)
	withClaims := func(f func(c *session.Claims)) *session.Claims {
		c := claims
		f(&c)
		return &c
	}
	same := func(*session.Claims) {}
	pub := rsaPublicPEM(t, in.jptKeys)
	parts := strings.Split(good, ".")
	tampered := withClaims(func(c *session.Claims) { c.Level = "returning"; c.Subject = "someone-else" })
	tamperedBody, _ := json.Marshal(tampered)

	for _, c := range []struct {
		name, jpt string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid, "typ": "jpt+jwt"}, &claims)},
		{"HS256 keyed with the RS256 public key", sign(t, jwt.SigningMethodHS256, pub, map[string]any{"kid": kid, "typ": "jpt+jwt"}, &claims)},
		{"signed by the access-token key", sign2(t, in.p.Keys(), "jpt+jwt", &claims)},
		{"typ at+jwt", sign2(t, in.jptKeys, "at+jwt", &claims)},
		{"empty typ", sign2(t, in.jptKeys, "", &claims)},
		{"tampered payload", parts[0] + "." + b64(tamperedBody) + "." + parts[2]},
		{"another audience", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.Audience = jwt.ClaimStrings{"orders-svc"} }))},
		{"another issuer", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.Issuer = "https://evil.test" }))},
		{"no expiry", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.ExpiresAt = nil }))},
		{"another subject for the session", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.Subject = "u-other" }))},
		{"no session", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.SID = "" }))},
		{"an unknown session", sign2(t, in.jptKeys, "jpt+jwt", withClaims(func(c *session.Claims) { c.SID = strings.Repeat("0", 64) }))},
		{"garbage", "a.b.c"},
		{"huge", strings.Repeat("a", 20000)},
	} {
		if _, err := in.m.VerifyJPT(ctx, c.jpt); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if !errors.Is(err, session.ErrInvalidJPT) && !errors.Is(err, session.ErrNoSession) {
			t.Errorf("%s: %v, want ErrInvalidJPT or ErrNoSession", c.name, err)
		}
	}
	// The control: the same claims, rightly signed, pass.
	if _, err := in.m.VerifyJPT(ctx, sign2(t, in.jptKeys, "jpt+jwt", withClaims(same))); err != nil {
		t.Fatalf("a well-signed JPT: %v", err)
	}
	in.clk.Add(session.DefaultJPTTTL + 6*time.Second)
	if _, err := in.m.VerifyJPT(ctx, good); !errors.Is(err, session.ErrInvalidJPT) {
		t.Fatalf("an expired JPT: %v", err)
	}
}

func sign2(t *testing.T, km *idp.KeyManager, typ string, c jwt.Claims) string {
	t.Helper()
	s, err := km.Sign(c, typ)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaPublicPEM is the PEM of an RS256 key manager's public key: what an
// attacker would use as the secret of an HS256 forgery.
func rsaPublicPEM(t *testing.T, km *idp.KeyManager) []byte {
	t.Helper()
	var set struct {
		Keys []idp.JWK `json:"keys"`
	}
	if err := json.Unmarshal(km.JWKS(), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("keys: %v", err)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// A JPT is for the gateway only: the IDP's JWT check, a service's verifier
// and the sidecar all refuse it; the JPT keys are not in the JWKS; and an
// access-key-signed token typed jpt+jwt is refused too.
func TestJPTIsNoAccessToken(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	in.user(t, "ann", "")
	s, _, _ := in.start(t, "")
	ls, _ := in.login(t, s, "ann")
	jpt, _, err := in.m.JPT(ctx, ls)
	if err != nil {
		t.Fatal(err)
	}
	var claims session.Claims
	tok, _, _ := jwt.NewParser().ParseUnverified(jpt, &claims)
	if strings.Contains(string(in.p.Keys().JWKS()), tok.Header["kid"].(string)) {
		t.Fatal("the JPT key is published in the JWKS")
	}
	if _, err := in.p.VerifyJWT(jpt, session.DefaultAudience); err == nil {
		t.Fatal("idp.VerifyJWT accepted a JPT")
	}

	jwks := httptest.NewServer(in.p.Handler())
	t.Cleanup(jwks.Close)
	v, err := verify.New(ctx, verify.Options{JWKSURL: jwks.URL + "/.well-known/jwks.json", Audience: session.DefaultAudience, Issuer: issuer, Now: in.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, jpt); err == nil {
		t.Fatal("strangler/verify accepted a JPT")
	}
	retyped, accessTyped := sign2(t, in.p.Keys(), "jpt+jwt", &claims), sign2(t, in.p.Keys(), "at+jwt", &claims)
	if _, err := v.Verify(ctx, retyped); err == nil {
		t.Fatal("strangler/verify accepted a jpt+jwt signed by the access key")
	}
	if _, err := v.Verify(ctx, accessTyped); err != nil {
		t.Fatalf("the control, typed at+jwt: %v", err)
	}

	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(svc.Close)
	u, _ := url.Parse(svc.URL)
	h, err := verify.Sidecar(v, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := httptest.NewServer(h)
	t.Cleanup(sc.Close)
	for name, bearer := range map[string]string{"JPT": jpt, "access key, typ jpt+jwt": retyped, "control": accessTyped} {
		req, _ := http.NewRequest("GET", sc.URL+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 200, false: 401}[name == "control"]; resp.StatusCode != want {
			t.Errorf("sidecar, %s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}
