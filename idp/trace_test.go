package idp_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/idp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTokenEndpointSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	ti := newTestIDPWith(t, false, func(o *idp.Options) { o.Tracer = tp })

	status, _, body := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}, "machine")
	if status != 200 {
		t.Fatalf("client_credentials: %d %s", status, body)
	}
	token, _ := decode(t, body)["access_token"].(string)
	// A wrong secret, and a grant type nobody serves.
	ti.secret["intruder"] = "guessed-secret"
	if status, _, _ := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "intruder"); status != 401 {
		t.Fatalf("unknown client: %d", status)
	}
	if status, _, _ := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"urn:made-up:" + strings.Repeat("x", 40)}}, "machine"); status != 400 {
		t.Fatalf("made-up grant: %d", status)
	}

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want one per call", len(spans))
	}
	want := []map[attribute.Key]string{
		{idp.AttrGrantType: "client_credentials", idp.AttrClientID: "machine", idp.AttrOutcome: "issued"},
		{idp.AttrGrantType: "client_credentials", idp.AttrClientID: "", idp.AttrOutcome: "invalid_client"},
		{idp.AttrGrantType: "other", idp.AttrClientID: "machine", idp.AttrOutcome: "unsupported_grant_type"},
	}
	for i, s := range spans {
		if s.Name != "oauth2.token" {
			t.Errorf("span %d named %q", i, s.Name)
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes {
			got[kv.Key] = kv.Value.String()
			for _, secret := range []string{ti.secret["machine"], "guessed-secret", token} {
				if strings.Contains(kv.Value.String(), secret) {
					t.Errorf("span %d attribute %s holds a secret", i, kv.Key)
				}
			}
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("span %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
}
