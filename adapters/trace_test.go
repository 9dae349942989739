package adapters_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func newTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func spanAttr(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// traceTarget records the traceparent of each delivery it gets.
type traceTarget struct {
	mu   sync.Mutex
	seen []string
}

func (tt *traceTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.seen = append(tt.seen, r.Header.Get("Traceparent"))
}

func (tt *traceTarget) got() []string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return append([]string(nil), tt.seen...)
}

// The ingest's trace is stored with the event: a deliverer of another
// process (another tracer provider, another inbox handle on the same
// database: a restart) delivers in that trace, and the target gets a
// traceparent of the ingest's trace id whose parent is the delivery span.
func TestWebhookDeliveryContinuesTheIngestTrace(t *testing.T) {
	t.Parallel()
	pool, st := newInbox(t)
	ingestTP, ingestSpans := newTracer(t)
	in := stripeIngest(st)
	in.Tracer = ingestTP.Tracer(adapters.TracerName)
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)

	payload := []byte(`{"id":"evt_trace_1","type":"payment_intent.succeeded"}`)
	if status := post(t, srv.URL, payload, ""); status != 200 {
		t.Fatalf("ingest: %d", status)
	}
	if status := post(t, srv.URL, payload, ""); status != 200 {
		t.Fatalf("repeat: %d", status)
	}
	if status := post(t, srv.URL, []byte(`{"id":"evt_forged"}`), "t=1,v1=00"); status != 400 && status != 401 {
		t.Fatalf("bad signature: %d", status)
	}
	spans := ingestSpans.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d ingest spans, want 3", len(spans))
	}
	for i, want := range []map[attribute.Key]string{
		{adapters.AttrOutcome: "accepted", adapters.AttrVerified: "true", adapters.AttrAdapter: "stripe", adapters.AttrEventID: "evt_trace_1"},
		{adapters.AttrOutcome: "duplicate", adapters.AttrVerified: "true"},
		{adapters.AttrOutcome: "refused", adapters.AttrVerified: "false", adapters.AttrReason: "verification"},
	} {
		for k, v := range want {
			if got := spanAttr(spans[i], k); got != v {
				t.Errorf("ingest span %d: %s = %q, want %q", i, k, got, v)
			}
		}
	}
	ingest := spans[0].SpanContext
	e, err := st.Get(context.Background(), "stripe", "evt_trace_1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "00-" + ingest.TraceID().String() + "-" + ingest.SpanID().String() + "-01"; e.TraceParent != want {
		t.Fatalf("stored traceparent %q, want %q", e.TraceParent, want)
	}

	// "After a restart": a new process delivers.
	deliverTP, deliverSpans := newTracer(t)
	tgt := &traceTarget{}
	tsrv := httptest.NewServer(tgt)
	t.Cleanup(tsrv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	d := &adapters.Deliverer{Inbox: inbox.New(pool), Workers: 1, Poll: 20 * time.Millisecond,
		Targets: map[string]adapters.Target{"stripe": {URL: tsrv.URL, Token: staticToken}},
		Tracer:  deliverTP.Tracer(adapters.TracerName)}
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waittest.For(t, "the delivery", func() bool { e, _ := st.Get(ctx, "stripe", "evt_trace_1"); return e != nil && e.Status == "delivered" })

	ds := deliverSpans.GetSpans()
	if len(ds) != 1 {
		t.Fatalf("%d delivery spans, want 1", len(ds))
	}
	del := ds[0]
	if del.SpanContext.TraceID() != ingest.TraceID() || del.Parent.SpanID() != ingest.SpanID() {
		t.Errorf("delivery span %v is not a child of the ingest span %v", del.SpanContext, ingest)
	}
	if spanAttr(del, adapters.AttrOutcome) != "delivered" || spanAttr(del, "http.response.status_code") != "200" {
		t.Errorf("delivery span attributes %v", del.Attributes)
	}
	want := "00-" + ingest.TraceID().String() + "-" + del.SpanContext.SpanID().String() + "-01"
	if got := tgt.got(); len(got) != 1 || got[0] != want {
		t.Errorf("target saw traceparent %q, want [%s]", got, want)
	}
}

// Without a tracer nothing is stored for tracing and a delivery carries
// no traceparent of ficus's.
func TestWebhookWithoutTracing(t *testing.T) {
	t.Parallel()
	st := inbox.NewMemory()
	srv := httptest.NewServer(stripeIngest(st))
	t.Cleanup(srv.Close)
	if status := post(t, srv.URL, []byte(`{"id":"evt_plain"}`), ""); status != 200 {
		t.Fatalf("ingest: %d", status)
	}
	tgt := &traceTarget{}
	tsrv := httptest.NewServer(tgt)
	t.Cleanup(tsrv.Close)
	d := &adapters.Deliverer{Inbox: st, Targets: map[string]adapters.Target{"stripe": {URL: tsrv.URL, Token: staticToken}}}
	evs, err := st.Claim(context.Background(), 1, time.Minute, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("claim: %v %d", err, len(evs))
	}
	if evs[0].TraceParent != "" {
		t.Errorf("stored a traceparent without tracing: %q", evs[0].TraceParent)
	}
	if resp, _, err := d.Sync(context.Background(), evs[0]); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delivery: %v", err)
	}
	if got := tgt.got(); len(got) != 1 || got[0] != "" {
		t.Errorf("target saw traceparent %q", got)
	}
}
