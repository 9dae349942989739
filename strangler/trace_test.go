package strangler

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/strangler/tracing"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traced gives a test gateway an SDK tracer provider that samples every
// new trace, exporting to the returned in-memory exporter.
func traced(t testing.TB, trust tracing.Trust) (func(*Options), *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(tracing.NewSampler(1, 10)))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return func(o *Options) { o.Tracer, o.TraceTrust = tp, trust }, exp
}

// spansOf waits for the server span of a request (it ends after the
// client has the answer) and returns the trace's spans by name.
func spansOf(t testing.TB, exp *tracetest.InMemoryExporter, server string) map[string][]tracetest.SpanStub {
	t.Helper()
	var out map[string][]tracetest.SpanStub
	waittest.For(t, "the server span "+server, func() bool {
		out = map[string][]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			out[s.Name] = append(out[s.Name], s)
		}
		return len(out[server]) > 0
	})
	return out
}

func attrOf(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestTraceSpanTreeAndPropagation(t *testing.T) {
	t.Parallel()
	withTracing, exp := traced(t, "")
	var mu sync.Mutex
	var logBuf bytes.Buffer
	fx := newTestGateway(t, baseRules+`  - {name: orders-api, match: {prefix: /orders}, to: orders, auth: {policy: oauth2}}
`, withTracing, func(o *Options) {
		o.Auth = tokenSwap{}
		o.AccessLog = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logBuf}, nil))
	})
	// A client's traceparent from an untrusted peer is not continued.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientParent := "00-" + clientTrace + "-00f067aa0ba902b7-01"
	resp, b := fx.do(t, "GET", "/orders/42", nil, "Authorization", "Bearer opaque-secret-token",
		"Traceparent", clientParent, "Tracestate", "vendor=client")
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d %s", resp.StatusCode, b)
	}
	got := decodeSeen(t, b)
	spans := spansOf(t, exp, "orders-api")

	server, auth, up := spans["orders-api"][0], spans["auth"], spans["upstream orders"]
	if len(auth) != 1 || len(up) != 1 {
		t.Fatalf("want one auth and one attempt span, got %v", names(spans))
	}
	if server.SpanKind != trace.SpanKindServer || up[0].SpanKind != trace.SpanKindClient {
		t.Errorf("kinds: server %v, attempt %v", server.SpanKind, up[0].SpanKind)
	}
	if server.Parent.IsValid() || server.SpanContext.TraceID().String() == clientTrace {
		t.Errorf("an untrusted client's trace was continued: parent %v", server.Parent)
	}
	if len(server.Links) != 1 || server.Links[0].SpanContext.TraceID().String() != clientTrace {
		t.Errorf("the client's traceparent is not a link: %v", server.Links)
	}
	for _, s := range []tracetest.SpanStub{auth[0], up[0]} {
		if s.Parent.SpanID() != server.SpanContext.SpanID() || s.SpanContext.TraceID() != server.SpanContext.TraceID() {
			t.Errorf("%s is not a child of the server span", s.Name)
		}
	}
	if v := attrOf(auth[0], AttrAuthOutcome).AsString(); v != "admitted" {
		t.Errorf("auth outcome %q", v)
	}
	if v := attrOf(auth[0], AttrAuthPolicy).AsString(); v != "oauth2" {
		t.Errorf("auth policy %q", v)
	}
	for k, want := range map[attribute.Key]string{AttrRoute: "orders-api", AttrSide: SideNew, AttrUpstream: "orders", "http.request.method": "GET", "url.path": "/orders/42"} {
		if v := attrOf(server, k).String(); v != want {
			t.Errorf("server %s = %q, want %q", k, v, want)
		}
	}
	if v := attrOf(server, "http.response.status_code").AsInt64(); v != 200 {
		t.Errorf("server status %d", v)
	}
	if v := attrOf(up[0], AttrBreakerState).AsString(); v != "closed" {
		t.Errorf("breaker state %q", v)
	}
	// The upstream got the attempt span's traceparent, not the client's,
	// and no tracestate of the client's.
	want := "00-" + up[0].SpanContext.TraceID().String() + "-" + up[0].SpanContext.SpanID().String() + "-01"
	if tp := got.Header.Get("Traceparent"); tp != want {
		t.Errorf("upstream traceparent %q, want %q", tp, want)
	}
	if ts := got.Header.Get("Tracestate"); ts != "" {
		t.Errorf("the client's tracestate reached the upstream: %q", ts)
	}
	// No token or cookie in any span.
	for _, ss := range spans {
		for _, s := range ss {
			for _, kv := range s.Attributes {
				if strings.Contains(kv.Value.String(), "opaque-secret-token") {
					t.Errorf("span %s attribute %s holds the token", s.Name, kv.Key)
				}
			}
		}
	}
	// The access log carries the trace id and the server span's id.
	var line string
	waittest.For(t, "the access-log line", func() bool {
		mu.Lock()
		defer mu.Unlock()
		line = logBuf.String()
		return line != ""
	})
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != server.SpanContext.TraceID().String() || rec["span_id"] != server.SpanContext.SpanID().String() {
		t.Errorf("access log ids %v %v, want the server span's %v", rec["trace_id"], rec["span_id"], server.SpanContext)
	}
}

func names(m map[string][]tracetest.SpanStub) []string {
	var out []string
	for k, v := range m {
		for range v {
			out = append(out, k)
		}
	}
	return out
}

func TestTraceRefusedByAuth(t *testing.T) {
	t.Parallel()
	withTracing, exp := traced(t, "")
	fx := newTestGateway(t, baseRules+`  - {name: orders-api, match: {prefix: /orders}, to: orders, auth: {policy: oauth2}}
`, withTracing, func(o *Options) { o.Auth = tokenSwap{} })
	if resp, _ := fx.do(t, "GET", "/orders/1", nil); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	spans := spansOf(t, exp, "orders-api")
	if len(spans["auth"]) != 1 || len(spans["upstream orders"]) != 0 {
		t.Fatalf("spans %v", names(spans))
	}
	a := spans["auth"][0]
	if attrOf(a, AttrAuthOutcome).AsString() != "refused" || attrOf(a, "http.response.status_code").AsInt64() != 401 {
		t.Errorf("auth span %v", a.Attributes)
	}
}

func TestTraceFallbackHasTwoAttempts(t *testing.T) {
	t.Parallel()
	withTracing, exp := traced(t, "")
	fx := newTestGateway(t, baseRules+`  - {name: down-headers, match: {prefix: /headers}, to: down}
`, withTracing)
	resp, b := fx.do(t, "GET", "/headers", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("fallback: %d %s", resp.StatusCode, b)
	}
	spans := spansOf(t, exp, "down-headers")
	first, second := spans["upstream down"], spans["upstream legacy"]
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("want an attempt at down and one at legacy, got %v", names(spans))
	}
	if v := attrOf(first[0], AttrFallbackReason).AsString(); v != "connect_failed" {
		t.Errorf("fallback reason %q", v)
	}
	if attrOf(first[0], AttrAttempt).AsInt64() != 1 || attrOf(second[0], AttrAttempt).AsInt64() != 2 ||
		!attrOf(second[0], AttrFallback).AsBool() {
		t.Errorf("attempts: %v / %v", first[0].Attributes, second[0].Attributes)
	}
	server := spans["down-headers"][0]
	if !attrOf(server, AttrFallback).AsBool() || attrOf(server, AttrSide).AsString() != SideLegacy {
		t.Errorf("server span %v", server.Attributes)
	}
	// go-httpbin echoes the headers it got: the monolith saw the second
	// attempt's traceparent.
	sc := second[0].SpanContext
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if tp := httpbinHeaders(t, b).Get("Traceparent"); tp != want {
		t.Errorf("monolith traceparent %q, want %q", tp, want)
	}
}

func TestTraceContinuesTrustedProxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		trust    tracing.Trust
		proxies  bool
		internal string
		want     bool // the client's trace continues
	}{
		{name: "trusted proxy", proxies: true, want: true},
		{name: "untrusted peer", want: false},
		{name: "internal call", internal: "internal-secret", want: true},
		{name: "wrong internal token", internal: "guess", want: false},
		{name: "trust all", trust: tracing.TrustAll, want: true},
		{name: "trust none, trusted proxy", trust: tracing.TrustNone, proxies: true, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			withTracing, exp := traced(t, tt.trust)
			fx := newTestGateway(t, baseRules+"  - {name: o, match: {prefix: /o}, to: orders}\n", withTracing, func(o *Options) {
				o.InternalToken = "internal-secret"
				if tt.proxies {
					o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			})
			const trace = "0af7651916cd43dd8448eb211c80319c"
			hdr := []string{"Traceparent", "00-" + trace + "-b7ad6b7169203331-01", "Tracestate", "congo=t61rcWkgMzE"}
			if tt.internal != "" {
				hdr = append(hdr, InternalHeader, tt.internal)
			}
			_, b := fx.do(t, "GET", "/o", nil, hdr...)
			got := decodeSeen(t, b)
			server := spansOf(t, exp, "o")["o"][0]
			continued := server.SpanContext.TraceID().String() == trace
			if continued != tt.want {
				t.Fatalf("continued %v, want %v", continued, tt.want)
			}
			if !strings.Contains(got.Header.Get("Traceparent"), server.SpanContext.TraceID().String()) {
				t.Errorf("upstream traceparent %q is not of the server's trace", got.Header.Get("Traceparent"))
			}
			if ts := got.Header.Get("Tracestate"); (ts == "congo=t61rcWkgMzE") != tt.want {
				t.Errorf("tracestate %q", ts)
			}
			if got.Header.Get(InternalHeader) != "" {
				t.Error("the internal token reached an upstream")
			}
		})
	}
}

// Tracing off (the default): no spans, no trace ids in the access log,
// and a client's traceparent and tracestate reach the upstream as sent.
func TestTracingOffPassesTraceparentThrough(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	otherProvider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = otherProvider.Shutdown(t.Context()) })
	var mu sync.Mutex
	var logBuf bytes.Buffer
	fx := newTestGateway(t, baseRules+"  - {name: o, match: {prefix: /o}, to: orders}\n", func(o *Options) {
		o.AccessLog = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logBuf}, nil))
	})
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	_, b := fx.do(t, "GET", "/o", nil, "Traceparent", tp, "Tracestate", "congo=t61rcWkgMzE")
	got := decodeSeen(t, b)
	if got.Header.Get("Traceparent") != tp || got.Header.Get("Tracestate") != "congo=t61rcWkgMzE" {
		t.Errorf("upstream got %q %q", got.Header.Get("Traceparent"), got.Header.Get("Tracestate"))
	}
	waittest.For(t, "the access-log line", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return logBuf.Len() > 0
	})
	mu.Lock()
	line := logBuf.String()
	mu.Unlock()
	if strings.Contains(line, "trace_id") {
		t.Errorf("access log without tracing has a trace id: %s", line)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans without tracing", n)
	}
}
