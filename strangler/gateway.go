package strangler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/prometheus/client_golang/prometheus"
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
	// MaxRequestBody refuses larger request bodies with 413. Zero means no
	// limit (bodies are streamed, never buffered).
	MaxRequestBody int64
	// Auth enforces route auth policies other than passthrough. Nil means
	// such routes refuse every request with 401 (fail closed).
	Auth AuthStage
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
	// Forward prepares r for a new upstream with the given JWT audience
	// (it puts a JWT in place of the client's token). An error is answered
	// 503.
	Forward(r *http.Request, audience string) error
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
	maxBody int64
	auth    AuthStage
	buffers *bufferPool
	recs    sync.Pool
}

// New returns a Gateway with no rules; it answers 503 until Load succeeds.
func New(o Options) (*Gateway, error) {
	g := &Gateway{
		log:     o.Logger,
		access:  o.AccessLog,
		metrics: newMetrics(o.Registerer),
		trusted: o.TrustedProxies,
		maxBody: o.MaxRequestBody,
		auth:    o.Auth,
		buffers: newBufferPool(),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	for _, h := range o.OwnedHeaders {
		g.owned = append(g.owned, textproto.CanonicalMIMEHeaderKey(h))
	}
	g.recs.New = func() any { return new(recorder) }
	return g, nil
}

// Load compiles f and makes it the live rule set atomically. f must come
// from routes.Parse or routes.ParseFile (it is validated).
func (g *Gateway) Load(f *routes.File) error {
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	m, err := routes.Compile(f)
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	prev := g.table.Load()
	t, err := g.build(f, m, prev)
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	g.table.Store(t)
	g.metrics.reloads.WithLabelValues("ok").Inc()
	g.metrics.routesLoaded.Set(float64(len(t.routes)))
	g.metrics.lastReload.SetToCurrentTime()
	for _, r := range f.Routes {
		if r.Shadow != nil {
			g.log.Warn("route has a shadow rule; shadowing is not enforced by this version", "route", r.Name)
		}
		if r.Policy() != "passthrough" && g.auth == nil {
			g.log.Warn("route needs auth but no auth stage is configured: it refuses every request (401)", "route", r.Name, "policy", r.Policy())
		}
	}
	if prev != nil {
		for name, up := range prev.upstreams {
			if t.upstreams[name] != up {
				// In-flight requests keep their connections; idle ones go.
				up.transport.CloseIdleConnections()
				if t.upstreams[name] == nil {
					g.metrics.breakerState.DeleteLabelValues(name)
				}
			}
		}
		live := map[string]bool{}
		for _, r := range f.Routes {
			live[r.Name] = true
		}
		for _, r := range prev.file.Routes {
			if !live[r.Name] {
				g.metrics.forget(r.Name)
			}
		}
	}
	return nil
}

// LoadFile parses path and loads it. When the file is invalid the error
// lists every problem with file:line:column, and the live rules stay.
func (g *Gateway) LoadFile(path string) error {
	f, err := routes.ParseFile(path)
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

// Metrics returns the gateway's collectors.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

const hdrRequestID = "X-Request-Id"

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := g.table.Load()
	if t == nil {
		http.Error(w, "ficus: no route rules loaded", http.StatusServiceUnavailable)
		return
	}
	g.metrics.inflight.Inc()
	defer g.metrics.inflight.Dec()

	stripOwned(r.Header, g.owned)
	esc := r.URL.EscapedPath()
	norm, err := routes.NormalizePath(esc)
	if err != nil {
		g.metrics.rejectedPaths.Inc()
		http.Error(w, "ficus: "+err.Error(), http.StatusBadRequest)
		g.logAccess(r, start, nil, nil, http.StatusBadRequest, 0, false)
		return
	}
	if norm != esc {
		r.URL.RawPath = norm
		r.URL.Path, _ = url.PathUnescape(norm)
	}
	if !validRequestID(r.Header.Get(hdrRequestID)) {
		r.Header.Set(hdrRequestID, newRequestID())
	}
	rt := t.unmatched
	if i := t.matcher.Match(r.Host, r.Method, norm, r.Header); i >= 0 {
		rt = t.routes[i]
	}
	if g.maxBody > 0 {
		if r.ContentLength > g.maxBody {
			http.Error(w, "ficus: request body too large", http.StatusRequestEntityTooLarge)
			g.logAccess(r, start, rt, nil, http.StatusRequestEntityTooLarge, 0, false)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
	}
	var grant Grant
	if rt.policy != "passthrough" {
		if g.auth == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ficus"`)
			http.Error(w, "ficus: authentication required", http.StatusUnauthorized)
			g.logAccess(r, start, rt, nil, http.StatusUnauthorized, 0, false)
			return
		}
		var ok bool
		if grant, ok = g.auth.Authorize(w, r, rt.cfg); !ok {
			g.logAccess(r, start, rt, nil, 0, 0, false)
			return
		}
	}
	secure := r.TLS != nil || (trusted(r.RemoteAddr, g.trusted) && r.Header.Get("X-Forwarded-Proto") == "https")
	var claims Claims
	if grant != nil {
		claims = grant
	}
	tg := rt.choose(w, r, secure, claims)
	if grant != nil && !tg.up.monolith {
		// New upstreams get a JWT for their audience, never the client's
		// token; the monolith keeps receiving what its clients send.
		if err := grant.Forward(r, tg.up.audience); err != nil {
			g.log.Error("cannot obtain a JWT for the upstream", "route", rt.name, "upstream", tg.up.name, "error", err.Error())
			http.Error(w, "ficus: identity provider unavailable", http.StatusServiceUnavailable)
			g.logAccess(r, start, rt, tg, http.StatusServiceUnavailable, 0, false)
			return
		}
	}

	rec := g.recs.Get().(*recorder)
	*rec = recorder{ResponseWriter: w, in: r, tg: tg}
	if !tg.up.monolith && tg.fallback && r.Body != nil && r.Body != http.NoBody {
		rec.body = replayBody{rc: r.Body}
		r.Body = &rec.body
	}
	tg.proxy.ServeHTTP(rec, r)

	served := rec.tg
	status := rec.status
	if status == 0 && rec.aborted {
		status = 499
	}
	sm := served.route.metrics[served.side()]
	class := status / 100
	if class < 0 || class > 5 || status == 499 {
		class = 0
	}
	sm.codes[class].Inc()
	sm.duration.Observe(time.Since(start).Seconds())
	g.logAccess(r, start, rt, served, status, rec.bytes, rec.fellBack)
	*rec = recorder{}
	g.recs.Put(rec)
}

// proxyError handles every failed upstream call: it falls back to the
// monolith when that is allowed, and otherwise answers 502, 503 or 504.
func (g *Gateway) proxyError(w http.ResponseWriter, out *http.Request, err error) {
	rec, _ := w.(*recorder)
	if rec != nil && errors.Is(err, errNotSent) && rec.tg.canFallback(rec.in.Method) && rec.body.n == 0 {
		from := rec.tg
		rec.tg = from.route.monolith
		rec.fellBack = true
		g.metrics.fallbacks.WithLabelValues(from.route.name, from.up.name).Inc()
		g.log.Warn("falling back to the monolith", "route", from.route.name, "upstream", from.up.name, "error", err.Error(),
			"request_id", rec.in.Header.Get(hdrRequestID))
		rec.tg.proxy.ServeHTTP(rec, rec.in)
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(out.Context().Err(), context.Canceled):
		if rec != nil {
			rec.aborted = true
		}
		return // the client is gone; nobody to answer
	case errors.Is(err, errNotSent) && !dialFailed(err):
		status = http.StatusServiceUnavailable // breaker open
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	upName := ""
	if rec != nil {
		upName = rec.tg.up.name
	}
	g.log.Error("upstream call failed", "upstream", upName, "status", status, "error", err.Error(),
		"request_id", out.Header.Get(hdrRequestID))
	http.Error(w, "ficus: "+http.StatusText(status), status)
}

func (g *Gateway) logAccess(r *http.Request, start time.Time, rt *liveRoute, tg *target, status int, n int64, fellBack bool) {
	if g.access == nil {
		return
	}
	route, up, side := unmatchedRoute, "", ""
	if rt != nil {
		route = rt.name
	}
	if tg != nil {
		up = tg.up.name
		side = SideNew
		if tg.up.monolith {
			side = SideLegacy
		}
	}
	g.access.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("host", r.Host),
		slog.String("route", route),
		slog.String("upstream", up),
		slog.String("side", side),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
		slog.String("request_id", r.Header.Get(hdrRequestID)),
		slog.Bool("fallback", fellBack),
	)
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

// recorder observes the response for metrics and the access log, and
// carries what proxyError needs to fall back.
type recorder struct {
	http.ResponseWriter
	in       *http.Request
	tg       *target
	body     replayBody
	status   int
	bytes    int64
	fellBack bool
	aborted  bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// replayBody counts what the transport read of a request body and ignores
// Close, so that a request whose connection failed before anything was
// sent can be sent to the monolith with the same body.
type replayBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *replayBody) Close() error { return nil }

// bufferPool lends ReverseProxy its copy buffers.
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
