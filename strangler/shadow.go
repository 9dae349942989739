package strangler

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync/atomic"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/shadow"
)

// shadowing is a route's live shadow rule.
type shadowing struct {
	st      *shadow.Route
	rule    *shadow.Rule // nil: compare false, the answers are discarded
	target  *target      // the shadow upstream, with the route's rewrites
	percent int
	unsafe  bool
}

func (g *Gateway) newShadowing(rt *liveRoute, s *routes.Shadow, t *table) (*shadowing, error) {
	sh := &shadowing{
		st:      g.shadows.Route(rt.name, s.To, s.Percent),
		target:  t.targetFor(rt.cfg, t.upstreams[s.To]),
		percent: s.Percent,
		unsafe:  s.UnsafeMethods,
	}
	if s.Compares() {
		var err error
		if sh.rule, err = shadow.NewRule(s.Headers, s.Ignore, s.Redact, s.LearnNoise, int64(s.MaxBody)); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

// picks decides whether a request is copied: its method is safe (or the
// rule allows any), it has no body, it asks for no protocol upgrade (a
// WebSocket is a connection, not an answer to compare), and it falls in
// the percent.
func (sh *shadowing) picks(r *http.Request, body io.ReadCloser) bool {
	if body != nil || sh.percent <= 0 || (!safeMethod(r.Method) && !sh.unsafe) || r.Header.Get("Upgrade") != "" {
		return false
	}
	return sh.percent >= 100 || rand.IntN(100) < sh.percent
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// primary is the answer the client got, captured as it streamed.
type primary struct {
	status int
	header http.Header
	body   *shadow.Capture
	done   atomic.Bool // the whole body went through
	queued bool        // a copy took it over (and releases it)
}

// capture starts capturing the primary's answer in resp, which the client
// is about to get: its compared headers now, its body as it streams.
func (a *attempt) capture(resp *http.Response) {
	sh := a.rq.shadow
	if sh.rule == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return
	}
	p := &primary{status: resp.StatusCode, header: sh.rule.Keep(resp.Header), body: a.g.shadows.NewCapture(sh.rule.MaxBody)}
	a.rq.primary = p
	if resp.Body == nil || resp.Body == http.NoBody {
		p.done.Store(true)
		return
	}
	resp.Body = &teeBody{rc: resp.Body, p: p}
}

// teeBody copies an upstream body into a capture as the client's copy loop
// reads it; it never holds the bytes back.
type teeBody struct {
	rc io.ReadCloser
	p  *primary
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	if n > 0 {
		_, _ = t.p.body.Write(b[:n])
	}
	if err == io.EOF {
		t.p.done.Store(true)
	}
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

// offerShadow offers the copy of a served request to the Mirror, once the
// client has the whole answer. Only a request that was answered by
// another upstream than the shadow's, in full, is copied.
func (g *Gateway) offerShadow(rq *request) {
	sh := rq.shadow
	if sh == nil || rq.served.up == sh.target.up {
		return
	}
	if g.shadows.Full() {
		sh.st.Dropped()
		return
	}
	j := &shadowJob{g: g, sh: sh, primaryTarget: rq.served}
	if sh.rule != nil {
		p := rq.primary
		if p == nil || !p.done.Load() {
			return
		}
		j.primary, j.capture = p.body.Response(p.status, p.header), p.body
	}
	// The copy's own request: the client's is the server's again once
	// ServeHTTP returns.
	in := rq.in
	u := *in.URL
	j.in = &http.Request{
		Method: in.Method, URL: &u, Host: in.Host, RemoteAddr: in.RemoteAddr, TLS: in.TLS,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: in.Header.Clone(), Body: http.NoBody,
	}
	removeHopByHop(j.in.Header)
	if sh.rule == nil || !sh.rule.LearnNoise || !safeMethod(in.Method) {
		// Only the second call to the primary needs the client's
		// credentials; the copy gets none of them.
		dropCredentials(j.in.Header, rq.route.authHeader)
	}
	j.rq = &request{in: j.in, id: rq.id, path: rq.path, moved: rq.moved, route: rq.route, grant: rq.grant, trusted: rq.trusted}
	if g.shadows.Offer(sh.st, j.run) && rq.primary != nil {
		rq.primary.queued = true
	}
}

// dropCredentials removes the client's own credentials from a copy's
// header: its cookies and token, and a copy of the route's JWT header.
func dropCredentials(h http.Header, authHeader string) {
	delete(h, "Cookie")
	delete(h, "Authorization")
	if authHeader != "" {
		delete(h, authHeader)
	}
}

// removeHopByHop removes what the reverse proxy removes from a request
// before its Rewrite: the headers named in Connection and the hop-by-hop
// headers of RFC 9110 section 7.6.1.
func removeHopByHop(h http.Header) {
	for _, line := range h["Connection"] {
		for _, name := range strings.Split(line, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(h, k)
	}
}

// shadowJob is one copy, run by a Mirror worker off the request path.
type shadowJob struct {
	g  *Gateway
	sh *shadowing
	// rq is a copy of the client's request's state (route, grant, path,
	// id), whose in is the copy's own request.
	rq            *request
	in            *http.Request
	primaryTarget *target
	primary       *shadow.Response
	capture       *shadow.Capture // holds primary's body; nil without compare
}

func (j *shadowJob) run(ctx context.Context) {
	if j.capture != nil {
		defer j.capture.Release()
	}
	st, rule := j.sh.st, j.sh.rule
	cand, c, err := j.send(ctx, j.sh.target, true)
	if err != nil {
		j.g.log.Debug("shadow copy got no answer", "route", j.rq.route.name, "upstream", j.sh.target.up.name,
			"error", err.Error(), "request_id", j.rq.id)
		if rule == nil {
			st.SendFailed()
		} else {
			st.Fail()
		}
		return
	}
	if rule == nil {
		st.Sent()
		return
	}
	defer c.Release()
	if rule.LearnNoise && safeMethod(j.in.Method) {
		if sec, c2, err := j.send(ctx, j.primaryTarget, false); err == nil {
			st.Learn(rule, j.primary, sec)
			c2.Release()
		}
	}
	st.Compare(rule, j.in.Method, j.rq.path, j.primary, cand)
}

// send sends the copy to tg and reads its answer (within ctx, bounded by
// the rule's max_body and the Mirror's memory; the rest is hashed). The
// copy to the shadow upstream (candidate) carries the identity that
// upstream would get — a JWT for its audience — never the client's
// cookies or token; a second call to the primary carries what the primary
// got. Copies pass by the upstream's pool but not its breaker: they
// never change what real traffic gets.
func (j *shadowJob) send(ctx context.Context, tg *target, candidate bool) (*shadow.Response, *shadow.Capture, error) {
	out := j.in.Clone(ctx)
	if candidate {
		dropCredentials(out.Header, j.rq.route.authHeader)
	}
	a := &attempt{g: j.g, rq: j.rq, tg: tg}
	if j.rq.grant != nil && !tg.up.monolith {
		var err error
		if a.cred, err = j.rq.grant.Credential(ctx, tg.up.audience); err != nil {
			return nil, nil, err
		}
	}
	a.rewrite(&httputil.ProxyRequest{In: j.in, Out: out})
	resp, err := tg.up.send.RoundTrip(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if candidate && tg.rewriteResponses {
		_ = tg.rewriteResponse(resp)
	}
	buf := j.g.buffers.Get()
	defer j.g.buffers.Put(buf)
	rule := j.sh.rule
	if rule == nil {
		_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
		return nil, nil, err
	}
	c := j.g.shadows.NewCapture(rule.MaxBody)
	if _, err := io.CopyBuffer(c, resp.Body, buf); err != nil {
		c.Release()
		return nil, nil, err
	}
	return c.Response(resp.StatusCode, rule.Keep(resp.Header)), c, nil
}

// ShadowReport returns the shadow results of every route with a shadow
// rule, by route name.
func (g *Gateway) ShadowReport() []shadow.RouteReport { return g.shadows.Report() }

// Close stops the shadow workers; copies still queued are dropped. The
// gateway goes on serving without them.
func (g *Gateway) Close() { g.shadows.Close() }
