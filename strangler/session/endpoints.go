package session

import (
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/routes"
)

// maxFormBytes bounds a login or logout request's body.
const maxFormBytes = 16 << 10

// Endpoints returns the handler of the login and logout endpoints. The
// front door sends it the requests whose normalised path is one of Paths;
// any other path is answered 404.
func (st *Stage) Endpoints() http.Handler { return http.HandlerFunc(st.serveEndpoint) }

func (st *Stage) serveEndpoint(w http.ResponseWriter, r *http.Request) {
	p, err := routes.NormalizePath(r.URL.EscapedPath())
	switch {
	case err != nil:
		http.Error(w, "ficus: "+err.Error(), http.StatusBadRequest)
	case p == st.o.LoginPath:
		st.login(w, r)
	case p == st.o.LogoutPath:
		st.logout(w, r)
	default:
		http.NotFound(w, r)
	}
}

// form is what a login or logout request sends, as a form or as JSON.
type form struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	ReturnTo  string `json:"return_to"`
	CSRFToken string `json:"csrf_token"`
	// Provider names an upstream identity provider to log in with
	// instead of a password (Options.Federation).
	Provider string `json:"provider"`
	json     bool   // the caller speaks JSON: answers are JSON, not redirects
}

// readForm reads the body of a login or logout request: a form
// (application/x-www-form-urlencoded) or a JSON object, at most
// maxFormBytes; an empty body is an empty form. It answers a body it
// cannot read itself and returns false.
func readForm(w http.ResponseWriter, r *http.Request) (form, bool) {
	var f form
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	f.json = mt == "application/json" || strings.Contains(r.Header.Get("Accept"), "application/json")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var err error
	switch mt {
	case "application/json":
		dec := json.NewDecoder(r.Body)
		if err = dec.Decode(&f); err == nil && dec.More() {
			err = errors.New("more than one JSON value")
		}
	case "application/x-www-form-urlencoded":
		if err = r.ParseForm(); err == nil {
			f.Username, f.Password = r.PostForm.Get("username"), r.PostForm.Get("password")
			f.ReturnTo, f.CSRFToken = r.PostForm.Get("return_to"), r.PostForm.Get("csrf_token")
			f.Provider = r.PostForm.Get("provider")
		}
	case "":
		if r.ContentLength > 0 {
			err = errors.New("a body needs a Content-Type")
		}
	default:
		answer(w, f.json, http.StatusUnsupportedMediaType, "invalid_request", "send a form (application/x-www-form-urlencoded) or JSON (application/json)")
		return f, false
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, f.json, http.StatusRequestEntityTooLarge, "invalid_request", "the request body is too large")
		} else {
			answer(w, f.json, http.StatusBadRequest, "invalid_request", "the request body cannot be read: "+err.Error())
		}
		return f, false
	}
	return f, true
}

// answer writes an error as JSON to JSON callers, as text to the others.
func answer(w http.ResponseWriter, asJSON bool, status int, code, desc string) {
	if asJSON {
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "ficus: "+desc, status)
}

// endpointRequest reads what the login and logout endpoints share: a
// POST (else 405), its form, and the browser's current session (nil and ""
// without one). When it returns false it has answered.
func (st *Stage) endpointRequest(w http.ResponseWriter, r *http.Request, action string) (form, *idpsession.Session, string, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "ficus: "+action+" with POST", http.StatusMethodNotAllowed)
		return form{}, nil, "", false
	}
	f, ok := readForm(w, r)
	if !ok {
		return form{}, nil, "", false
	}
	s, cookie, err := st.current(r.Context(), r)
	if err != nil {
		st.unavailable(w, err)
		return form{}, nil, "", false
	}
	return f, s, cookie, true
}

// login is POST /auth/login: credentials checked by the identity provider
// (through idp/session's Login), the session upgraded to logged_on under
// a new id, then 303 to return_to when it is a path of this site (else
// /), or JSON for JSON callers. A refusal does not tell whether the user
// exists.
func (st *Stage) login(w http.ResponseWriter, r *http.Request) {
	f, s, cookie, ok := st.endpointRequest(w, r, "log in")
	if !ok {
		return
	}
	ctx := r.Context()
	// Login CSRF (an attacker's page logging the victim in as the
	// attacker) is refused like any cross-site request.
	if err := st.checkCSRF(r, cookie, f.CSRFToken, false); err != nil {
		st.refuseCSRF(w, r, err, "login")
		return
	}
	if f.Provider != "" {
		if st.o.Federation == nil || !st.o.Federation.Has(f.Provider) {
			answer(w, f.json, http.StatusBadRequest, "invalid_request", "there is no such identity provider")
			return
		}
		// The browser signs in there and comes back to the IDP's
		// callback, which ends in LoginFederated.
		st.o.Federation.BeginSession(w, r, f.Provider, f.ReturnTo)
		return
	}
	if f.Username == "" || f.Password == "" {
		answer(w, f.json, http.StatusBadRequest, "invalid_request", "username and password are required")
		return
	}
	if s == nil {
		// A login without a session starts one first, for its visitor
		// cookie: the browser comes back as this user's returning visitor.
		if !st.mayStart(w, r, !f.json) {
			return
		}
		var visitor string
		var err error
		if s, _, visitor, err = st.m.Start(ctx, cookieValue(r, st.o.VisitorCookie)); err != nil {
			st.unavailable(w, err)
			return
		}
		st.setCookie(w, r, st.o.VisitorCookie, visitor, int(st.o.VisitorTTL/time.Second))
	}
	ns, nc, err := st.m.Login(ctx, s, f.Username, f.Password, st.addr.Addr(r).String())
	var limited *idpsession.RateLimitError
	switch {
	case errors.As(err, &limited) || errors.Is(err, idpsession.ErrRateLimited):
		st.metrics.logins.WithLabelValues("rate_limited").Inc()
		secs := 1
		if limited != nil {
			secs = max(1, int(math.Ceil(limited.RetryAfter.Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		answer(w, f.json, http.StatusTooManyRequests, "rate_limited", "too many login attempts; try again later")
		return
	case errors.Is(err, idpsession.ErrLoginFailed):
		st.metrics.logins.WithLabelValues("failed").Inc()
		if f.json {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_failed", "error_description": "wrong username or password"})
			return
		}
		st.redirect(w, failureTarget(r))
		return
	case err != nil:
		st.metrics.logins.WithLabelValues("error").Inc()
		st.unavailable(w, err)
		return
	}
	st.metrics.logins.WithLabelValues("ok").Inc()
	st.setSessionCookie(w, r, ns, nc)
	target := st.returnTarget(f.ReturnTo)
	if f.json {
		writeJSON(w, http.StatusOK, map[string]string{"level": ns.Level, "user_id": ns.UserID, "return_to": target})
		return
	}
	st.redirect(w, target)
}

// LoginFederated logs the browser of r into a web session for u, whom an
// upstream identity provider authenticated (idp/federation calls it from
// its callback, after checking the login's state and the ID token): the
// browser's session, or a new one, is replaced with a logged-on session
// under a new cookie, then 303 to returnTo as a login does. amr is kept
// for the audit trail.
func (st *Stage) LoginFederated(w http.ResponseWriter, r *http.Request, u *store.User, amr []string, returnTo string) {
	ctx := r.Context()
	s, _, err := st.current(ctx, r)
	if err != nil {
		st.unavailable(w, err)
		return
	}
	if s == nil {
		if !st.mayStart(w, r, true) {
			return
		}
		var visitor string
		if s, _, visitor, err = st.m.Start(ctx, cookieValue(r, st.o.VisitorCookie)); err != nil {
			st.unavailable(w, err)
			return
		}
		st.setCookie(w, r, st.o.VisitorCookie, visitor, int(st.o.VisitorTTL/time.Second))
	}
	ns, nc, err := st.m.LoginUser(ctx, s, u, amr, time.Time{}, st.addr.Addr(r).String())
	switch {
	case errors.Is(err, idpsession.ErrLoginFailed):
		st.metrics.logins.WithLabelValues("failed").Inc()
		answer(w, false, http.StatusForbidden, "login_failed", "this account may not log in")
		return
	case err != nil:
		st.metrics.logins.WithLabelValues("error").Inc()
		st.unavailable(w, err)
		return
	}
	st.metrics.logins.WithLabelValues("ok").Inc()
	st.setSessionCookie(w, r, ns, nc)
	st.redirect(w, st.returnTarget(returnTo))
}

// logout is POST /auth/logout: the session ends (on every instance, with
// the tokens of its login), the session cookie is cleared and the visitor
// cookie stays; then 303 to return_to, or JSON.
func (st *Stage) logout(w http.ResponseWriter, r *http.Request) {
	f, s, cookie, ok := st.endpointRequest(w, r, "log out")
	if !ok {
		return
	}
	ctx := r.Context()
	if err := st.checkCSRF(r, cookie, f.CSRFToken, cookie == ""); err != nil {
		st.refuseCSRF(w, r, err, "logout")
		return
	}
	if s != nil {
		if err := st.m.Logout(ctx, s); err != nil && !errors.Is(err, idpsession.ErrNoSession) {
			st.unavailable(w, err)
			return
		}
	}
	st.setCookie(w, r, st.o.Cookie, "", -1)
	target := st.returnTarget(f.ReturnTo)
	if f.json {
		writeJSON(w, http.StatusOK, map[string]any{"logged_out": true, "return_to": target})
		return
	}
	st.redirect(w, target)
}

func (st *Stage) redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// returnTarget is where a login or logout redirects to: return_to when it
// is a path of this site (safeTarget) or an http(s) URL on one of the
// configured redirect hosts, else /.
func (st *Stage) returnTarget(raw string) string {
	if t, ok := safeTarget(raw); ok || len(st.o.RedirectHosts) == 0 {
		return t
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Opaque != "" ||
		strings.ContainsRune(raw, '\\') || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	for _, h := range st.o.RedirectHosts {
		if strings.EqualFold(u.Host, h) {
			return u.String()
		}
	}
	return "/"
}

// safeTarget returns raw as a redirect target when it is a path of this
// site — an absolute path, no scheme or host, no backslash or control
// character, in the one normal form of routes.NormalizePath, with its
// query — and "/" with false otherwise. //evil, /\evil, https://evil and
// their encoded spellings (%2F, %5C) are refused.
func safeTarget(raw string) (string, bool) {
	if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.ContainsRune(raw, '\\') {
		return "/", false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] == 0x7f {
			return "/", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/", false
	}
	p, err := routes.NormalizePath(u.EscapedPath())
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/", false
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p, true
}

// failureTarget is where a form login that failed goes back to: the page
// that sent the form (its Referer, when it is on this host), else /, with
// login_error=1 added to the query. Nothing in it says why.
func failureTarget(r *http.Request) string {
	target := "/"
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && ref.Host != "" && strings.EqualFold(ref.Host, r.Host) &&
		(ref.Scheme == "http" || ref.Scheme == "https") {
		rel := ref.EscapedPath()
		if ref.RawQuery != "" {
			rel += "?" + ref.RawQuery
		}
		target, _ = safeTarget(rel)
	}
	u, _ := url.Parse(target) // safeTarget's answers parse
	q := u.Query()
	q.Set("login_error", "1")
	u.RawQuery = q.Encode()
	return u.String()
}
