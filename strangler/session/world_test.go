package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/session"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// clock is the injected clock of a world, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is the whole path of a browser request: the IDP, the session
// manager, the session stage and the auth stage in a real gateway, in front
// of a legacy monolith, a web app behind a session route and a service
// behind an oauth2 route, which verifies its JWTs with strangler/verify.
type world struct {
	clk      *clock
	p        *idp.Provider
	m        *idpsession.Manager
	st       *session.Stage
	reg      *prometheus.Registry
	front    *httptest.Server // the front door: login/logout, else the gateway
	verifier *verify.Verifier
	// monolith records the headers of the last request it got.
	monoMu   sync.Mutex
	monoSeen http.Header
}

// app is what the test web app answers: the headers it received, and for
// /shop/call, what the service answered to its call with the JPT.
type app struct {
	Header  http.Header `json:"header"`
	Method  string      `json:"method"`
	Status  int         `json:"status,omitempty"`
	Service string      `json:"service,omitempty"`
}

const routeFile = `
version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  web: {url: "WEB"}
  orders: {url: "SVC", audience: orders-svc}
routes:
  - {name: shop, match: {prefix: /shop}, to: web, auth: {policy: session}}
  - {name: account, match: {prefix: /account}, to: web, auth: {policy: session, levels: [logged_on]}}
  - {name: welcome, match: {prefix: /welcome}, to: web, auth: {policy: session, levels: [anonymous]}}
  - {name: orders, match: {prefix: /api/orders}, to: orders, auth: {policy: oauth2}}
  - {name: legacy-shop, match: {prefix: /legacy}, to: legacy, auth: {policy: session}}
  - {name: open, match: {prefix: /open}, to: web}
`

// sessionEnds is how the process wires the ends of sessions: this
// process's caches at once, then (here) no other instance.
type sessionEnds struct{ f *revocation.Fanout }

func (n sessionEnds) Publish(_ context.Context, hashes []string) error {
	n.f.Revoked(hashes)
	return nil
}
func (n sessionEnds) Listen(ctx context.Context, _ func([]string), _ func()) {
	<-ctx.Done()
}

func newWorld(t testing.TB, tune ...func(*session.Options)) *world {
	t.Helper()
	return buildWorld(t, nil, tune...)
}

// buildWorld is newWorld with the IDP's configuration tuned too.
func buildWorld(t testing.TB, idpTune func(*idp.Config), tune ...func(*session.Options)) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{clk: &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry()}
	st := memory.New()
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + idpSrv.Listener.Addr().String()
	ic := idp.Config{Issuer: issuer, Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		LoginRate: rate.Every(time.Hour), LoginBurst: 100, FailureRate: rate.Every(time.Hour), FailureBurst: 100}
	if idpTune != nil {
		idpTune(&ic)
	}
	w.p, err = idp.New(idp.Options{Config: ic, Store: st, Keys: keys, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.p.Close)
	idpSrv.Config.Handler = w.p.Handler()
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	jptKeys, err := idp.NewKeyManager(ctx, st.JPTKeys(), idp.KeyOptions{Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	fan := &revocation.Fanout{}
	w.m, err = idpsession.New(idpsession.Options{Store: st, Users: w.p, Keys: jptKeys, Issuer: issuer, Notices: sessionEnds{fan}, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.p.OnUserRevoked(w.m.EndUser)
	o := session.Options{Manager: w.m, UpdateKeys: []string{"cart_id", "locale"}, MaxUpdateBytes: 256, Registerer: w.reg, Now: w.clk.Now}
	for _, f := range tune {
		f(&o)
	}
	if w.st, err = session.New(o); err != nil {
		t.Fatal(err)
	}
	stage, err := auth.New(auth.Options{Issuer: auth.Local{P: w.p, Sessions: w.m}, Now: w.clk.Now,
		Policies: map[string]strangler.AuthStage{"session": w.st}})
	if err != nil {
		t.Fatal(err)
	}
	fan.Local = []revocation.Cache{stage}
	w.p.OnRevoke(fan.Revoked)

	if w.verifier, err = verify.New(ctx, verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "orders-svc", Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	service := httptest.NewServer(w.verifier.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		_ = json.NewEncoder(rw).Encode(c)
	})))
	t.Cleanup(service.Close)
	monolith := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.monoMu.Lock()
		w.monoSeen = r.Header.Clone()
		w.monoMu.Unlock()
		io.WriteString(rw, "legacy")
	}))
	t.Cleanup(monolith.Close)
	front := httptest.NewUnstartedServer(nil)
	frontURL := "http://" + front.Listener.Addr().String()
	web := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/bench") {
			io.WriteString(rw, "ok") // the same small answer on every route
			return
		}
		a := app{Header: r.Header.Clone(), Method: r.Method}
		switch r.URL.Path {
		case "/shop/update":
			rw.Header().Set("X-Ficus-Context-Update", r.URL.Query().Get("u"))
		case "/shop/call":
			// The web app calls a service through the gateway with its JPT.
			req, _ := http.NewRequest("GET", frontURL+"/api/orders/1", nil)
			req.Header.Set("Authorization", "Bearer "+r.Header.Get("X-Ficus-JPT"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.Status, a.Service = resp.StatusCode, string(b)
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(a)
	}))
	t.Cleanup(web.Close)

	gw, err := strangler.New(strangler.Options{Auth: stage, OwnedCookies: []string{"ficus_session", "ficus_visitor"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := routes.Parse("routes.yaml", []byte(strings.NewReplacer("MONO", monolith.URL, "WEB", web.URL, "SVC", service.URL).Replace(routeFile)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range w.st.Paths() {
		mux.Handle(p, w.st.Endpoints())
	}
	mux.Handle("/", gw)
	front.Config.Handler = mux
	front.Start()
	t.Cleanup(front.Close)
	w.front = front
	return w
}

// user creates a user and returns its id.
func (w *world) user(t testing.TB, name, customer string) string {
	t.Helper()
	id, err := w.p.CreateUser(context.Background(), idp.NewUser{Username: name, Password: "password-" + name, CustomerNumber: customer})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// browser is a cookie-jar client of the world, sending what a browser
// sends: Origin on POSTs (same origin unless told otherwise), no redirects
// followed.
type browser struct {
	w   *world
	c   *http.Client
	jar *cookiejar.Jar
}

func (w *world) browser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{w: w, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request; hdr are header pairs.
func (b *browser) do(t testing.TB, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.w.front.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// page gets a page of the web app and returns what the web app saw.
func (b *browser) page(t testing.TB, path string, hdr ...string) (*http.Response, app) {
	t.Helper()
	resp, body := b.do(t, "GET", path, nil, hdr...)
	var a app
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("GET %s: not the web app's answer: %s", path, body)
		}
	}
	return resp, a
}

// login posts credentials as JSON from the site's own origin.
func (b *browser) login(t testing.TB, user, password string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, _ := b.do(t, "POST", "/auth/login", bytes.NewReader(body), "Content-Type", "application/json", "Origin", b.w.front.URL)
	return resp
}

// cookie returns the value of a cookie in the jar.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.w.front.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie puts a cookie in the jar, as a forger would.
func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.w.front.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}
