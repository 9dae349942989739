package strangler

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"go.opentelemetry.io/otel/trace"
)

// request is what every attempt at serving one client request shares. The
// client's request itself is never changed: each attempt builds its own
// outbound request from it.
type request struct {
	in    *http.Request
	id    string // X-Request-Id: the client's when it is plain, else a new one
	path  string // the normalised path, escaped
	moved bool   // path differs from what the client wrote
	route *liveRoute
	grant Grant // nil on passthrough routes
	// trusted: the peer is a trusted proxy, whose forwarding headers stay.
	trusted bool
	// body is the client's body behind the size limit; nil without one.
	body io.ReadCloser
	// shadow is the route's shadow rule when this request is copied;
	// primary is its answer as the client got it (nil without compare).
	shadow  *shadowing
	primary *primary
	// served is the target of the last attempt; fellBack: the request
	// fell back to the monolith.
	served   *target
	fellBack bool
	// start is when the request arrived; ficusFault: ficus itself failed
	// it (no JWT for the upstream), which no side's window counts.
	start      time.Time
	ficusFault bool
	// limited: the route's rate limit refused the request (429).
	limited bool
	// w and first live here to save allocations: w is the client's
	// response, first the first attempt.
	w     responseWriter
	first attempt
	// tr is the server span; nil when tracing is off.
	tr *requestTrace
}

// requestTrace is a request's server span and the context holding it.
type requestTrace struct {
	ctx  context.Context
	span trace.Span
}

// attempt is one try at serving a request from one upstream: it owns its
// outbound request (rewritten path, forwarding headers, the JWT for a new
// upstream) and its view of the client's body. A failed attempt leaves err
// set and the client's response untouched, so the gateway can make another
// attempt (the fallback to the monolith) or answer the failure.
type attempt struct {
	g    *Gateway
	rq   *request
	tg   *target
	w    *responseWriter
	body *clientBody // nil when the request has no body
	// cred puts the caller's identity in place of the client's token for a
	// new upstream (nil for none); shared, never changed.
	cred http.Header
	// err is why no answer came, as the reverse proxy reported it.
	err   error
	proxy httputil.ReverseProxy
	// tr is the attempt's span; nil when tracing is off.
	tr *attemptTrace
}

// attemptTrace is an attempt's span and the status its upstream answered.
type attemptTrace struct {
	span   trace.Span
	status int
}

var discardLog = log.New(io.Discard, "", 0) // failures are logged once, by the gateway

func (a *attempt) serve() {
	if a.rq.body != nil {
		a.body = &clientBody{rc: a.rq.body}
		defer a.body.end()
	}
	a.proxy = httputil.ReverseProxy{
		Rewrite:        a.rewrite,
		Transport:      a,
		ModifyResponse: a.modifyResponse,
		ErrorHandler:   a.fail,
		BufferPool:     a.g.buffers,
		ErrorLog:       discardLog,
	}
	in := a.rq.in
	if a.g.tracer != nil {
		n := 1
		if a != &a.rq.first {
			n = 2
		}
		in = a.startSpan(n)
		defer a.endSpan()
	}
	a.proxy.ServeHTTP(a.w, in)
}

// rewrite builds the outbound request. It runs after the reverse proxy
// removed hop-by-hop headers, so what it sets (the request id, forwarding
// headers, the JWT) cannot be removed by a client's Connection header.
func (a *attempt) rewrite(pr *httputil.ProxyRequest) {
	rq, tg, out := a.rq, a.tg, pr.Out
	h := out.Header
	stripOwned(h, a.g.owned)
	if rq.route.authHeader != "" {
		delete(h, rq.route.authHeader) // a client's copy of the JWT header
	}
	if rq.route.overrideHeader != "" {
		delete(h, rq.route.overrideHeader) // a control header for ficus
	}
	stripForgeable(h, rq.trusted)
	routes.StripH2CUpgrade(h) // never a tunnel past the rules
	if out.Body != nil && a.body != nil {
		out.Body = a.body
	}

	out.URL.Scheme, out.URL.Host = tg.up.url.Scheme, tg.up.url.Host
	if tg.needsPath || rq.moved {
		esc := rq.path
		if !tg.path.empty() {
			esc = tg.path.apply(esc)
		}
		esc = joinPath(tg.base, esc)
		out.URL.RawPath = esc
		out.URL.Path, _ = url.PathUnescape(esc)
	}
	if tg.up.preserveHost {
		out.Host = pr.In.Host
	} else {
		out.Host = ""
	}
	if rq.trusted {
		if v := pr.In.Header["X-Forwarded-For"]; len(v) > 0 {
			h["X-Forwarded-For"] = v
		}
		pr.SetXForwarded()
		for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
	} else {
		pr.SetXForwarded()
	}
	h[hdrRequestID] = []string{rq.id}
	if a.cred != nil {
		delete(h, "Authorization")
		for k, v := range a.cred {
			h[k] = v
		}
	}
	if a.tr != nil {
		a.injectTrace(out)
	}
	// Last: a credential may rebuild the Cookie header (the session
	// bridge does, without the monolith's cookie) from the client's.
	stripCookies(h, a.g.cookies)
}

// RoundTrip sends the outbound request through the upstream's pool and
// breaker.
func (a *attempt) RoundTrip(out *http.Request) (*http.Response, error) {
	return a.tg.up.roundTrip(out, a.clientFault)
}

// clientFault reports whether the attempt failed because of the client:
// its body could not be read, or it went away.
func (a *attempt) clientFault() bool {
	return a.body.fault() != nil || a.rq.in.Context().Err() != nil
}

func (a *attempt) modifyResponse(resp *http.Response) error {
	if a.tr != nil {
		a.tr.status = resp.StatusCode
	}
	if rg, ok := a.rq.grant.(ResponseGrant); ok && !a.tg.up.monolith {
		if err := rg.UpstreamResponse(resp); err != nil {
			return err
		}
	}
	if a.tg.rewriteResponses {
		if err := a.tg.rewriteResponse(resp); err != nil {
			return err
		}
	}
	if sh := a.rq.shadow; sh != nil && a.tg.up != sh.target.up {
		a.capture(resp)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	if len(resp.Trailer) > 0 && resp.ContentLength >= 0 {
		// An HTTP/2 upstream may give a length and trailers together; an
		// HTTP/1.1 client can only get trailers on a chunked body, so the
		// length goes (the body is the same).
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	resp.Body = newStreamBody(resp.Body, a.w, a.g.buffers, a.tg.up.bodyIdle, a.stalled)
	if resp.ContentLength < 0 {
		// A body without a length is a stream: its headers go out at once,
		// before the first byte (the reverse proxy copies them on return).
		a.w.early = true
	}
	return nil
}

func (a *attempt) stalled() {
	a.g.log.Warn("upstream stopped sending the response body; the response is cut off",
		"route", a.rq.route.name, "upstream", a.tg.up.name, "idle", a.tg.up.bodyIdle.String(), "request_id", a.rq.id)
}

// fail is the reverse proxy's error handler: it notes why no answer came
// and writes nothing, so the gateway can decide what happens next.
func (a *attempt) fail(_ http.ResponseWriter, _ *http.Request, err error) { a.err = err }

// failure is the status to answer for a failed attempt, and whether the
// client caused it.
func (a *attempt) failure() (status int, client bool) {
	if f := a.body.fault(); f != nil {
		return clientBodyStatus(*f), true
	}
	if a.rq.in.Context().Err() != nil {
		return StatusClientClosedRequest, true
	}
	return upstreamStatus(a.err), false
}

// clientBody is one attempt's view of the client's request body. It counts
// what the transport read, keeps the first read error as the client's
// fault, and stops reading once the attempt is over: the transport may go
// on reading after the answer is complete, and by then the client's body is
// no longer the attempt's to read.
type clientBody struct {
	rc   io.ReadCloser
	n    atomic.Int64
	over atomic.Bool
	bad  atomic.Pointer[error]
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.over.Load() {
		return 0, errAttemptOver
	}
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.bad.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Close does nothing: the server closes the client's body, and another
// attempt may still send it.
func (b *clientBody) Close() error { return nil }

func (b *clientBody) end() { b.over.Store(true) }

// fault is the error reading the client's body, or nil.
func (b *clientBody) fault() *error {
	if b == nil {
		return nil
	}
	return b.bad.Load()
}

// read is how much of the client's body was read.
func (b *clientBody) read() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
}

// responseWriter is the client's response. It records the status and size
// for metrics and the access log, and puts ficus's X-Request-Id on every
// final answer, whoever writes it: an upstream (whose own copy it
// replaces), the auth stage or ficus.
type responseWriter struct {
	http.ResponseWriter
	id       string
	status   int
	bytes    int64
	hijacked bool
	// streaming is set while a streamBody copies an upstream body: it alone
	// decides when to flush (see FlushError).
	streaming atomic.Bool
	// early: flush the headers as soon as they are written (a stream).
	early bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.status = code
	w.Header()[hdrRequestID] = []string{w.id}
	w.ResponseWriter.WriteHeader(code)
	if w.early {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// FlushError sends what was written so far to the client, except while
// an upstream body streams: then streamBody flushes when its next read would
// block, and the reverse proxy's own flushes (after every write of a body
// without a length, from a timer goroutine) do nothing.
func (w *responseWriter) FlushError() error {
	if w.streaming.Load() {
		return nil
	}
	return w.flush()
}

func (w *responseWriter) flush() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over (protocol upgrades such as WebSocket).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the rest of the server's
// response (deadlines, full duplex).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answered reports whether anything reached the client already.
func (w *responseWriter) answered() bool { return w.status != 0 || w.hijacked }
