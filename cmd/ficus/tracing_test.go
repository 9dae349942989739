package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/stripe/stripe-go/v82/webhook"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a real OTLP/HTTP collector endpoint: it decodes the
// protobuf export requests and keeps each span's trace id by name.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // name -> hex trace ids
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans[s.Name] = append(o.spans[s.Name], fmt.Sprintf("%x", s.TraceId))
			}
		}
	}
	o.mu.Unlock()
	b, _ = proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func (o *otlpReceiver) traces(name string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.spans[name]...)
}

// A web-hook through the composed server with tracing on: the service
// behind the gateway gets the delivery with a traceparent of the ingest's
// trace (the deliverer's call through the front door is ficus's own, so
// the gateway continues it although 127.0.0.1 is no trusted proxy), and
// the collector receives the ingest, the delivery, the gateway's spans and
// the adapter's token grant.
func TestTracingThroughServe(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	t.Setenv("FICUS_TEST_WHSEC", "whsec_trace_test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export at once, not every 5 s
	col := &otlpReceiver{spans: map[string][]string{}}
	colSrv := httptest.NewServer(col)
	t.Cleanup(colSrv.Close)

	var mu sync.Mutex
	var seen []http.Header
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
	}))
	t.Cleanup(svc.Close)
	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: %q}\n  payments: {url: %q, audience: payments}\nroutes:\n  - {name: hooks, match: {prefix: /internal/payments}, to: payments, auth: {policy: oauth2, scopes_all: [payments.notify]}}\n", svc.URL, svc.URL)), 0o600)
	base := fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:0\"}\nstore: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nroutes: {file: %s}\n", freePort(t), rf)
	cfgFile := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(cfgFile, []byte(base), 0o600)
	_, out, errs := runCLI(t, "idp", "client", "create", "stripe-adapter", "--grant", "client_credentials", "--scope", "payments.notify", "--config", cfgFile)
	m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal(errs)
	}
	t.Setenv("FICUS_TEST_ADAPTER_SECRET", m[1])
	front, _, _ := testServer(t, base+`tracing:
  otlp_endpoint: `+colSrv.URL+`
  service_name: ficus-trace-test
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}]
      target: /internal/payments/stripe
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_ADAPTER_SECRET
`)
	payload := `{"id":"evt_traced","type":"payment_intent.succeeded"}`
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: "whsec_trace_test"}).Header
	req, _ := http.NewRequestWithContext(context.Background(), "POST", front+"/webhooks/stripe", strings.NewReader(payload))
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	var got http.Header
	waittest.For(t, "the delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) > 0 {
			got = seen[0]
		}
		return got != nil
	})
	waittest.For(t, "the exported spans", func() bool {
		for _, name := range []string{"webhook.ingest", "webhook.deliver", "hooks", "upstream payments", "oauth2.token"} {
			if len(col.traces(name)) == 0 {
				return false
			}
		}
		return true
	})
	ingest := col.traces("webhook.ingest")[0]
	if tp := got.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+ingest+"-") {
		t.Errorf("the service got traceparent %q, want one of the ingest's trace %s", tp, ingest)
	}
	for _, name := range []string{"webhook.deliver", "hooks", "upstream payments"} {
		if tr := col.traces(name); tr[0] != ingest {
			t.Errorf("%s is in trace %s, not the ingest's %s", name, tr[0], ingest)
		}
	}
	if got.Get("X-Ficus-Internal") != "" {
		t.Error("the internal-call token reached the service")
	}
}
