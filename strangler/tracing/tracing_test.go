package tracing_test

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/tracing"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is a real OTLP/HTTP endpoint: it decodes each export request's
// protobuf body and keeps it, with the headers it came with.
type receiver struct {
	mu      sync.Mutex
	reqs    []*coltrace.ExportTraceServiceRequest
	headers []http.Header
	paths   []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.reqs, rc.headers, rc.paths = append(rc.reqs, &req), append(rc.headers, r.Header.Clone()), append(rc.paths, r.URL.Path)
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(b)
}

// spans returns the names of the exported spans, with the resource's
// attributes.
func (rc *receiver) spans() (names []string, resource map[string]string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	resource = map[string]string{}
	for _, req := range rc.reqs {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.Attributes {
				resource[kv.Key] = kv.Value.GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}
	return names, resource
}

func TestOTLPExportOverHTTPS(t *testing.T) {
	t.Parallel()
	rc := &receiver{}
	srv := httptest.NewTLSServer(rc)
	t.Cleanup(srv.Close)
	// The collector's certificate, as an operator would put it in ca_file.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ratio := 1.0
	p, err := tracing.New(t.Context(), tracing.Config{
		Endpoint: srv.URL, CAFile: ca, Headers: map[string]string{"Authorization": "Bearer collector-key"},
		SampleRatio: &ratio, ServiceName: "ficus-test", ServiceVersion: "v1.2.3", InstanceID: "instance-7",
		Attributes: map[string]string{"deployment.environment": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer("test")
	ctx, parent := tr.Start(context.Background(), "orders-api")
	_, child := tr.Start(ctx, "upstream orders")
	child.End()
	parent.End()
	if err := p.Shutdown(t.Context()); err != nil { // flushes
		t.Fatal(err)
	}
	names, res := rc.spans()
	if len(names) != 2 {
		t.Fatalf("exported %v, want the two spans", names)
	}
	for k, want := range map[string]string{"service.name": "ficus-test", "service.version": "v1.2.3",
		"service.instance.id": "instance-7", "deployment.environment": "test"} {
		if res[k] != want {
			t.Errorf("resource %s = %q, want %q", k, res[k], want)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.paths[0] != "/v1/traces" || rc.headers[0].Get("Authorization") != "Bearer collector-key" {
		t.Errorf("export to %s with Authorization %q", rc.paths[0], rc.headers[0].Get("Authorization"))
	}
}

// Without the collector's CA the https endpoint is not trusted: nothing
// is exported (and spans are dropped, not queued forever).
func TestOTLPExportVerifiesTheCollector(t *testing.T) {
	t.Parallel()
	rc := &receiver{}
	srv := httptest.NewTLSServer(rc)
	t.Cleanup(srv.Close)
	p, err := tracing.New(t.Context(), tracing.Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.Tracer("test").Start(context.Background(), "x")
	s.End()
	_ = p.Shutdown(t.Context())
	if names, _ := rc.spans(); len(names) != 0 {
		t.Fatalf("exported to an unverified collector: %v", names)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate"), 0o600)
	for _, c := range []tracing.Config{
		{},
		{Endpoint: "collector:4318"},
		{Endpoint: "ftp://collector"},
		{Endpoint: "https://collector", CAFile: empty},
		{Endpoint: "https://collector", CAFile: filepath.Join(t.TempDir(), "missing.pem")},
	} {
		if _, err := tracing.New(t.Context(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// remote is a context holding a caller's sampled traceparent.
func remote(t *testing.T, untrusted bool) context.Context {
	t.Helper()
	ctx := tracing.Propagator.Extract(context.Background(), propagation.MapCarrier{
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if !trace.SpanContextFromContext(ctx).IsRemote() {
		t.Fatal("no remote span context")
	}
	if untrusted {
		ctx = tracing.Untrusted(ctx)
	}
	return ctx
}

func sampledOf(t *testing.T, s sdktrace.Sampler, ctx context.Context, n int) int {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer("test")
	sampled := 0
	for range n {
		_, sp := tr.Start(ctx, "x")
		if sp.SpanContext().IsSampled() {
			sampled++
		}
		sp.End()
	}
	return sampled
}

// A caller that is not trusted cannot make ficus sample every request by
// sending sampled traceparents: past the per-second budget its requests
// are sampled at the ratio. A trusted caller's decision is followed.
func TestSamplerBoundsUntrustedCallers(t *testing.T) {
	t.Parallel()
	const n = 1000
	// ratio 0: only the budget can be sampled: its burst of 5 and 5 more
	// for every second the loop took.
	start := time.Now()
	got := sampledOf(t, tracing.NewSampler(0, 5), remote(t, true), n)
	if budget := 5 + int(5*time.Since(start).Seconds()+1); got < 5 || got > budget {
		t.Errorf("untrusted sampled traceparents: %d of %d sampled, want 5 to %d", got, n, budget)
	}
	if got := sampledOf(t, tracing.NewSampler(0, 5), remote(t, false), n); got != n {
		t.Errorf("trusted sampled traceparents: %d of %d sampled, want all", got, n)
	}
	if got := sampledOf(t, tracing.NewSampler(0, 5), context.Background(), n); got != 0 {
		t.Errorf("new traces at ratio 0: %d sampled", got)
	}
	if got := sampledOf(t, tracing.NewSampler(1, 5), context.Background(), n); got != n {
		t.Errorf("new traces at ratio 1: %d of %d sampled", got, n)
	}
}

func TestParseTrust(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]tracing.Trust{"": tracing.TrustProxies, "proxies": tracing.TrustProxies, "all": tracing.TrustAll, "none": tracing.TrustNone} {
		if got, err := tracing.ParseTrust(in); err != nil || got != want {
			t.Errorf("ParseTrust(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := tracing.ParseTrust("everyone"); err == nil {
		t.Error("an unknown value is accepted")
	}
}
