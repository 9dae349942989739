package federation_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
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
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/federation"
	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	websession "github.com/ficus-gw/ficus/strangler/session"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	zstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"
)

// fedStore is what the rig's ficus keeps: the IDP's, the sessions' and
// federation's storage, as both real stores offer it.
type fedStore interface {
	idp.Storage
	idpsession.Storage
	federation.Storage
}

// rig is ficus with federated login, in front of two real upstream
// OpenID Providers: the zitadel example OP (its in-memory storage, its
// own login form) and tinyOP; an RP whose redirect URI records what it
// gets; and a browser with a cookie jar.
type rig struct {
	st      fedStore
	mem     *memory.Store // nil on PostgreSQL
	p       *idp.Provider
	fed     *federation.Federation
	web     *websession.Stage
	m       *idpsession.Manager
	front   string // ficus's base URL
	zitadel string // the zitadel OP's issuer
	tiny    *tinyOP
	rpURL   string
	rpCode  chan url.Values
	secret  string // the RP client's secret at ficus
}

// zitadelUsers are the accounts of the zitadel OP.
const zitadelUsers = `{
 "z1": {"ID": "z1", "Username": "alice", "Password": "verysecure", "FirstName": "Alice", "LastName": "Doe",
        "Email": "alice@example.com", "EmailVerified": true, "PreferredLanguage": "en"},
 "z2": {"ID": "z2", "Username": "mallory", "Password": "verysecure", "FirstName": "Mallory", "LastName": "M",
        "Email": "bob@example.com", "EmailVerified": false, "PreferredLanguage": "en"},
 "z3": {"ID": "z3", "Username": "carol", "Password": "verysecure", "FirstName": "Carol", "LastName": "C",
        "Email": "Carol@Example.com", "EmailVerified": true, "PreferredLanguage": "en"},
 "z4": {"ID": "z4", "Username": "eve", "Password": "verysecure", "FirstName": "Eve", "LastName": "E",
        "Email": "dave@example.com", "EmailVerified": false, "PreferredLanguage": "en"}
}`

var registerOnce sync.Mutex

func newRig(t *testing.T, pg bool, tune ...func(*federation.Config)) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{rpCode: make(chan url.Values, 4)}
	if pg {
		pool := pgtest.NewPool(t)
		if err := postgres.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		r.st = postgres.New(pool)
	} else {
		r.mem = memory.New()
		r.st = r.mem
	}

	// The relying party: a client of ficus whose redirect URI records the
	// code (or error) it receives.
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.rpCode <- req.URL.Query()
		io.WriteString(w, "rp got it")
	}))
	t.Cleanup(rp.Close)
	r.rpURL = rp.URL + "/cb"

	// ficus.
	front := httptest.NewUnstartedServer(nil)
	r.front = "http://" + front.Listener.Addr().String()
	keys, err := idp.NewKeyManager(ctx, r.st, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.p, err = idp.New(idp.Options{Config: idp.Config{Issuer: r.front, Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}},
		Store: r.st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.p.Close)
	if r.secret, err = r.p.CreateClient(ctx, idp.NewClient{ID: "rp", Grants: []string{idp.GrantAuthorizationCode, "introspection"},
		Scopes: []string{"orders.read", "orders.write", "admin"}, RedirectURIs: []string{r.rpURL}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []idp.NewUser{
		{Username: "bob", Password: "bob-password", Claims: map[string]any{"email": "bob@example.com"}},
		{Username: "carol", Password: "carol-password", Claims: map[string]any{"email": "carol@example.com", "legacy_user_id": "77"}},
	} {
		if _, err := r.p.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}

	// The zitadel example OP, on "localhost" (ficus is on 127.0.0.1: the
	// browser keeps their cookies apart).
	zl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.zitadel = "http://localhost:" + strings.TrimPrefix(zl.Addr().String(), "127.0.0.1:")
	usersFile := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, []byte(zitadelUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := zstorage.StoreFromFile(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	// The example registers clients in a package-level map.
	registerOnce.Lock()
	zstorage.RegisterClients(zstorage.WebClient("ficus-"+strings.TrimPrefix(r.front, "http://127.0.0.1:"), "zitadel-secret",
		r.front+"/oauth2/federation/zitadel/callback"))
	registerOnce.Unlock()
	zsrv := &httptest.Server{Listener: zl, Config: &http.Server{Handler: exampleop.SetupServer(r.zitadel, zstorage.NewStorage(users),
		slog.New(slog.DiscardHandler), false)}}
	zsrv.Start()
	t.Cleanup(zsrv.Close)

	r.tiny = newTinyOP(t)

	cfg := federation.Config{Providers: []federation.ProviderConfig{
		{Name: "zitadel", DisplayName: "Zitadel", Issuer: r.zitadel, ClientID: "ficus-" + strings.TrimPrefix(r.front, "http://127.0.0.1:"),
			ClientSecret: "env:ZITADEL_SECRET", UserInfo: true, CreateUsers: true, LinkByVerifiedEmail: true,
			Claims: map[string]string{"email": "email", "name": "name", "given_name": "given_name"}},
		{Name: "tiny", DisplayName: "Tiny", Issuer: r.tiny.issuer, ClientID: "tiny-client", ClientSecret: "env:TINY_SECRET",
			CreateUsers: true, Roles: federation.Roles{Claim: "groups", Map: []federation.Role{
				{Group: "ops", Level: "staff", Scopes: []string{"admin", "orders.write"}},
				{Group: "customers", Level: "customer", Scopes: []string{"orders.write"}},
			}}},
	}}
	for _, f := range tune {
		f(&cfg)
	}
	secrets := map[string]string{"env:ZITADEL_SECRET": "zitadel-secret", "env:TINY_SECRET": tinySecret}
	r.fed, err = federation.New(federation.Options{Config: cfg, Store: r.st, IDP: r.p, BaseURL: r.front,
		KEK: []byte("0123456789abcdef0123456789abcdef"), Secret: func(ref string) (string, error) { return secrets[ref], nil }})
	if err != nil {
		t.Fatal(err)
	}
	r.p.SetUpstreamLogins(r.fed)

	// The web session layer, with the same upstreams at /auth/login.
	var jptStore idp.KeyStorage
	if r.mem != nil {
		jptStore = r.mem.JPTKeys()
	} else {
		jptStore = r.st.(*postgres.Store).JPTKeys()
	}
	jptKeys, err := idp.NewKeyManager(ctx, jptStore, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.m, err = idpsession.New(idpsession.Options{Store: r.st, Users: r.p, Keys: jptKeys, Issuer: r.front}); err != nil {
		t.Fatal(err)
	}
	if r.web, err = websession.New(websession.Options{Manager: r.m, Federation: r.fed}); err != nil {
		t.Fatal(err)
	}
	r.fed.SetSessions(r.web)

	idpH, fedH, sessH := r.p.Handler(), r.fed.Handler(), r.web.Endpoints()
	front.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasPrefix(req.URL.Path, "/oauth2/federation/"):
			fedH.ServeHTTP(w, req)
		case strings.HasPrefix(req.URL.Path, "/auth/"):
			sessH.ServeHTTP(w, req)
		case strings.HasPrefix(req.URL.Path, "/oauth2/"):
			idpH.ServeHTTP(w, req)
		default:
			io.WriteString(w, "the site: "+req.URL.Path)
		}
	})
	front.Start()
	t.Cleanup(front.Close)
	return r
}

// browser is a cookie-jar client. With stopAt set, it does not follow a
// redirect to a URL with that prefix, and answers the redirect itself.
type browser struct {
	c      *http.Client
	stopAt string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stopAt != "" && strings.HasPrefix(req.URL.String(), b.stopAt) {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is an answer read whole.
type page struct {
	status int
	url    *url.URL
	body   string
	loc    string
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), loc: resp.Header.Get("Location")}
}

func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(t, req)
}

func (b *browser) post(t *testing.T, u string, form url.Values, header ...string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(t, req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page's form.
func hidden(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// rpLogin is the RP's side of an authorization request: its PKCE
// verifier and state.
type rpLogin struct {
	conf     oauth2.Config
	verifier string
	state    string
}

func (r *rig) rpConfig(scopes ...string) *rpLogin {
	return &rpLogin{conf: oauth2.Config{ClientID: "rp", ClientSecret: r.secret, RedirectURL: r.rpURL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: r.front + "/oauth2/authorize", TokenURL: r.front + "/oauth2/token"}},
		verifier: oauth2.GenerateVerifier(), state: "rp-state-1"}
}

// startFederated opens ficus's login page for the RP and presses the
// button of the upstream name; the answer is wherever the browser ends.
func (r *rig) startFederated(t *testing.T, b *browser, rl *rpLogin, name string) page {
	t.Helper()
	login := b.get(t, rl.conf.AuthCodeURL(rl.state, oauth2.S256ChallengeOption(rl.verifier)))
	if login.status != 200 || !strings.Contains(login.body, `name="upstream" value="`+name+`"`) {
		t.Fatalf("login page: %d without the %s button:\n%s", login.status, name, login.body)
	}
	form := hidden(login.body)
	form.Set("upstream", name)
	return b.post(t, r.front+"/oauth2/authorize", form)
}

// zitadelLogin fills the zitadel OP's login form on p.
func zitadelLogin(t *testing.T, b *browser, p page, user string) page {
	t.Helper()
	if !strings.Contains(p.body, `action="/login/username"`) {
		t.Fatalf("not the zitadel login page: %d %s\n%s", p.status, p.url, p.body)
	}
	id := hidden(p.body).Get("id")
	return b.post(t, p.url.Scheme+"://"+p.url.Host+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {"verysecure"}})
}

// code returns what the RP received, or fails when it got nothing.
func (r *rig) code(t *testing.T) url.Values {
	t.Helper()
	select {
	case v := <-r.rpCode:
		return v
	default:
		t.Fatal("the RP received nothing")
		return nil
	}
}

// noCode fails when the RP received anything.
func (r *rig) noCode(t *testing.T) {
	t.Helper()
	select {
	case v := <-r.rpCode:
		t.Fatalf("the RP received %v", v)
	default:
	}
}

// exchange redeems the RP's code at ficus and returns the token and the
// introspection of its access token.
func (r *rig) exchange(t *testing.T, rl *rpLogin, got url.Values) (*oauth2.Token, map[string]any) {
	t.Helper()
	if got.Get("state") != rl.state || got.Get("code") == "" {
		t.Fatalf("the RP received %v", got)
	}
	tok, err := rl.conf.Exchange(context.Background(), got.Get("code"), oauth2.VerifierOption(rl.verifier))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, r.front+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", r.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	return tok, in
}

// events returns the audit events named event (memory store only), after
// the auditor's batch has been written.
func (r *rig) events(t *testing.T, event string, atLeast int) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	waittest.For(t, "audit event "+event, func() bool {
		out = out[:0]
		for _, e := range r.mem.AuditEvents() {
			if e.Event == event {
				out = append(out, e)
			}
		}
		return len(out) >= atLeast
	})
	return out
}

// noEvent fails when event was audited (after a later event shows the
// trail is written up to now).
func (r *rig) countEvents(event string) int {
	n := 0
	for _, e := range r.mem.AuditEvents() {
		if e.Event == event {
			n++
		}
	}
	return n
}
