package bridge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/bearer"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Source is the value of the src claim of every bridged JWT: a service
// tells a user the monolith vouched for from a ficus user by it (and by
// client_id, the bridge's client).
const Source = "legacy-session"

// MaxCookieLen bounds the bridge cookie's name=value pairs in one request;
// a longer one is refused with 400 before it is hashed or sent anywhere.
const MaxCookieLen = 4096

// Minter signs JWTs for a resolved token: *idp.Provider.
type Minter interface {
	MintResolved(r *idp.Resolved, audience string) (string, time.Time, error)
}

// Options configure a Stage.
type Options struct {
	// Minter signs the JWTs; required.
	Minter Minter
	// Registerer receives the metrics. Nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// CacheSize bounds each bridge's answer cache (entries). Default
	// 100,000.
	CacheSize int
	// MaxInflight bounds each bridge's "who am I" calls in flight; more
	// are answered 503 without a call. Default 256.
	MaxInflight int
	// MaxBody bounds a "who am I" answer. Default 64 KiB.
	MaxBody int64
	// ReuseMargin: a JWT is handed out only while it has this long left,
	// and lives this long past its answer's cache lifetime. Default 30s.
	ReuseMargin time.Duration
	// Transport carries the "who am I" calls. Nil means a transport of
	// the stage's own (no proxy from the environment).
	Transport http.RoundTripper
}

// Stage is the strangler.AuthStage of policy bridge. Safe for concurrent
// use.
type Stage struct {
	o       Options
	client  *http.Client
	metrics *metrics
	mu      sync.Mutex
	states  sync.Map // bridge name → *state
}

var _ strangler.AuthStage = (*Stage)(nil)

// New returns a Stage.
func New(o Options) (*Stage, error) {
	if o.Minter == nil {
		return nil, errors.New("bridge: a minter (the identity provider) is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheSize == 0 {
		o.CacheSize = 100000
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 256
	}
	if o.MaxBody == 0 {
		o.MaxBody = 64 << 10
	}
	if o.ReuseMargin == 0 {
		o.ReuseMargin = 30 * time.Second
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
			ForceAttemptHTTP2:   true,
		}
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Stage{o: o, metrics: m, client: &http.Client{
		Transport: o.Transport,
		// A redirect means "not logged on" (to a login page): never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// state is one bridge's cache and settings, kept across rule reloads
// while the bridge's configuration stays the same.
type state struct {
	cfg      *routes.Bridge
	mapping  mapping
	ttl      time.Duration
	timeout  time.Duration
	method   string
	cache    *otter.Cache[string, *entry]
	sf       *singleflight.Group
	inflight chan struct{}
	counts   map[string]prometheus.Counter // by outcome
	duration prometheus.Observer
}

// entry is one cached answer about one cookie value.
type entry struct {
	until time.Time     // the answer is trusted until then
	res   *idp.Resolved // nil: not logged on
	mu    sync.Mutex
	jwts  map[string]minted // by header and audience
}

type minted struct {
	cred http.Header // the JWT header, and Cookie removed; shared
	exp  time.Time
}

// state returns the live state of b, building it when b is new or its
// configuration changed (a changed bridge starts with an empty cache).
func (s *Stage) state(b *routes.Bridge) *state {
	if v, ok := s.states.Load(b.Name()); ok && v.(*state).cfg == b {
		return v.(*state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old *state
	if v, ok := s.states.Load(b.Name()); ok {
		if old = v.(*state); old.cfg == b {
			return old
		}
	}
	st := &state{cfg: b, mapping: newMapping(b.Mapping), ttl: b.CacheTTL.Std(routes.DefaultBridgeCacheTTL),
		timeout: b.Whoami.Timeout.Std(routes.DefaultWhoamiTimeout), method: b.Whoami.Method}
	if st.method == "" {
		st.method = http.MethodGet
	}
	if old != nil && reflect.DeepEqual(*old.cfg, *b) {
		// The same bridge in a reloaded rule file: keep its answers.
		st.cache, st.sf, st.inflight, st.counts, st.duration = old.cache, old.sf, old.inflight, old.counts, old.duration
	} else {
		st.cache = otter.Must(&otter.Options[string, *entry]{MaximumSize: s.o.CacheSize,
			ExpiryCalculator: otter.ExpiryWriting[string, *entry](st.ttl)})
		st.sf = &singleflight.Group{}
		st.inflight = make(chan struct{}, s.o.MaxInflight)
		st.counts = map[string]prometheus.Counter{}
		for _, o := range []string{outcomeOK, outcomeAnonymous, outcomeError, outcomeTimeout, outcomeBusy} {
			st.counts[o] = s.metrics.whoami.WithLabelValues(b.Name(), o)
		}
		st.duration = s.metrics.duration.WithLabelValues(b.Name())
	}
	s.states.Store(b.Name(), st)
	return st
}

// Authorize implements strangler.AuthStage.
func (s *Stage) Authorize(w http.ResponseWriter, r *http.Request, route *routes.Route) (strangler.Grant, bool) {
	b := route.Auth.BridgeRule()
	if b == nil {
		s.o.Logger.Error("route of policy bridge without a bridge; refusing", "route", route.Name)
		unavailable(w, "the route's session bridge is not configured")
		return nil, false
	}
	st := s.state(b)
	session, rest, found := splitCookies(r.Header["Cookie"], b.Cookie)
	header := "Authorization"
	if route.Auth.Header != "" {
		header = textproto.CanonicalMIMEHeaderKey(route.Auth.Header)
	}
	// The new service never sees the monolith's session cookie.
	g := &grant{s: s, header: header, cookieName: b.Cookie, cookie: rest, strip: found}
	if len(session) > MaxCookieLen {
		(&idp.Error{Code: "invalid_request", Description: "the session cookie is too long", Status: http.StatusBadRequest}).WriteJSON(w)
		return nil, false
	}
	if session != "" {
		e, err := s.lookup(r.Context(), st, session)
		if err != nil {
			s.o.Logger.Error("session bridge: the monolith cannot say who is logged on", "bridge", b.Name(), "route", route.Name, "error", err.Error())
			unavailable(w, "the legacy session cannot be checked now")
			return nil, false
		}
		g.e = e
	}
	if g.e == nil || g.e.res == nil {
		if route.Auth.RequireLogin {
			s.loginRequired(w, r, b)
			return nil, false
		}
		g.e = nil // no identity: the service gets no JWT
	}
	return g, true
}

// lookup returns the cached answer about session, or asks the monolith,
// one call for all concurrent requests with that session.
func (s *Stage) lookup(ctx context.Context, st *state, session string) (*entry, error) {
	key := tokenhash.Sum(session)
	if e, ok := st.cache.GetIfPresent(key); ok {
		if s.o.Now().Before(e.until) {
			return e, nil
		}
		st.cache.Invalidate(key)
	}
	v, err, _ := st.sf.Do(key, func() (any, error) {
		select {
		case st.inflight <- struct{}{}:
			defer func() { <-st.inflight }()
		default:
			st.counts[outcomeBusy].Inc()
			return nil, errors.New("bridge: too many who-am-I calls in flight")
		}
		start := time.Now()
		id, outcome, err := st.whoami(ctx, s, session)
		st.duration.Observe(time.Since(start).Seconds())
		st.counts[outcome].Inc()
		if err != nil {
			return nil, err
		}
		now := s.o.Now()
		e := &entry{until: now.Add(st.ttl)}
		if id != nil {
			e.res = s.resolved(st, id, now)
		}
		st.cache.Set(key, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

// resolved is the synthetic token of a bridged user: logged on, the
// bridge's client and scope, living the answer's cache lifetime plus the
// reuse margin (the IDP caps a JWT at its own JWT lifetime too).
func (s *Stage) resolved(st *state, id *identity, now time.Time) *idp.Resolved {
	b := st.cfg
	sub := b.SubjectPrefix + id.userID
	return &idp.Resolved{
		Token: &store.Token{Kind: store.KindAccess, ClientID: b.Client, UserID: sub, Scope: b.Scope, Level: store.LevelLoggedOn,
			IssuedAt: now, ExpiresAt: now.Add(st.ttl + s.o.ReuseMargin), Extra: map[string]string{"src": Source}},
		User: &store.User{ID: sub, CustomerNumber: id.customerNumber, Claims: id.claims, Enabled: true},
	}
}

// loginRequired answers a caller without a logged-on monolith session on
// a route with require_login: a browser's page request is sent to the
// login page when the bridge has one, anything else gets 401.
func (s *Stage) loginRequired(w http.ResponseWriter, r *http.Request, b *routes.Bridge) {
	if b.LoginURL != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, b.LoginURL, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", bearer.Challenge("", "log on first", ""))
	(&idp.Error{Code: "login_required", Description: "log on first", Status: http.StatusUnauthorized}).WriteJSON(w)
}

// unavailable answers 503: the request may be repeated shortly.
func unavailable(w http.ResponseWriter, desc string) {
	idp.ErrUnavailable.WithDescription("%s", desc).WithRetryAfter(2).WriteJSON(w)
}

// splitCookies reads the Cookie header lines: session is the bridge
// cookie's name=value pairs, in order, joined by "; " ("" when absent or
// every value empty), and rest the other pairs joined likewise (nil when
// there are none). found reports whether the bridge cookie was there at
// all.
func splitCookies(lines []string, name string) (session string, rest []string, found bool) {
	for _, l := range lines {
		if strings.Contains(l, name) {
			found = true
			break
		}
	}
	if !found {
		return "", nil, false
	}
	found = false
	var sess, other []string
	nonEmpty := false
	for _, l := range lines {
		for part := range strings.SplitSeq(l, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			if strings.TrimSpace(k) != name {
				other = append(other, part)
				continue
			}
			found = true
			sess = append(sess, part)
			if v = strings.Trim(strings.TrimSpace(v), `"`); v != "" {
				nonEmpty = true
			}
		}
	}
	if len(other) > 0 {
		rest = []string{strings.Join(other, "; ")}
	}
	if nonEmpty {
		session = strings.Join(sess, "; ")
	}
	return session, rest, found
}

// grant is an admitted caller: a bridged user (e set) or nobody.
type grant struct {
	s      *Stage
	e      *entry // nil: no identity
	header string
	// strip: the request carried the bridge cookie, so the new service
	// gets cookie as its Cookie header (nil: none).
	strip      bool
	cookie     []string
	cookieName string
}

var _ strangler.ResponseGrant = (*grant)(nil)

// UpstreamResponse implements strangler.ResponseGrant: a new service
// cannot set, replace or delete the monolith's session cookie, which
// stays the monolith's alone.
func (g *grant) UpstreamResponse(resp *http.Response) error {
	sc := resp.Header["Set-Cookie"]
	if len(sc) == 0 {
		return nil
	}
	kept := sc[:0:0]
	for _, c := range sc {
		name, _, _ := strings.Cut(c, "=")
		if strings.TrimSpace(name) != g.cookieName {
			kept = append(kept, c)
		}
	}
	if len(kept) != len(sc) {
		g.s.o.Logger.Warn("session bridge: a new service tried to set the monolith's session cookie; removed", "cookie", g.cookieName)
		if len(kept) == 0 {
			delete(resp.Header, "Set-Cookie")
		} else {
			resp.Header["Set-Cookie"] = kept
		}
	}
	return nil
}

// Claim implements strangler.Grant.
func (g *grant) Claim(name string) string {
	if g.e == nil {
		return ""
	}
	t, u := g.e.res.Token, g.e.res.User
	switch name {
	case "sub":
		return u.ID
	case "client_id":
		return t.ClientID
	case "level":
		return t.Level
	case "scope":
		return t.Scope
	case "customer_number":
		return u.CustomerNumber
	case "src":
		return Source
	}
	if s, ok := scalarText(u.Claims[name]); ok {
		return s
	}
	return ""
}

var noIdentity = http.Header{}

// Credential implements strangler.Grant: a JWT for the bridged user in
// the route's header (none for a caller who is not logged on), and the
// Cookie header without the monolith's session cookie.
func (g *grant) Credential(_ context.Context, audience string) (http.Header, error) {
	if g.e == nil {
		if !g.strip {
			return noIdentity, nil // Authorization is removed all the same
		}
		return http.Header{"Cookie": g.cookie}, nil
	}
	m, err := g.e.jwtFor(g.s, audience, g.header)
	if err != nil {
		return nil, err
	}
	if g.cookie == nil {
		return m.cred, nil
	}
	return http.Header{g.header: m.cred[g.header], "Cookie": g.cookie}, nil
}

// jwtFor returns the entry's JWT for audience, minting one when there is
// none with at least the reuse margin left.
func (e *entry) jwtFor(s *Stage, audience, header string) (minted, error) {
	now := s.o.Now()
	key := header + " " + audience
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.jwts[key]; ok && now.Add(s.o.ReuseMargin).Before(m.exp) {
		return m, nil
	}
	jwt, exp, err := s.o.Minter.MintResolved(e.res, audience)
	if err != nil {
		return minted{}, err
	}
	v := jwt
	if header == "Authorization" {
		v = "Bearer " + jwt
	}
	// Cookie nil: with no other cookies, the new service gets no Cookie
	// header (the bridge cookie is removed).
	m := minted{cred: http.Header{header: {v}, "Cookie": nil}, exp: exp}
	if e.jwts == nil {
		e.jwts = map[string]minted{}
	}
	e.jwts[key] = m
	return m, nil
}
