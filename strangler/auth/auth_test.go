package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

type world struct {
	p        *idp.Provider
	idpSrv   *httptest.Server
	gw       *httptest.Server
	secrets  map[string]string
	received chan http.Header
	stage    *auth.Stage
}

// newWorld runs the IDP, a gateway with the auth stage, a monolith and a
// new service that verifies every JWT it receives with go-oidc against
// the IDP's JWKS and reports the claims it saw.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{secrets: map[string]string{}, received: make(chan http.Header, 100)}
	st := memory.New()
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.idpSrv = httptest.NewUnstartedServer(nil)
	issuer := "http://" + w.idpSrv.Listener.Addr().String()
	w.p, err = idp.New(idp.Options{Config: idp.Config{Issuer: issuer, AllowPassword: true, Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}, Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.p.Close)
	w.idpSrv.Config.Handler = w.p.Handler()
	w.idpSrv.Start()
	t.Cleanup(w.idpSrv.Close)
	for _, c := range []idp.NewClient{
		{ID: "reader", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}},
		{ID: "writer", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read", "orders.write"}},
		{ID: "web-anon", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"catalog.read"}},
		{ID: "svc-a", Grants: []string{idp.GrantTokenExchange}, Audiences: []string{"ficus-gateway"}},
	} {
		s, err := w.p.CreateClient(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		w.secrets[c.ID] = s
	}

	verifier := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(ctx, issuer+"/.well-known/jwks.json"),
		&oidc.Config{ClientID: "orders-svc", SupportedSigningAlgs: []string{oidc.EdDSA}})
	service := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.Header.Get("X-User-Token") != "" {
			tok = r.Header.Get("X-User-Token")
		}
		if it, err := verifier.Verify(r.Context(), tok); err == nil {
			var claims map[string]any
			_ = it.Claims(&claims)
			b, _ := json.Marshal(claims)
			h.Set("Verified-Claims", string(b))
		}
		w.received <- h
		io.WriteString(rw, "new")
	}))
	t.Cleanup(service.Close)
	monolith := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.received <- r.Header.Clone()
		io.WriteString(rw, "legacy")
	}))
	t.Cleanup(monolith.Close)

	w.stage, err = auth.New(auth.Options{Issuer: auth.Local{P: w.p}})
	if err != nil {
		t.Fatal(err)
	}
	w.p.OnRevoke(w.stage.Invalidate)
	gw, _ := strangler.New(strangler.Options{Auth: w.stage})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // connection refused: requests to "down" fall back
	f, err := routes.Parse("r.yaml", []byte(strings.NewReplacer("MONO", monolith.URL, "SVC", service.URL, "DEAD", "http://"+dead.Addr().String()).Replace(`
version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  orders: {url: "SVC", audience: orders-svc}
  down: {url: "DEAD", audience: orders-svc}
routes:
  - {name: read, match: {prefix: /orders}, to: orders, auth: {policy: oauth2, scopes_all: [orders.read]}}
  - {name: write, match: {prefix: /admin/orders}, to: orders, auth: {policy: oauth2, scopes_all: [orders.write]}}
  - {name: any, match: {prefix: /any}, to: orders, auth: {policy: oauth2, scopes_any: [orders.write, admin]}}
  - {name: users-only, match: {prefix: /me}, to: orders, auth: {policy: oauth2, levels: [logged_on, returning]}}
  - {name: catalog, match: {prefix: /catalog}, to: orders, auth: {policy: optional, client: web-anon}}
  - {name: s2s, match: {prefix: /internal}, to: orders, auth: {policy: jwt}}
  - {name: custom, match: {prefix: /custom}, to: orders, auth: {policy: oauth2, header: X-User-Token}}
  - {name: legacy-guarded, match: {prefix: /legacy}, to: legacy, auth: {policy: oauth2}}
  - {name: passthrough, match: {prefix: /open}, to: legacy}
  - {name: falls-back, match: {prefix: /moved}, to: down, auth: {policy: oauth2, scopes_all: [orders.read]}}
  - {name: falls-back-custom, match: {prefix: /custom-moved}, to: down, auth: {policy: oauth2, header: X-User-Token}}
`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	w.gw = httptest.NewServer(gw)
	t.Cleanup(w.gw.Close)
	return w
}

func (w *world) token(t *testing.T, client string) string {
	t.Helper()
	tok, err := (&clientcredentials.Config{ClientID: client, ClientSecret: w.secrets[client], TokenURL: w.idpSrv.URL + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// call sends a request and returns the status, the answer's headers and
// what the upstream received (nil when nothing reached it).
func (w *world) call(t *testing.T, path string, hdr ...string) (int, http.Header, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", w.gw.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case h := <-w.received:
		return resp.StatusCode, resp.Header, h
	default:
		return resp.StatusCode, resp.Header, nil
	}
}

func claimsOf(t *testing.T, h http.Header) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(h.Get("Verified-Claims")), &c); err != nil {
		t.Fatalf("the service could not verify its JWT (headers %v)", h)
	}
	return c
}

func TestOpaqueTokenBecomesVerifiableJWT(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	code, _, got := w.call(t, "/orders/7", "Authorization", "Bearer "+tok)
	if code != 200 || got == nil {
		t.Fatalf("status %d", code)
	}
	if strings.Contains(got.Get("Authorization"), tok) {
		t.Fatal("the opaque token reached the service")
	}
	c := claimsOf(t, got)
	for k, want := range map[string]any{"sub": "reader", "client_id": "reader", "scope": "orders.read", "level": "anonymous", "aud": "orders-svc"} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	if exp := int64(c["exp"].(float64)); time.Until(time.Unix(exp, 0)) > 5*time.Minute+time.Second {
		t.Errorf("JWT lives longer than 5 minutes")
	}
	// A cache hit gives the same verified identity.
	_, _, again := w.call(t, "/orders/8", "Authorization", "Bearer "+tok)
	if claimsOf(t, again)["jti"] != c["jti"] {
		t.Error("the minted JWT was not reused from the cache")
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reader := w.token(t, "reader")
	tests := []struct {
		name, path, auth string
		want             int
		challenge        string
	}{
		{"no token", "/orders", "", 401, `Bearer realm="ficus"`},
		{"unknown token", "/orders", "Bearer ficus_at_forged", 401, `error="invalid_token"`},
		{"not bearer", "/orders", "Basic dXNlcjpwdw==", 401, `error="invalid_request"`},
		{"garbage", "/orders", "Bearer a b c", 401, `error="invalid_request"`},
		{"cached token, stricter route", "/admin/orders", "Bearer " + reader, 403, `error="insufficient_scope"`},
		{"any-of scopes missing", "/any", "Bearer " + reader, 403, `scope="orders.write admin"`},
		{"level required", "/me", "Bearer " + reader, 403, `error="insufficient_scope"`},
		{"jwt route with an opaque token", "/internal", "Bearer " + reader, 401, `error="invalid_token"`},
	}
	w.call(t, "/orders", "Authorization", "Bearer "+reader) // warm the cache for the stricter-route case
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			code, resp, got := w.call(t, tt.path, hdr...)
			if code != tt.want || got != nil {
				t.Fatalf("status %d (upstream reached: %v), want %d", code, got != nil, tt.want)
			}
			if !strings.Contains(resp.Get("WWW-Authenticate"), tt.challenge) {
				t.Fatalf("WWW-Authenticate %q lacks %q", resp.Get("WWW-Authenticate"), tt.challenge)
			}
		})
	}
	code, _, got := w.call(t, "/any", "Authorization", "Bearer "+w.token(t, "writer"))
	if code != 200 || got == nil {
		t.Fatalf("any-of satisfied: %d", code)
	}
}

func TestMonolithKeepsTheClientsHeader(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	for _, p := range []string{"/legacy/x", "/open/x"} {
		code, _, got := w.call(t, p, "Authorization", "Bearer "+tok)
		if code != 200 || got.Get("Authorization") != "Bearer "+tok {
			t.Fatalf("%s: %d, monolith saw %q", p, code, got.Get("Authorization"))
		}
	}
	if code, _, _ := w.call(t, "/legacy/x"); code != 401 {
		t.Fatalf("guarded monolith route without a token: %d", code)
	}
	// Two Authorization headers: ficus would check one while the monolith
	// may read the other. Refused, whatever their order; nothing reached.
	for _, pair := range [][2]string{{"Bearer " + tok, "Bearer forged"}, {"Bearer forged", "Bearer " + tok}} {
		code, resp, got := w.call(t, "/legacy/x", "Authorization", pair[0], "Authorization", pair[1])
		if code != 400 || got != nil || !strings.Contains(resp.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Fatalf("two Authorization headers %q: %d (upstream reached: %v) %q", pair, code, got != nil, resp.Get("WWW-Authenticate"))
		}
	}
}

// Issue 8 item 2: when the new service cannot be reached and the request
// falls back, the monolith receives exactly what the client sent — its
// opaque token, not the JWT minted for the new service.
func TestFallbackGivesTheMonolithTheClientsHeaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	code, _, got := w.call(t, "/moved/x", "Authorization", "Bearer "+tok)
	if code != 200 || got == nil || got.Get("Verified-Claims") != "" {
		t.Fatalf("status %d, reached %v: want the monolith", code, got)
	}
	if v := got.Values("Authorization"); len(v) != 1 || v[0] != "Bearer "+tok {
		t.Fatalf("the monolith saw Authorization %q, the client sent %q", v, "Bearer "+tok)
	}
	code, _, got = w.call(t, "/custom-moved/x", "Authorization", "Bearer "+tok)
	if code != 200 || got.Get("Authorization") != "Bearer "+tok || got.Get("X-User-Token") != "" {
		t.Fatalf("custom header route: %d, monolith saw %v", code, got)
	}
	if code, _, got := w.call(t, "/moved/x"); code != 401 || got != nil {
		t.Fatalf("without a token: %d", code)
	}
}

func TestOptionalPolicyGivesAnonymousApplicationJWT(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	code, _, got := w.call(t, "/catalog/items")
	if code != 200 {
		t.Fatalf("%d", code)
	}
	c := claimsOf(t, got)
	if c["client_id"] != "web-anon" || c["level"] != "anonymous" || c["scope"] != "catalog.read" {
		t.Fatalf("anonymous claims %v", c)
	}
	code, _, got = w.call(t, "/catalog/items", "Authorization", "Bearer "+w.token(t, "reader"))
	if code != 200 || claimsOf(t, got)["client_id"] != "reader" {
		t.Fatal("a caller with a token is not treated as that caller")
	}
	if code, _, _ := w.call(t, "/catalog", "Authorization", "Bearer ficus_at_bad"); code != 401 {
		t.Fatalf("a bad token on an optional route: %d", code)
	}
}

func TestJWTPolicyReMintsForTheUpstream(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reader := w.token(t, "reader")
	form := url.Values{"grant_type": {idp.GrantTokenExchange}, "subject_token": {reader}, "subject_token_type": {idp.TokenTypeAccessToken}, "audience": {"ficus-gateway"}}
	req, _ := http.NewRequest("POST", w.idpSrv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc-a", w.secrets["svc-a"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ex map[string]any
	json.NewDecoder(resp.Body).Decode(&ex)
	resp.Body.Close()
	gwJWT := ex["access_token"].(string)
	code, _, got := w.call(t, "/internal/x", "Authorization", "Bearer "+gwJWT)
	if code != 200 {
		t.Fatalf("%d", code)
	}
	if c := claimsOf(t, got); c["aud"] != "orders-svc" || c["client_id"] != "reader" {
		t.Fatalf("re-minted claims %v", c)
	}
	parts := strings.Split(gwJWT, ".")
	none := "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + "."
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	// A JWT minted for a service (aud orders-svc) is not a gateway credential.
	code, _, got = w.call(t, "/orders/1", "Authorization", "Bearer "+reader)
	if code != 200 {
		t.Fatalf("a service call: %d", code)
	}
	serviceJWT := strings.TrimPrefix(got.Get("Authorization"), "Bearer ")
	for name, bad := range map[string]string{"alg none": none, "tampered": tampered, "wrong audience": serviceJWT, "opaque": reader} {
		if code, _, got := w.call(t, "/internal/x", "Authorization", "Bearer "+bad); code != 401 || got != nil {
			t.Errorf("%s on a jwt route: %d", name, code)
		}
	}
}

func TestRevocationReachesTheCacheAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	if code, _, _ := w.call(t, "/orders", "Authorization", "Bearer "+tok); code != 200 {
		t.Fatal(code)
	}
	form := url.Values{"token": {tok}}
	req, _ := http.NewRequest("POST", w.idpSrv.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("reader", w.secrets["reader"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v", err)
	}
	resp.Body.Close()
	if code, _, _ := w.call(t, "/orders", "Authorization", "Bearer "+tok); code != 401 {
		t.Fatalf("a revoked token still passes from the cache: %d", code)
	}
}

func TestSpoofedHeaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	code, _, got := w.call(t, "/custom", "Authorization", "Bearer "+tok, "X-User-Token", "forged.jwt.value", "X-Ficus-User", "admin")
	if code != 200 {
		t.Fatal(code)
	}
	if got.Get("X-User-Token") == "forged.jwt.value" || got.Get("Authorization") != "" || got.Get("X-Ficus-User") != "" {
		t.Fatalf("spoofed or opaque headers reached the service: %v", got)
	}
	claimsOf(t, got) // the header holds a JWT the service verifies
	code, _, got = w.call(t, "/orders", "Authorization", "Bearer "+tok, "Connection", "Authorization")
	if code != 200 || got.Get("Authorization") == "" {
		t.Fatalf("Connection: Authorization dropped the JWT: %d %v", code, got)
	}
	claimsOf(t, got)
}

func TestConcurrentLookupsCollapse(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, "reader")
	done := make(chan int, 20)
	for i := 0; i < 20; i++ {
		go func() {
			req, _ := http.NewRequest("GET", w.gw.URL+"/orders", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for i := 0; i < 20; i++ {
		if c := <-done; c != 200 {
			t.Fatalf("status %d", c)
		}
		<-w.received
	}
}

var _ = oauth2.AuthStyleInHeader
