package config

import (
	"fmt"
	"net/url"
	"os"
)

// Tracing exports OpenTelemetry spans with OTLP over HTTP (protobuf). It
// is off unless OTLPEndpoint is set; see docs/operations.md#tracing.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP traces URL, e.g.
	// http://otel-collector:4318 (the path defaults to /v1/traces). An
	// https URL is verified against the system roots or CAFile. Empty:
	// tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Headers are sent with every export (an API key), as secret
	// references.
	Headers map[string]Secret `yaml:"headers" validate:"dive,keys,required,endkeys,required"`
	// CAFile verifies an https endpoint instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// SampleRatio is the share of new traces sampled, 0 to 1. Default 1.
	// A continued trace follows its parent's decision (see TrustIncoming).
	SampleRatio *float64 `yaml:"sample_ratio" validate:"omitempty,gte=0,lte=1"`
	// TrustIncoming says whose traceparent is continued: proxies (the
	// default: trusted_proxies and ficus's own web-hook deliveries), all,
	// or none.
	TrustIncoming string `yaml:"trust_incoming" validate:"omitempty,oneof=proxies all none"`
	// UntrustedSampledPerSecond bounds, with trust_incoming all, how often
	// a sampled flag from a caller that is not a trusted proxy is
	// honoured. Default 10.
	UntrustedSampledPerSecond float64 `yaml:"untrusted_sampled_per_second" validate:"gte=0"`
	// ServiceName is service.name. Default ficus.
	ServiceName string `yaml:"service_name"`
	// InstanceID is service.instance.id. Default the host name.
	InstanceID string `yaml:"instance_id"`
	// Resource are further resource attributes (deployment.environment …).
	Resource map[string]string `yaml:"resource" validate:"dive,keys,required,endkeys"`
}

// TracingOn reports whether spans are exported.
func (c *Config) TracingOn() bool { return c.Tracing.OTLPEndpoint != "" }

// validateTracing checks the tracing keys.
func (c *Config) validateTracing(add func(field, format string, args ...any)) {
	t := c.Tracing
	if t.OTLPEndpoint == "" {
		if t.CAFile != "" || len(t.Headers) > 0 || t.SampleRatio != nil || t.TrustIncoming != "" ||
			t.UntrustedSampledPerSecond != 0 || t.ServiceName != "" || t.InstanceID != "" || len(t.Resource) > 0 {
			add("tracing.otlp_endpoint", "is required when other tracing keys are set (without it tracing is off)")
		}
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		add("tracing.otlp_endpoint", "must be an http or https URL without credentials, e.g. http://otel-collector:4318 (got %q)", t.OTLPEndpoint)
	} else if t.CAFile != "" && u.Scheme != "https" {
		add("tracing.ca_file", "is for an https otlp_endpoint")
	}
}

// resolveTracing reads the tracing headers' secrets and checks ca_file.
func (c *Config) resolveTracing(r *Resolved, add func(field, format string, args ...any)) {
	t := c.Tracing
	if len(t.Headers) > 0 {
		r.TracingHeaders = map[string]string{}
	}
	for k, ref := range t.Headers {
		v, err := ref.Resolve()
		if err != nil {
			add(fmt.Sprintf("tracing.headers.%s", k), "%v", err)
			continue
		}
		r.TracingHeaders[k] = v
	}
	if t.CAFile != "" {
		if _, err := os.Stat(t.CAFile); err != nil {
			add("tracing.ca_file", "%v", err)
		}
	}
}
