package config

import (
	"strings"
	"testing"
)

func TestTracingKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       string // "" accepts
	}{
		{"off by default", "", ""},
		{"on", "tracing: {otlp_endpoint: http://collector:4318, sample_ratio: 0.25, trust_incoming: all, headers: {Authorization: env:HOME}, resource: {deployment.environment: prod}}", ""},
		{"keys without an endpoint", "tracing: {sample_ratio: 0.5}", "tracing.otlp_endpoint: is required"},
		{"not a URL", "tracing: {otlp_endpoint: collector:4318}", "tracing.otlp_endpoint: must be an http or https URL"},
		{"credentials in the URL", "tracing: {otlp_endpoint: \"https://user:pw@collector\"}", "without credentials"},
		{"ratio above 1", "tracing: {otlp_endpoint: http://c:4318, sample_ratio: 2}", "tracing.sample_ratio"},
		{"unknown trust", "tracing: {otlp_endpoint: http://c:4318, trust_incoming: everyone}", "tracing.trust_incoming"},
		{"literal header secret", "tracing: {otlp_endpoint: http://c:4318, headers: {Authorization: Bearer-abc}}", "secrets are not written into the config file"},
		{"ca_file for plain http", "tracing: {otlp_endpoint: http://c:4318, ca_file: /etc/ssl/ca.pem}", "tracing.ca_file: is for an https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, tc.yaml+"\n", ForCheck)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			case tc.want == "" && (c.TracingOn() != strings.Contains(tc.yaml, "otlp_endpoint")):
				t.Fatalf("TracingOn() = %v", c.TracingOn())
			}
			if err != nil && strings.Contains(err.Error(), "Bearer-abc") {
				t.Errorf("the error echoes the secret: %v", err)
			}
		})
	}
}
