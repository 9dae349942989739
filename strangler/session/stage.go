package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"time"

	idpsession "github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Headers name the headers of the session layer. Each is owned by ficus:
// a browser's copy is removed from every request (strangler.Options
// OwnedHeaders), and the web app's context update never reaches the
// browser. Empty fields take the defaults below.
type Headers struct {
	// User carries the user id to the web app (absent while anonymous).
	// Default X-Ficus-User.
	User string
	// Customer carries the customer number (absent when the user has
	// none). Default X-Ficus-Customer.
	Customer string
	// Level carries anonymous, returning or logged_on. Default X-Ficus-Level.
	Level string
	// LoginTime carries the login time, RFC 3339 in UTC (logged_on only).
	// Default X-Ficus-Login-Time.
	LoginTime string
	// Attrs carries the session attributes as one JSON object of strings,
	// ASCII only (absent when there are none). Default
	// X-Ficus-Session-Attrs.
	Attrs string
	// JPT carries the session's JPT. Default X-Ficus-JPT.
	JPT string
	// CSRF carries the session's CSRF token, for pages to put in forms or
	// scripts to send as X-CSRF-Token. Default X-Ficus-CSRF-Token.
	CSRF string
	// Update is the response header in which a web app sends context
	// updates: a JSON object of strings (null clears a key). Default
	// X-Ficus-Context-Update.
	Update string
}

// Names returns the header names, defaults applied, in canonical form.
func (h Headers) Names() []string {
	h = h.withDefaults()
	return []string{h.User, h.Customer, h.Level, h.LoginTime, h.Attrs, h.JPT, h.CSRF, h.Update}
}

func (h Headers) withDefaults() Headers {
	for _, f := range []struct {
		v   *string
		def string
	}{{&h.User, "X-Ficus-User"}, {&h.Customer, "X-Ficus-Customer"}, {&h.Level, "X-Ficus-Level"},
		{&h.LoginTime, "X-Ficus-Login-Time"}, {&h.Attrs, "X-Ficus-Session-Attrs"}, {&h.JPT, "X-Ficus-JPT"},
		{&h.CSRF, "X-Ficus-CSRF-Token"}, {&h.Update, "X-Ficus-Context-Update"}} {
		if *f.v == "" {
			*f.v = f.def
		}
		*f.v = textproto.CanonicalMIMEHeaderKey(*f.v)
	}
	return h
}

// Options configure a Stage. Zero values take the defaults on each field.
type Options struct {
	// Manager runs the sessions. Required.
	Manager *idpsession.Manager
	// Cookie is the session cookie's name. Default ficus_session.
	Cookie string
	// VisitorCookie is the returning-visitor cookie's name. Default
	// ficus_visitor.
	VisitorCookie string
	// AlwaysSecure marks the cookies Secure on every response. False:
	// only on HTTPS, which is a TLS connection or, from a trusted proxy,
	// X-Forwarded-Proto https.
	AlwaysSecure bool
	// VisitorTTL is the Max-Age of the visitor cookie, set again on every
	// visit. Default 7 days (the Manager's own default).
	VisitorTTL time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For and -Proto are
	// believed (the client's address for login limits, HTTPS).
	TrustedProxies []netip.Prefix
	// Headers name the headers to and from the web app.
	Headers Headers
	// UpdateKeys are the attributes a web app may set; an update naming
	// another key is refused whole. Empty: no updates are accepted.
	UpdateKeys []string
	// MaxUpdateBytes bounds a context update header, and the attributes of
	// a session as they are sent to the web app. Default 4096.
	MaxUpdateBytes int
	// AllowedOrigins are origins (scheme://host[:port]) besides the
	// request's own host whose state-changing requests are accepted.
	AllowedOrigins []string
	// RedirectHosts are hosts to which a login or logout may redirect
	// with an absolute http(s) return_to URL. Empty: only paths of the
	// site itself.
	RedirectHosts []string
	// StartsPerMinute bounds the new sessions one client address (an IPv6
	// client by its /64) may start per minute, the burst the same: each
	// writes a session and a visitor to the store. Past it the request
	// gets 429 with Retry-After. Default DefaultStartsPerMinute.
	StartsPerMinute float64
	// LoginPath and LogoutPath are the front door's login and logout
	// endpoints. Defaults /auth/login and /auth/logout.
	LoginPath, LogoutPath string
	// Federation, if set, lets a login name an upstream identity provider
	// (provider=NAME) instead of a password (idp/federation). Nil: only
	// passwords.
	Federation Federation
	// Registerer receives the stage's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger receives refusals and failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock of cookie lifetimes. Default time.Now.
	Now func() time.Time
}

// Federation is federated login as the login endpoint sees it
// (idp/federation.Federation).
type Federation interface {
	// Has reports whether name is a configured upstream.
	Has(name string) bool
	// BeginSession answers r by sending the browser to the upstream name;
	// the login ends in the Stage's LoginFederated.
	BeginSession(w http.ResponseWriter, r *http.Request, name, returnTo string)
}

// Stage is the strangler.AuthStage of `policy: session` routes, and the
// handler of the login and logout endpoints (Endpoints). Safe for
// concurrent use.
type Stage struct {
	o       Options
	m       *idpsession.Manager
	h       Headers
	keys    map[string]bool
	cop     *http.CrossOriginProtection
	addr    *clientaddr.Resolver
	starts  *startLimit
	metrics metrics
}

var _ strangler.AuthStage = (*Stage)(nil)

// New returns a Stage. An allowed origin that is not scheme://host[:port]
// is an error.
func New(o Options) (*Stage, error) {
	if o.Manager == nil {
		return nil, errors.New("session: a manager is required")
	}
	if o.Cookie == "" {
		o.Cookie = "ficus_session"
	}
	if o.VisitorCookie == "" {
		o.VisitorCookie = "ficus_visitor"
	}
	if o.Cookie == o.VisitorCookie {
		return nil, fmt.Errorf("session: the session and visitor cookies are both named %s", o.Cookie)
	}
	if o.VisitorTTL == 0 {
		o.VisitorTTL = 7 * 24 * time.Hour
	}
	if o.MaxUpdateBytes == 0 {
		o.MaxUpdateBytes = 4096
	}
	if o.StartsPerMinute < 0 {
		return nil, fmt.Errorf("session: starts per minute must not be negative (got %v)", o.StartsPerMinute)
	}
	if o.StartsPerMinute == 0 {
		o.StartsPerMinute = DefaultStartsPerMinute
	}
	if o.LoginPath == "" {
		o.LoginPath = "/auth/login"
	}
	if o.LogoutPath == "" {
		o.LogoutPath = "/auth/logout"
	}
	for _, p := range []*string{&o.LoginPath, &o.LogoutPath} {
		n, err := routes.NormalizePath(*p)
		if err != nil || !strings.HasPrefix(n, "/") {
			return nil, fmt.Errorf("session: endpoint path %q: %v", *p, err)
		}
		*p = n
	}
	if o.LoginPath == o.LogoutPath {
		return nil, fmt.Errorf("session: login and logout are both %s", o.LoginPath)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	st := &Stage{o: o, m: o.Manager, h: o.Headers.withDefaults(), keys: map[string]bool{},
		cop: http.NewCrossOriginProtection(), addr: clientaddr.New(o.TrustedProxies),
		starts: newStartLimit(o.StartsPerMinute), metrics: newMetrics(o.Registerer)}
	for _, k := range o.UpdateKeys {
		st.keys[k] = true
	}
	for _, origin := range o.AllowedOrigins {
		if err := st.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("session: allowed origin: %w", err)
		}
	}
	return st, nil
}

// Paths returns the normalised paths of the login and logout endpoints,
// which the front door gives to Endpoints.
func (st *Stage) Paths() []string { return []string{st.o.LoginPath, st.o.LogoutPath} }

// Authorize implements strangler.AuthStage for `policy: session` routes:
// it finds the browser's session, or starts one (Set-Cookie), refuses a
// cross-site state-changing request (403) and a level the route does not
// admit (401 when logging on would help, else 403).
func (st *Stage) Authorize(w http.ResponseWriter, r *http.Request, route *routes.Route) (strangler.Grant, bool) {
	ctx := r.Context()
	s, cookie, err := st.current(ctx, r)
	if err != nil {
		st.unavailable(w, err)
		return nil, false
	}
	if unsafeMethod(r.Method) {
		// No cookie, no ambient authority to abuse: a request without a
		// session cannot act as anyone.
		if err := st.checkCSRF(r, cookie, "", cookie == ""); err != nil {
			st.refuseCSRF(w, r, err, "route")
			return nil, false
		}
	}
	if s == nil {
		if !st.mayStart(w, r, false) {
			return nil, false
		}
		if s, cookie, err = st.start(ctx, w, r); err != nil {
			st.unavailable(w, err)
			return nil, false
		}
	}
	if levels := route.Auth.Levels; len(levels) > 0 && !slices.Contains(levels, s.Level) {
		st.refuseLevel(w, levels, s.Level)
		return nil, false
	}
	return &grant{st: st, s: s, cookie: cookie}, true
}

// current returns the live session named by the request's session cookie
// and the cookie's value, or nil and "" when there is none. A value that
// cannot be a ficus cookie is not looked up.
func (st *Stage) current(ctx context.Context, r *http.Request) (*idpsession.Session, string, error) {
	v := cookieValue(r, st.o.Cookie)
	if v == "" {
		return nil, "", nil
	}
	s, err := st.m.Lookup(ctx, v)
	if errors.Is(err, idpsession.ErrNoSession) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return s, v, nil
}

// start begins a session for a browser that has none, setting its
// cookies on w.
func (st *Stage) start(ctx context.Context, w http.ResponseWriter, r *http.Request) (*idpsession.Session, string, error) {
	s, cookie, visitor, err := st.m.Start(ctx, cookieValue(r, st.o.VisitorCookie))
	if err != nil {
		return nil, "", err
	}
	st.metrics.started.WithLabelValues(s.Level).Inc()
	st.setSessionCookie(w, r, s, cookie)
	if visitor != "" {
		st.setCookie(w, r, st.o.VisitorCookie, visitor, int(st.o.VisitorTTL/time.Second))
	}
	return s, cookie, nil
}

// mayStart charges the client's address for a new session; over the limit
// it answers 429 (JSON, or text for a form login) and returns false.
func (st *Stage) mayStart(w http.ResponseWriter, r *http.Request, text bool) bool {
	ok, retry := st.starts.allow(st.addr.Addr(r), st.o.Now())
	if ok {
		return true
	}
	st.metrics.startsLimited.Inc()
	w.Header().Set("Retry-After", retry)
	answer(w, !text, http.StatusTooManyRequests, "rate_limited", "too many new sessions from this address; try again later")
	return false
}

// setSessionCookie sets the session cookie, living as long as the session
// may (its absolute end; the idle timeout is the server's).
func (st *Stage) setSessionCookie(w http.ResponseWriter, r *http.Request, s *idpsession.Session, value string) {
	maxAge := int(s.Expires.Sub(st.o.Now()) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	st.setCookie(w, r, st.o.Cookie, value, maxAge)
}

// setCookie adds a ficus cookie: HttpOnly, SameSite=Lax, Path=/, Secure on
// HTTPS. maxAge < 0 deletes the cookie.
func (st *Stage) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: st.secure(r)}
	w.Header().Add("Set-Cookie", c.String())
}

// secure reports whether the browser talks HTTPS to ficus (or the
// configuration says to assume it).
func (st *Stage) secure(r *http.Request) bool {
	if st.o.AlwaysSecure || r.TLS != nil {
		return true
	}
	return st.addr.Trusted(clientaddr.Peer(r)) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// cookieValue returns the first cookie named name that could be a ficus
// cookie value (base64url of at least 32 random bytes), or "".
func cookieValue(r *http.Request, name string) string {
	for _, c := range r.CookiesNamed(name) {
		if plausible(c.Value) {
			return c.Value
		}
	}
	return ""
}

// plausible reports whether v has the form of a ficus cookie value; any
// other value is not worth a look-up.
func plausible(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// unsafeMethod reports whether a request may change state: every method
// but GET, HEAD, OPTIONS and TRACE.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// refuseLevel answers a session whose level the route does not admit: 401
// with a hint at the login endpoint when logging on would help, else 403.
func (st *Stage) refuseLevel(w http.ResponseWriter, levels []string, level string) {
	st.metrics.refusedLevel.WithLabelValues(level).Inc()
	if level != idpsession.LevelLoggedOn && slices.Contains(levels, idpsession.LevelLoggedOn) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`FicusSession realm="ficus", login=%q`, st.o.LoginPath))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_required",
			"error_description": "this page needs you to log in", "login": st.o.LoginPath})
		return
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden",
		"error_description": "this page is for sessions at level " + strings.Join(levels, " or ")})
}

// unavailable answers 503 when the session store, or the IDP behind a
// login (and the legacy system it may ask), cannot answer now.
func (st *Stage) unavailable(w http.ResponseWriter, err error) {
	st.o.Logger.Error("session look-up failed", "error", err.Error())
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable",
		"error_description": "the session service is unavailable; retry in a moment"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// grant is an admitted browser session.
type grant struct {
	st     *Stage
	s      *idpsession.Session
	cookie string // the session cookie's value: the CSRF token is derived from it
}

var _ strangler.ResponseGrant = (*grant)(nil)

// Claim returns sub (the user id), level, customer_number, or a session
// attribute; sticky cohorts keyed by a claim read it.
func (g *grant) Claim(name string) string {
	switch name {
	case "sub":
		return g.s.UserID
	case "level":
		return g.s.Level
	case "customer_number":
		return g.s.CustomerNumber
	}
	return g.s.Attrs[name]
}

// Credential returns the user context and the JPT for the web app (the
// audience plays no part: a JPT's audience is the gateway, which swaps it
// for a JWT when the web app calls a service through it).
func (g *grant) Credential(ctx context.Context, _ string) (http.Header, error) {
	jpt, _, err := g.st.m.JPT(ctx, g.s)
	if err != nil {
		return nil, err
	}
	h, s := g.st.h, g.s
	out := make(http.Header, 7)
	out[h.Level] = []string{s.Level}
	out[h.JPT] = []string{jpt}
	out[h.CSRF] = []string{csrfToken(g.cookie)}
	if s.UserID != "" {
		out[h.User] = []string{s.UserID}
	}
	if s.CustomerNumber != "" {
		out[h.Customer] = []string{s.CustomerNumber}
	}
	if !s.LoginAt.IsZero() {
		out[h.LoginTime] = []string{s.LoginAt.UTC().Format(time.RFC3339)}
	}
	if len(s.Attrs) > 0 {
		out[h.Attrs] = []string{asciiJSON(s.Attrs)}
	}
	return out, nil
}

// UpstreamResponse takes the web app's context update out of its
// response, always, and applies it when it is valid; an invalid one is
// logged and counted and the response goes on to the browser.
func (g *grant) UpstreamResponse(resp *http.Response) error {
	vals := resp.Header.Values(g.st.h.Update)
	if len(vals) == 0 {
		return nil
	}
	resp.Header.Del(g.st.h.Update)
	st := g.st
	attrs, err := st.parseUpdate(vals, g.s.Attrs)
	if err != nil {
		st.metrics.updates.WithLabelValues("refused").Inc()
		st.o.Logger.Warn("context update refused", "reason", err.Error())
		return nil
	}
	if err := st.m.Update(resp.Request.Context(), g.s, attrs); err != nil {
		st.metrics.updates.WithLabelValues("failed").Inc()
		st.o.Logger.Error("context update not stored", "error", err.Error())
		return nil
	}
	st.metrics.updates.WithLabelValues("applied").Inc()
	return nil
}

type metrics struct {
	started      *prometheus.CounterVec
	refusedLevel *prometheus.CounterVec
	csrf         *prometheus.CounterVec
	updates      *prometheus.CounterVec
	logins       *prometheus.CounterVec
	// startsLimited counts requests refused for starting too many sessions
	// from one address.
	startsLimited prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_session_started_total",
			Help: "Web sessions started at a session route, by level (anonymous, returning)."}, []string{"level"}),
		refusedLevel: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_session_level_refusals_total",
			Help: "Requests refused because the route does not admit the session's level."}, []string{"level"}),
		csrf: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_session_csrf_refusals_total",
			Help: "State-changing requests refused as cross-site (CSRF), by where: route or endpoint."}, []string{"where"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_session_context_updates_total",
			Help: "Context updates sent by web apps, by result: applied, refused (invalid), failed (not stored)."}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_session_logins_total",
			Help: "Logins at the front door, by result: ok, failed, rate_limited, error."}, []string{"result"}),
		startsLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "ficus_session_starts_limited_total",
			Help: "Requests refused (429) because their address started too many sessions (sessions.starts_per_minute)."}),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.refusedLevel, m.csrf, m.updates, m.logins, m.startsLimited)
	}
	return m
}
