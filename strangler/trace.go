package strangler

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/tracing"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes of ficus's own (besides the HTTP semantic conventions).
const (
	AttrRoute          = attribute.Key("ficus.route")
	AttrSide           = attribute.Key("ficus.side")
	AttrUpstream       = attribute.Key("ficus.upstream")
	AttrRequestID      = attribute.Key("ficus.request_id")
	AttrFallback       = attribute.Key("ficus.fallback")
	AttrFallbackReason = attribute.Key("ficus.fallback.reason")
	AttrBreakerState   = attribute.Key("ficus.breaker.state")
	AttrAttempt        = attribute.Key("ficus.attempt")
	AttrAuthPolicy     = attribute.Key("ficus.auth.policy")
	AttrAuthOutcome    = attribute.Key("ficus.auth.outcome")
)

// TracerName is the instrumentation scope of the gateway's spans.
const TracerName = "github.com/ficus-gw/ficus/strangler"

// InternalHeader carries Options.InternalToken on ficus's calls to its
// own front door (web-hook deliveries): a trace they carry is continued.
// It is an X-Ficus-* header, so no upstream ever sees it.
const InternalHeader = "X-Ficus-Internal"

// startSpan opens the server span of rq. The caller's traceparent becomes
// its parent only when the trust rule allows; otherwise it is a link.
func (g *Gateway) startSpan(rq *request) {
	r := rq.in
	ctx := r.Context()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	if _, ok := r.Header["Traceparent"]; ok {
		rsc := trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
		if rsc.IsValid() {
			switch {
			case g.traceTrust == tracing.TrustNone:
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: rsc}))
			case trusted(r.RemoteAddr, g.trusted) || g.internalCall(r):
				ctx = trace.ContextWithRemoteSpanContext(ctx, rsc)
			case g.traceTrust == tracing.TrustAll:
				ctx = tracing.Untrusted(trace.ContextWithRemoteSpanContext(ctx, rsc))
			default:
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: rsc}))
			}
		}
	}
	rq.tr = &requestTrace{}
	rq.tr.ctx, rq.tr.span = g.tracer.Start(ctx, unmatchedRoute, opts...)
	if rq.tr.span.IsRecording() {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		rq.tr.span.SetAttributes(
			methodAttr(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.URLScheme(scheme(r)),
			semconv.ServerAddress(r.Host),
			semconv.ClientAddress(host),
			semconv.UserAgentOriginal(r.UserAgent()),
			AttrRequestID.String(rq.id),
		)
	}
}

// internalCall reports whether r is ficus calling its own front door.
func (g *Gateway) internalCall(r *http.Request) bool {
	v := r.Header.Get(InternalHeader)
	return g.internalToken != "" && v != "" && subtle.ConstantTimeCompare([]byte(v), []byte(g.internalToken)) == 1
}

// endSpan closes the server span with the request's outcome.
func (g *Gateway) endSpan(rq *request, status int) {
	sp := rq.tr.span
	if sp.IsRecording() {
		sp.SetAttributes(semconv.HTTPResponseStatusCode(status), AttrFallback.Bool(rq.fellBack))
		if tg := rq.served; tg != nil {
			sp.SetAttributes(AttrUpstream.String(tg.up.name), AttrSide.String(sides[tg.side()]))
		}
		if status >= 500 {
			sp.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	sp.End()
}

// nameSpan names the server span after the route that matched (the
// route's name: low cardinality, unlike the path).
func (rq *request) nameSpan(rt *liveRoute) {
	if rq.tr != nil && rt.name != unmatchedRoute {
		rq.tr.span.SetName(rt.name)
		rq.tr.span.SetAttributes(AttrRoute.String(rt.name))
	}
}

// authorize runs the auth stage, in a span of its own when tracing.
func (g *Gateway) authorize(rq *request, w *responseWriter, route *routes.Route) (Grant, bool) {
	if rq.tr == nil {
		return g.auth.Authorize(w, rq.in, route)
	}
	ctx, sp := g.tracer.Start(rq.tr.ctx, "auth", trace.WithAttributes(AttrAuthPolicy.String(route.Policy())))
	grant, ok := g.auth.Authorize(w, rq.in.WithContext(ctx), route)
	if ok {
		sp.SetAttributes(AttrAuthOutcome.String("admitted"))
	} else {
		sp.SetAttributes(AttrAuthOutcome.String("refused"), semconv.HTTPResponseStatusCode(w.status))
	}
	sp.End()
	return grant, ok
}

// context is the request's context: its server span's when tracing.
func (rq *request) context() context.Context {
	if rq.tr != nil {
		return rq.tr.ctx
	}
	return rq.in.Context()
}

// startSpan opens the attempt's client span and returns the request the
// reverse proxy works from: a copy of the client's carrying the span
// (the client's own request stays as it is).
func (a *attempt) startSpan(n int) *http.Request {
	up := a.tg.up
	ctx, sp := a.g.tracer.Start(a.rq.tr.ctx, up.spanName, trace.WithSpanKind(trace.SpanKindClient))
	a.tr = &attemptTrace{span: sp}
	if sp.IsRecording() {
		sp.SetAttributes(
			methodAttr(a.rq.in.Method),
			AttrUpstream.String(up.name),
			AttrSide.String(sides[a.tg.side()]),
			semconv.ServerAddress(up.url.Hostname()),
			AttrBreakerState.String(breakerState(up)),
			AttrAttempt.Int(n),
			AttrFallback.Bool(n > 1),
		)
	}
	return a.rq.in.WithContext(ctx)
}

// endSpan closes the attempt's span with its outcome.
func (a *attempt) endSpan() {
	sp := a.tr.span
	if sp.IsRecording() {
		if a.tr.status != 0 {
			sp.SetAttributes(semconv.HTTPResponseStatusCode(a.tr.status))
		}
		if a.err != nil {
			if errors.Is(a.err, errNotSent) {
				sp.SetAttributes(AttrFallbackReason.String(notSentReason(a.err)))
			}
			sp.SetStatus(codes.Error, a.err.Error())
		} else if a.tr.status >= 500 {
			sp.SetStatus(codes.Error, strconv.Itoa(a.tr.status))
		}
	}
	sp.End()
}

// injectTrace puts the attempt span's traceparent (and tracestate) on
// its outbound request in place of the client's.
func (a *attempt) injectTrace(out *http.Request) {
	delete(out.Header, "Traceparent")
	delete(out.Header, "Tracestate")
	tracing.Propagator.Inject(trace.ContextWithSpan(out.Context(), a.tr.span), propagation.HeaderCarrier(out.Header))
}

// notSentReason says why an upstream was not reached, for a span.
func notSentReason(err error) string {
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return "breaker_open"
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return "breaker_half_open_busy"
	}
	return "connect_failed"
}

func breakerState(up *upstream) string {
	if up.breaker == nil {
		return "none"
	}
	return up.breaker.State().String()
}

// methodAttr is http.request.method as the semantic conventions want it:
// a known method, or _OTHER (a client's invented methods are unbounded).
func methodAttr(m string) attribute.KeyValue {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return semconv.HTTPRequestMethodKey.String(m)
	}
	return semconv.HTTPRequestMethodKey.String("_OTHER")
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// traceIDs adds the trace and span ids of rq's server span to an
// access-log line.
func (rq *request) traceIDs() (traceID, spanID string) {
	if rq.tr == nil {
		return "", ""
	}
	sc := rq.tr.span.SpanContext()
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
