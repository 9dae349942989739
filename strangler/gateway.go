package strangler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/background"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/ficus-gw/ficus/strangler/health"
	"github.com/ficus-gw/ficus/strangler/shadow"
	"github.com/ficus-gw/ficus/strangler/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Gateway. The zero value is usable.
type Options struct {
	// Logger receives operational events (reloads, breakers, proxy
	// errors). Nil discards them.
	Logger *slog.Logger
	// AccessLog receives one record per request. Nil disables the access log.
	AccessLog *slog.Logger
	// Registerer receives the gateway's metrics. Nil keeps them unregistered.
	Registerer prometheus.Registerer
	// TrustedProxies are the peers whose X-Forwarded-For, -Host and -Proto
	// ficus keeps and extends. Empty means ficus is the edge: the client's
	// copies are replaced.
	TrustedProxies []netip.Prefix
	// OwnedHeaders are headers, besides X-Ficus-*, that ficus sets for
	// upstreams; clients' copies are removed before matching.
	OwnedHeaders []string
	// OwnedCookies are cookies that ficus sets for itself (the web
	// session's): bearer credentials no upstream needs, removed from the
	// Cookie header of every outbound request, to the monolith too.
	OwnedCookies []string
	// MaxRequestBody refuses larger request bodies with 413. Zero means no
	// limit (bodies are streamed, never buffered).
	MaxRequestBody int64
	// Auth enforces route auth policies other than passthrough. Nil means
	// such routes refuse every request with 401 (fail closed).
	Auth AuthStage
	// Shadow sizes the queue, workers, memory and timeout of the copies of
	// shadow rules (its Registerer and Logger are the gateway's). The zero
	// value takes the defaults.
	Shadow shadow.Options
	// Check, if set, is asked about every rule file before it goes live,
	// at the first load and at every reload: an error refuses the file
	// and the live rules keep serving. The process uses it for what the
	// route model cannot know (e.g. policies its IDP mode cannot serve).
	Check func(*routes.File) error
	// Tracer, if set, traces every request: a server span named after
	// its route, the auth stage's span and one client span per attempt,
	// whose traceparent goes to the upstream in place of the client's.
	// Nil does no tracing work at all, and a client's traceparent and
	// tracestate reach upstreams as it sent them.
	Tracer trace.TracerProvider
	// TraceTrust says whose traceparent a request's span continues;
	// "" is tracing.TrustProxies (TrustedProxies and internal calls).
	TraceTrust tracing.Trust
	// InternalToken, if set, is the value of the X-Ficus-Internal header
	// on ficus's own calls to its front door (web-hook deliveries): their
	// traceparent is continued, as a trusted proxy's is.
	InternalToken string
}

// AuthStage enforces a route's auth policy. Authorize either admits the
// request and returns its Grant, or writes the refusal (401, 403, 503) to
// w and returns false.
type AuthStage interface {
	Authorize(w http.ResponseWriter, r *http.Request, route *routes.Route) (Grant, bool)
}

// Grant is an admitted caller.
type Grant interface {
	// Claim returns a claim's value as a string, or "" when absent; sticky
	// cohorts keyed by a claim read it.
	Claim(name string) string
	// Credential returns the headers that carry the caller's identity to a
	// new upstream with the given JWT audience (a JWT minted for it, and
	// for a web session the user context). The gateway sets them on that
	// upstream's outbound request in place of the client's Authorization
	// and of any client copy of those headers; the client's request, and
	// what the monolith receives, stay as the client sent them. The
	// returned header may be shared between requests: callers must not
	// change it. An error is answered 503.
	Credential(ctx context.Context, audience string) (http.Header, error)
}

// ResponseGrant is a Grant that sees a new upstream's response before the
// client does (the web session layer takes the context updates a web app
// sends back, and removes them). An error is answered 502, as a response
// ficus cannot pass on.
type ResponseGrant interface {
	Grant
	UpstreamResponse(resp *http.Response) error
}

// Claims is the part of a Grant that cohorts read.
type Claims interface {
	Claim(name string) string
}

// Gateway is the strangler proxy. It is safe for concurrent use.
type Gateway struct {
	table   atomic.Pointer[table]
	loadMu  sync.Mutex
	log     *slog.Logger
	access  *slog.Logger
	metrics *Metrics
	trusted []netip.Prefix
	owned   []string
	cookies []string
	maxBody int64
	auth    AuthStage
	check   func(*routes.File) error
	buffers *bufferPool
	health  *health.Set
	shadows *shadow.Mirror
	// addrs finds the client address that rate limits by address count.
	addrs *clientaddr.Resolver
	// tracer is nil when tracing is off.
	tracer        trace.Tracer
	traceTrust    tracing.Trust
	internalToken string
}

// New returns a Gateway with no rules; it answers 503 until Load succeeds.
func New(o Options) (*Gateway, error) {
	g := &Gateway{
		log:           o.Logger,
		access:        o.AccessLog,
		metrics:       newMetrics(o.Registerer),
		trusted:       o.TrustedProxies,
		addrs:         clientaddr.New(o.TrustedProxies),
		cookies:       o.OwnedCookies,
		maxBody:       o.MaxRequestBody,
		auth:          o.Auth,
		check:         o.Check,
		buffers:       newBufferPool(),
		health:        health.NewSet(),
		traceTrust:    o.TraceTrust,
		internalToken: o.InternalToken,
	}
	if o.Tracer != nil {
		g.tracer = o.Tracer.Tracer(TracerName)
	}
	if g.traceTrust == "" {
		g.traceTrust = tracing.TrustProxies
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	so := o.Shadow
	so.Registerer, so.Logger = o.Registerer, g.log
	g.shadows = shadow.New(so)
	for _, h := range o.OwnedHeaders {
		g.owned = append(g.owned, textproto.CanonicalMIMEHeaderKey(h))
	}
	return g, nil
}

// Load compiles f and makes it the live rule set atomically. f must come
// from routes.Parse or routes.ParseFile (it is validated).
func (g *Gateway) Load(f *routes.File) error {
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	if g.check != nil {
		if err := g.check(f); err != nil {
			g.metrics.reloads.WithLabelValues("error").Inc()
			return err
		}
	}
	start, allocated := time.Now(), heapAllocated()
	m, err := routes.Compile(f)
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	prev := g.table.Load()
	t, gone, err := g.build(f, m, prev)
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	g.table.Store(t)
	took, bytes := time.Since(start), heapAllocated()-allocated
	g.metrics.buildSeconds.Set(took.Seconds())
	g.metrics.buildBytes.Set(float64(bytes))
	g.log.Info("route table built", "routes", len(t.routes), "build_ms", float64(took.Microseconds())/1000, "alloc_bytes", bytes)
	g.metrics.reloads.WithLabelValues("ok").Inc()
	g.metrics.routesLoaded.Set(float64(len(t.routes)))
	g.metrics.lastReload.SetToCurrentTime()
	shadowed := map[string]bool{}
	for _, r := range f.Routes {
		if r.Shadow != nil {
			shadowed[r.Name] = true
		}
		if r.Policy() != "passthrough" && g.auth == nil {
			g.log.Warn("route needs auth but no auth stage is configured: it refuses every request (401)", "route", r.Name, "policy", r.Policy())
		}
	}
	g.shadows.Retain(shadowed)
	if b := f.Upstreams[f.Monolith].Breaker; b.Disabled == nil && (b.Failures != 0 || b.OpenFor != 0 || b.HalfOpenRequests != 0) {
		g.log.Warn("the monolith has no circuit breaker unless breaker.disabled is false; its breaker settings are ignored", "upstream", f.Monolith)
	}
	if prev != nil {
		for name, up := range prev.upstreams {
			if t.upstreams[name] != up {
				// In-flight requests keep their connections; idle ones go.
				up.closeIdle()
				if t.upstreams[name] == nil {
					g.metrics.breakerState.DeleteLabelValues(name)
				}
			}
		}
		// Series of labels that left (a removed route, one that turned its
		// metrics off or joined a group, an emptied group) go, each by its
		// exact labels, fallbacks from any of prev's upstreams. A request
		// still in flight on prev for a route that never had series could
		// create them after this; the next reload does not see them.
		if len(gone) > 0 {
			ups := make([]string, 0, len(prev.upstreams))
			for name := range prev.upstreams {
				ups = append(ups, name)
			}
			for _, label := range gone {
				g.metrics.forget(label, ups)
			}
		}
		// Health windows are by route name, whatever the metrics setting.
		live := make(map[string]bool, len(f.Routes))
		for _, r := range f.Routes {
			live[r.Name] = true
		}
		g.health.Retain(func(route string) bool { return live[route] })
		// Limits that left stop; a route that lost its limit loses its
		// series of refusals.
		for id, l := range prev.limits {
			if t.limits[id] != l {
				l.stop()
			}
		}
		if len(prev.limits) > 0 {
			limited := map[string]bool{}
			for i := range t.routes {
				if rt := &t.routes[i]; rt.limit != nil {
					limited[rt.name] = true
				}
			}
			for i := range prev.routes {
				if rt := &prev.routes[i]; rt.limit != nil && !limited[rt.name] {
					g.metrics.forgetLimited(rt.name)
				}
			}
		}
	}
	return nil
}

// heapAllocated is the bytes the process has allocated so far (all its
// goroutines: a build's share is approximate under load). It reads a
// runtime counter without stopping the world.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// LoadFile parses path and loads it. When the file is invalid the error
// lists every problem with file:line:column, and the live rules stay.
// Once rules are live, the parse runs at the lowest CPU priority
// (routes/background), so that a large file yields the processor to the
// requests being served; the build and the swap do not. The first load
// has no requests to yield to and runs at normal priority (on a busy
// machine a nice-19 parse of 10,000 routes kept ficus from becoming
// ready for over a minute).
func (g *Gateway) LoadFile(path string) error {
	parse := func() (*routes.File, error) { return routes.ParseFile(path) }
	var f *routes.File
	var err error
	if g.Ready() {
		f, err = background.Run(parse)
	} else {
		f, err = parse()
	}
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	return g.Load(f)
}

// Rules returns the live rule file, or nil before the first Load.
func (g *Gateway) Rules() *routes.File {
	if t := g.table.Load(); t != nil {
		return t.file
	}
	return nil
}

// Ready reports whether a rule set is loaded.
func (g *Gateway) Ready() bool { return g.table.Load() != nil }

// Health returns the sliding windows of the routes' two sides (what the
// canary analysis judges).
func (g *Gateway) Health() *health.Set { return g.health }

// HealthReport returns each route's legacy and new side over its window
// (the analysis rule's window, else health.DefaultWindow), by route name.
func (g *Gateway) HealthReport() []health.RouteHealth { return g.health.Report(time.Now()) }

// Metrics returns the gateway's collectors.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

const hdrRequestID = "X-Request-Id"

// ServeHTTP routes one request. It never changes r: every attempt at
// serving it (the chosen upstream, then the monolith if the request falls
// back) builds its own outbound request from it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := g.table.Load()
	if t == nil {
		http.Error(w, "ficus: no route rules loaded", http.StatusServiceUnavailable)
		return
	}
	g.metrics.inflight.Inc()
	defer g.metrics.inflight.Dec()

	rq := &request{in: r, id: r.Header.Get(hdrRequestID), start: start}
	if !validRequestID(rq.id) {
		rq.id = newRequestID()
	}
	rw := &rq.w
	rw.ResponseWriter, rw.id = w, rq.id
	if g.tracer != nil {
		g.startSpan(rq)
	}
	defer func() {
		// A response cut off mid-body (the client or the upstream went
		// away, the upstream stalled) ends in http.ErrAbortHandler.
		p := recover()
		if rq.primary != nil && !rq.primary.queued {
			rq.primary.body.Release()
		}
		status := g.account(rq, rw, start, p != nil)
		if rq.tr != nil {
			g.endSpan(rq, status)
		}
		if p != nil {
			panic(p)
		}
	}()
	g.serve(t, rq, rw)
}

// serve answers rq, noting in it the target that served it (none when
// ficus answered itself) and whether it fell back to the monolith.
func (g *Gateway) serve(t *table, rq *request, w *responseWriter) {
	r := rq.in
	esc := r.URL.EscapedPath()
	norm, err := routes.NormalizePath(esc)
	if err != nil {
		g.metrics.rejectedPaths.Inc()
		http.Error(w, "ficus: "+err.Error(), http.StatusBadRequest)
		return
	}
	rq.path, rq.moved = norm, norm != esc
	// Clients' copies of ficus's own headers play no part in matching.
	hdr := r.Header
	if hasOwned(hdr, g.owned) {
		hdr = hdr.Clone()
		stripOwned(hdr, g.owned)
	}
	rt := t.unmatched
	if i := t.matcher.Match(r.Host, r.Method, norm, hdr); i >= 0 {
		rt = &t.routes[i]
	}
	rq.route = rt
	rq.nameSpan(rt)
	// A limit by address or header is taken before anything else is
	// done for the request, before the auth stage above all.
	if l := rt.limit; l != nil && l.early && !g.limit(rq, w, l) {
		return
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		rq.body = r.Body
		if g.maxBody > 0 {
			if r.ContentLength > g.maxBody {
				http.Error(w, "ficus: request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			rq.body = http.MaxBytesReader(w.ResponseWriter, r.Body, g.maxBody)
		}
	}
	if rt.policy != "passthrough" {
		if g.auth == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ficus"`)
			http.Error(w, "ficus: authentication required", http.StatusUnauthorized)
			return
		}
		var ok bool
		if rq.grant, ok = g.authorize(rq, w, rt.cfg); !ok {
			return
		}
	}
	// A limit by client needs the caller's token.
	if l := rt.limit; l != nil && !l.early && !g.limit(rq, w, l) {
		return
	}
	rq.trusted = trusted(r.RemoteAddr, g.trusted)
	secure := r.TLS != nil || (rq.trusted && r.Header.Get("X-Forwarded-Proto") == "https")
	var claims Claims
	if rq.grant != nil {
		claims = rq.grant
	}
	tg := rt.choose(w, r, secure, claims)
	if sh := rt.shadow; sh != nil && sh.picks(r, rq.body) {
		if g.shadows.Full() {
			sh.st.Dropped() // nothing is captured for a copy with no room
		} else {
			rq.shadow = sh
		}
	}
	for {
		a := &rq.first
		if rq.served != nil {
			a = new(attempt) // a fallback
		}
		*a = attempt{g: g, rq: rq, tg: tg, w: w}
		rq.served = tg
		if rq.grant != nil && !tg.up.monolith {
			// New upstreams get a JWT for their audience, never the
			// client's token; the monolith gets what its clients send.
			var err error
			if a.cred, err = rq.grant.Credential(rq.context(), tg.up.audience); err != nil {
				rq.ficusFault = true // not the upstream's: its window does not count it
				g.log.Error("cannot obtain a JWT for the upstream", "route", rt.name, "upstream", tg.up.name, "error", err.Error())
				http.Error(w, "ficus: identity provider unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		a.serve()
		if a.err == nil {
			g.offerShadow(rq)
			return
		}
		if next := a.fallback(); next != nil {
			if s := rt.series; s != nil {
				s.fallback(g.metrics, tg.up.name)
			}
			if rt.health != nil {
				// The new side failed this request, though the client
				// got the monolith's answer.
				now := time.Now()
				rt.health.Record(true, http.StatusBadGateway, now.Sub(rq.start), now)
			}
			g.log.Warn("falling back to the monolith", "route", rt.name, "upstream", tg.up.name, "error", a.err.Error(), "request_id", rq.id)
			tg, rq.fellBack = next, true
			continue
		}
		g.answerFailure(a)
		return
	}
}

// fallback returns the monolith when a failed attempt may be repeated
// there: the upstream cannot have received any of the request, the route
// allows a fallback for the method, and none of the body was read.
func (a *attempt) fallback() *target {
	rt := a.rq.route
	if !errors.Is(a.err, errNotSent) || !rt.canFallback(a.tg, a.rq.in.Method) || a.body.read() != 0 {
		return nil
	}
	return rt.monolith
}

// answerFailure answers an attempt that got no answer: 400, 408, 413 or 499
// for what the client did, 502, 503 or 504 for what the upstream did.
func (g *Gateway) answerFailure(a *attempt) {
	status, client := a.failure()
	if client {
		g.log.Debug("request failed on the client's side", "route", a.rq.route.name, "upstream", a.tg.up.name,
			"status", status, "error", a.err.Error(), "request_id", a.rq.id)
	} else {
		g.log.Error("upstream call failed", "route", a.rq.route.name, "upstream", a.tg.up.name,
			"status", status, "error", a.err.Error(), "request_id", a.rq.id)
	}
	if a.w.answered() {
		return // the reverse proxy wrote or handed over the connection already
	}
	http.Error(a.w, "ficus: "+statusText(status), status)
}

// account records a finished request in the metrics and the access log,
// and returns the status it recorded.
func (g *Gateway) account(rq *request, w *responseWriter, start time.Time, aborted bool) int {
	status, served := w.status, rq.served
	if served != nil {
		class := status / 100
		if aborted || class < 1 || class > 5 || status == StatusClientClosedRequest {
			class = 0
		}
		end := time.Now()
		d := end.Sub(start)
		if s := rq.route.series; s != nil {
			sm := s.get(g.metrics, served.side())
			sm.codes[class].Inc()
			sm.duration.Observe(d.Seconds())
		}
		// The health window counts the route's requests even when its
		// metrics are off or grouped.
		if h := rq.route.health; h != nil && !rq.ficusFault {
			if aborted {
				class = 0 // cut off: not counted as an answer's status
			}
			h.Record(served.side() == 1, class*100, d, end)
		}
	}
	if aborted && status == 0 {
		status = StatusClientClosedRequest
	}
	g.logAccess(rq, start, served, status, w.bytes, rq.fellBack)
	return status
}

func (g *Gateway) logAccess(rq *request, start time.Time, tg *target, status int, n int64, fellBack bool) {
	if g.access == nil {
		return
	}
	r := rq.in
	route, up, side := unmatchedRoute, "", ""
	if rq.route != nil {
		route = rq.route.name
	}
	if tg != nil {
		up = tg.up.name
		side = SideNew
		if tg.up.monolith {
			side = SideLegacy
		}
	}
	path := r.URL.Path
	if rq.moved {
		path, _ = url.PathUnescape(rq.path)
	}
	// Room for the trace ids: one array, as the arguments were before.
	attrs := [15]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.String("host", r.Host),
		slog.String("route", route),
		slog.String("upstream", up),
		slog.String("side", side),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
		slog.String("request_id", rq.id),
		slog.Bool("fallback", fellBack),
		slog.Bool("rate_limited", rq.limited),
	}
	k := 13
	if traceID, spanID := rq.traceIDs(); traceID != "" {
		attrs[13], attrs[14], k = slog.String("trace_id", traceID), slog.String("span_id", spanID), 15
	}
	g.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:k]...)
}

func newRequestID() string {
	var b [16]byte
	v1, v2 := rand.Uint64(), rand.Uint64()
	const hexd = "0123456789abcdef"
	for i := 0; i < 8; i++ {
		b[i] = hexd[(v1>>(4*i))&15]
		b[8+i] = hexd[(v2>>(4*i))&15]
	}
	return string(b[:])
}

// bufferPool lends ReverseProxy and streamBody their copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// String describes the live rule set.
func (g *Gateway) String() string {
	t := g.table.Load()
	if t == nil {
		return "ficus gateway (no rules)"
	}
	return "ficus gateway (" + strconv.Itoa(len(t.routes)) + " routes, monolith " + t.file.Monolith + ")"
}
