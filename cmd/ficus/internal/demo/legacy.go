package demo

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/routes"
)

// The legacy web application's paths on the monolith, under LegacyPrefix.
const (
	// LegacyPrefix is where the legacy web application lives; every
	// other path of the monolith is go-httpbin's.
	LegacyPrefix = "/legacy/"
	// LegacyLoginPath shows the login form (GET) and logs on (POST).
	LegacyLoginPath = LegacyPrefix + "login"
	// LegacyLogoutPath ends the session (POST).
	LegacyLogoutPath = LegacyPrefix + "logout"
	// LegacyOrdersPath is the "my orders" page of the logged-on user.
	LegacyOrdersPath = LegacyPrefix + "orders"
	// LegacyWhoamiPath answers, in JSON, who owns the session cookie:
	// the endpoint a session bridge asks.
	LegacyWhoamiPath = LegacyPrefix + "whoami"
	// LegacySessionCookie is the legacy session cookie, named as a Java
	// servlet container names it.
	LegacySessionCookie = "JSESSIONID"
)

// Limits of the legacy web application: what an anonymous caller can make
// it hold or read.
const (
	legacySessionLifetime = 8 * time.Hour
	legacyMaxSessions     = 10000
	legacyMaxForm         = 16 << 10
)

// legacyCSP allows the pages nothing but their own HTML and posting forms
// to the same origin: they need no script, style or frame.
const legacyCSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Person is a demo user as both the monolith and the IDP know them.
type Person struct {
	// Username logs on.
	Username string
	// CustomerNumber and Name are shown on pages and carried in tokens.
	CustomerNumber, Name string
}

// DemoUser is the demo's one user, in the legacy monolith and in the IDP
// (with the same password).
var DemoUser = Person{Username: "demo", CustomerNumber: "C-0001", Name: "Demo User"}

// Order is one line on a "my orders" page.
type Order struct {
	Number, Item, Status string
}

// DemoOrders are the orders the "my orders" page lists, on the monolith
// and on the new service alike.
var DemoOrders = []Order{
	{Number: "1001", Item: "Fig tree, 2 m", Status: "delivered"},
	{Number: "1002", Item: "Aerial roots, 5 kg", Status: "shipped"},
}

// legacy is the legacy web application: a login form, a JSESSIONID
// session, a "my orders" page, logout and a JSON "who am I" endpoint, in
// front of go-httpbin (next) for every other path. Sessions live in
// memory, keyed by a SHA-256 hash of the cookie value.
type legacy struct {
	user     Person
	password string
	next     http.Handler
	now      func() time.Time

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]time.Time // cookie hash → expiry
}

// Monolith is the demo's legacy monolith: a small legacy web application
// under LegacyPrefix, where DemoUser logs on with password, in front of
// go-httpbin.
func Monolith(password string) http.Handler {
	return newLegacy(DemoUser, password, Httpbin(), time.Now)
}

func newLegacy(user Person, password string, next http.Handler, now func() time.Time) *legacy {
	return &legacy{user: user, password: password, next: next, now: now, sessions: map[[sha256.Size]byte]time.Time{}}
}

// legacyPaths are the legacy web application's pages, matched as a
// route's match.prefix is, in the order of legacy.ServeHTTP's cases.
var legacyPaths = mustPrefixes(LegacyLoginPath, LegacyLogoutPath, LegacyOrdersPath, LegacyWhoamiPath, strings.TrimSuffix(LegacyPrefix, "/"))

// mustPrefixes compiles prefixes that are known to be valid.
func mustPrefixes(prefixes ...string) *routes.Prefixes {
	ps, err := routes.CompilePrefixes(prefixes)
	if err != nil {
		panic(err)
	}
	return ps
}

// ServeHTTP picks the page by the path as ficus normalises and matches
// it, so that every spelling ficus sends here is the same page.
func (l *legacy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := routes.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, "bad path: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch legacyPaths.Match(p) {
	case 0:
		l.login(w, r)
	case 1:
		l.logout(w, r)
	case 2:
		l.orders(w, r)
	case 3:
		l.whoami(w, r)
	case 4:
		http.Redirect(w, r, LegacyOrdersPath, http.StatusFound)
	default:
		l.next.ServeHTTP(w, r)
	}
}

var legacyPages = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Legacy shop</title></head>
<body>
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Login}}<form method="post" action="` + LegacyLoginPath + `">
<p><label>User name <input id="username" name="username" autocomplete="username" required></label></p>
<p><label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label></p>
<p><button id="login" type="submit">Log in</button></p>
</form>{{end}}
{{with .User}}<p id="user">Logged on as <b id="name">{{.Name}}</b> (customer {{.CustomerNumber}})</p>{{end}}
{{if .Orders}}<table id="orders"><tr><th>Order</th><th>Item</th><th>Status</th></tr>
{{range .Orders}}<tr><td>{{.Number}}</td><td>{{.Item}}</td><td>{{.Status}}</td></tr>
{{end}}</table>{{end}}
{{if .User}}<form method="post" action="` + LegacyLogoutPath + `"><button id="logout" type="submit">Log out</button></form>{{end}}
<p id="served-by">{{.ServedBy}}</p>
</body></html>
`))

// PageData is what an HTML page of the demo shows.
type PageData struct {
	Title, Message string
	// Login shows the login form.
	Login bool
	// User is the logged-on user, if any; the page then offers logout.
	User *Person
	// Orders are listed in a table.
	Orders []Order
	// ServedBy says which side answered, for people and the browser test.
	ServedBy string
}

// RenderPage writes an HTML page of the legacy web application's look,
// with a Content-Security-Policy that allows no script.
func RenderPage(w http.ResponseWriter, status int, d PageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", legacyCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = legacyPages.Execute(w, d)
}

const servedByMonolith = "served by the monolith (legacy web app)"

func (l *legacy) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		d := PageData{Title: "Log in", Login: true, ServedBy: servedByMonolith}
		if r.URL.Query().Has("logged_out") {
			d.Message = "You are logged out."
		}
		RenderPage(w, http.StatusOK, d)
	case http.MethodPost:
		if !sameOrigin(r) {
			http.Error(w, "cross-site form post refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, legacyMaxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		userOK := subtle.ConstantTimeCompare([]byte(r.PostForm.Get("username")), []byte(l.user.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(l.password)) == 1
		if !userOK || !passOK {
			RenderPage(w, http.StatusUnauthorized, PageData{Title: "Log in", Login: true, ServedBy: servedByMonolith,
				Message: "Wrong user name or password."})
			return
		}
		value, err := l.newSession()
		if err != nil {
			http.Error(w, "cannot start a session", http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: LegacySessionCookie, Value: value, Path: "/", HttpOnly: true,
			Secure: secure(r), SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, LegacyOrdersPath, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (l *legacy) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-site form post refused", http.StatusForbidden)
		return
	}
	if c, err := r.Cookie(LegacySessionCookie); err == nil {
		l.mu.Lock()
		delete(l.sessions, sha256.Sum256([]byte(c.Value)))
		l.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: LegacySessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, LegacyLoginPath+"?logged_out=1", http.StatusSeeOther)
}

func (l *legacy) orders(w http.ResponseWriter, r *http.Request) {
	if !l.loggedOn(r) {
		http.Redirect(w, r, LegacyLoginPath, http.StatusFound)
		return
	}
	u := l.user
	RenderPage(w, http.StatusOK, PageData{Title: "My orders", User: &u, Orders: DemoOrders, ServedBy: servedByMonolith})
}

// whoamiAnswer is the JSON the legacy "who am I" endpoint answers:
// LoggedOn false and no User when the session cookie is missing, unknown
// or expired.
type whoamiAnswer struct {
	LoggedOn bool        `json:"logged_on"`
	User     *whoamiUser `json:"user,omitempty"`
}

type whoamiUser struct {
	ID             string `json:"id"`
	CustomerNumber string `json:"customer_number"`
	Name           string `json:"name"`
}

func (l *legacy) whoami(w http.ResponseWriter, r *http.Request) {
	var a whoamiAnswer
	if l.loggedOn(r) {
		a = whoamiAnswer{LoggedOn: true, User: &whoamiUser{ID: l.user.Username, CustomerNumber: l.user.CustomerNumber, Name: l.user.Name}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(a)
}

// newSession stores a new session and returns its cookie value (256
// random bits). At legacyMaxSessions the expired ones go first, then the
// one closest to expiry.
func (l *legacy) newSession() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	value := base64.RawURLEncoding.EncodeToString(b[:])
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sessions) >= legacyMaxSessions {
		var oldest [sha256.Size]byte
		var oldestExp time.Time
		for k, exp := range l.sessions {
			if !exp.After(now) {
				delete(l.sessions, k)
			} else if oldestExp.IsZero() || exp.Before(oldestExp) {
				oldest, oldestExp = k, exp
			}
		}
		if len(l.sessions) >= legacyMaxSessions {
			delete(l.sessions, oldest)
		}
	}
	l.sessions[sha256.Sum256([]byte(value))] = now.Add(legacySessionLifetime)
	return value, nil
}

// loggedOn reports whether r carries a live session cookie.
func (l *legacy) loggedOn(r *http.Request) bool {
	c, err := r.Cookie(LegacySessionCookie)
	if err != nil {
		return false
	}
	key := sha256.Sum256([]byte(c.Value))
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.sessions[key]
	if ok && !exp.After(l.now()) {
		delete(l.sessions, key)
		return false
	}
	return ok
}

// sameOrigin refuses form posts a browser says come from another site;
// requests without Sec-Fetch-Site (curl, old browsers) pass.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// secure reports whether the browser reached ficus over HTTPS, so that the
// session cookie is marked Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
