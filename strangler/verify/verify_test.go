package verify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/labstack/echo/v4"
)

type env struct {
	p       *idp.Provider
	srv     *httptest.Server
	fetches atomic.Int64
	issuer  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{PublishDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{}
	e.srv = httptest.NewUnstartedServer(nil)
	e.issuer = "http://" + e.srv.Listener.Addr().String()
	e.p, _ = idp.New(idp.Options{Config: idp.Config{Issuer: e.issuer}, Store: st, Keys: keys})
	t.Cleanup(e.p.Close)
	h := e.p.Handler()
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			e.fetches.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) mint(t *testing.T, aud, scope string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	s, _, err := e.p.MintJWT(context.Background(), &store.Token{ClientID: "app", Scope: scope, Level: "anonymous", IssuedAt: now, ExpiresAt: now.Add(ttl)}, aud)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) verifier(t *testing.T, refetch time.Duration) *verify.Verifier {
	t.Helper()
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: e.srv.URL + "/.well-known/jwks.json", Audience: "orders-svc", Issuer: e.issuer, RefetchInterval: refetch})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sidecar(t *testing.T, v *verify.Verifier) (*httptest.Server, chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 10)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "service")
	}))
	t.Cleanup(svc.Close)
	u, _ := url.Parse(svc.URL)
	rule, _ := verify.ParseScopeRule("/admin=orders.admin")
	h, err := verify.Sidecar(v, u, []verify.ScopeRule{rule})
	if err != nil {
		t.Fatal(err)
	}
	sc := httptest.NewServer(h)
	t.Cleanup(sc.Close)
	return sc, seen
}

func get(t *testing.T, u, auth string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestSidecarAdmitsOnlyValidTokens(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, time.Hour)
	sc, seen := sidecar(t, v)
	good := e.mint(t, "orders-svc", "orders.read", time.Hour)
	if code, _ := get(t, sc.URL+"/orders", "Bearer "+good); code != 200 {
		t.Fatalf("valid token: %d", code)
	}
	<-seen
	parts := strings.Split(good, ".")
	var hdr map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(hb, &hdr)
	hs := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + hdr["kid"].(string) + `"}`))
		m := hmac.New(sha256.New, []byte(e.p.Keys().JWKS()))
		m.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	for name, tc := range map[string]struct {
		auth string
		want int
	}{
		"no token":       {"", 401},
		"not bearer":     {"Basic eDp5", 401},
		"alg none":       {"Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", 401},
		"HS256":          {"Bearer " + hs(), 401},
		"tampered":       {"Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"orders-svc","scope":"orders.admin"}`)) + "." + parts[2], 401},
		"wrong audience": {"Bearer " + e.mint(t, "billing-svc", "orders.read", time.Hour), 401},
		"expired":        {"Bearer " + e.mint(t, "orders-svc", "orders.read", -time.Minute), 401},
		"garbage":        {"Bearer ....", 401},
	} {
		code, h := get(t, sc.URL+"/orders", tc.auth)
		if code != tc.want || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q", name, code, h.Get("WWW-Authenticate"))
		}
	}
	code, h := get(t, sc.URL+"/admin/users", "Bearer "+good)
	if code != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("missing scope: %d %q", code, h.Get("WWW-Authenticate"))
	}
	if code, _ := get(t, sc.URL+"/admin/users", "Bearer "+e.mint(t, "orders-svc", "orders.read orders.admin", time.Hour)); code != 200 {
		t.Fatalf("with scope: %d", code)
	}
	select {
	case <-seen:
	default:
		t.Fatal("the admitted request did not reach the service")
	}
	select {
	case h := <-seen:
		t.Fatalf("a refused request reached the service: %v", h)
	default:
	}
}

func TestKeysSurviveAnIDPOutageAndNewKeysAreFetched(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, time.Millisecond)
	tok := e.mint(t, "orders-svc", "", time.Hour)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// A rotation: the new key's JWTs arrive; the verifier fetches the JWKS.
	if _, err := e.p.Keys().Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the new key signs once its PublishDelay (1ms) has passed
	rotated := e.mint(t, "orders-svc", "", time.Hour)
	if _, err := v.Verify(context.Background(), rotated); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	e.srv.Close()
	for _, tk := range []string{tok, rotated} {
		if _, err := v.Verify(context.Background(), tk); err != nil {
			t.Fatalf("IDP down: cached keys not used: %v", err)
		}
	}
}

func TestUnknownKidFloodFetchesAtMostOnce(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, time.Hour)
	before := e.fetches.Load()
	parts := strings.Split(e.mint(t, "orders-svc", "", time.Hour), ".")
	for i := 0; i < 50; i++ {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"nope-` + string(rune('a'+i%26)) + `"}`))
		if _, err := v.Verify(context.Background(), h+"."+parts[1]+"."+parts[2]); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if n := e.fetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 50 unknown kids, want at most 1", n)
	}
}

func TestEchoMiddleware(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, time.Hour)
	app := echo.New()
	app.GET("/me", func(c echo.Context) error {
		cl, _ := verify.ClaimsFrom(c.Request().Context())
		return c.String(200, cl.ClientID+" "+cl.Scope)
	}, v.Echo("orders.read"))
	srv := httptest.NewServer(app)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+e.mint(t, "orders-svc", "orders.read", time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "app orders.read" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if code, _ := get(t, srv.URL+"/me", "Bearer "+e.mint(t, "orders-svc", "other", time.Hour)); code != 403 {
		t.Fatalf("missing scope: %d", code)
	}
	if code, _ := get(t, srv.URL+"/me", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}
