// Package tracing is ficus's OpenTelemetry set-up: the tracer provider
// that exports spans with OTLP over HTTP (protobuf), the sampler that
// keeps a client's traceparent from choosing what ficus samples, and the
// rule for whose traceparent ficus continues.
//
// Tracing is off unless the process config names an OTLP endpoint; then
// the gateway, the IDP and the web-hook adapters are handed the provider's
// tracers. With tracing off they hold no tracer at all and do no tracing
// work, and a client's traceparent reaches upstreams as it was sent.
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// Trust says whose traceparent (and tracestate) ficus continues: a
// continued trace keeps the caller's trace id and, within the bound of
// Config.RemoteSampledPerSecond for callers that are not trusted proxies,
// its sampling decision. A traceparent that is not continued is recorded
// as a link of the new trace's first span, never as its parent.
type Trust string

const (
	// TrustProxies continues the traces of trusted proxies (the
	// process's trusted_proxies) and of ficus's own internal calls
	// (web-hook deliveries through the front door); every other caller
	// starts a new trace. The default.
	TrustProxies Trust = "proxies"
	// TrustAll continues every caller's trace. A caller that is not a
	// trusted proxy chooses its trace id, but not what ficus samples: its
	// sampled flag is honoured at most RemoteSampledPerSecond times a
	// second, beyond that it is sampled like a new trace.
	TrustAll Trust = "all"
	// TrustNone never continues a trace that arrives from outside, a
	// trusted proxy's included.
	TrustNone Trust = "none"
)

// Defaults.
const (
	DefaultServiceName            = "ficus"
	DefaultSampleRatio            = 1.0
	DefaultRemoteSampledPerSecond = 10
	DefaultExportTimeout          = 10 * time.Second
)

// Config is the tracing part of the process config, its secrets resolved.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://collector:4318/v1/traces; a URL without a path gets
	// /v1/traces. Required: without it there is no tracing.
	Endpoint string
	// Headers are sent with every export (an API key), values resolved.
	Headers map[string]string
	// CAFile, if set, is the PEM bundle that verifies an https endpoint
	// instead of the system's roots.
	CAFile string
	// SampleRatio is the share of new traces sampled (0..1); a continued
	// trace follows its parent. Default 1.
	SampleRatio *float64
	// RemoteSampledPerSecond bounds how often a sampled flag from a caller
	// that is not trusted (TrustAll) is honoured. Default 10.
	RemoteSampledPerSecond float64
	// ServiceName, ServiceVersion and InstanceID describe the process
	// (service.name, service.version, service.instance.id).
	ServiceName, ServiceVersion, InstanceID string
	// Attributes are further resource attributes (deployment.environment…).
	Attributes map[string]string
	// Timeout bounds one export call. Default 10s.
	Timeout time.Duration
}

// Provider is a running tracer provider with its OTLP exporter.
type Provider struct {
	*sdktrace.TracerProvider
}

// New builds the provider that samples with Sampler and exports to
// c.Endpoint in batches. Shutdown flushes what is queued.
func New(ctx context.Context, c Config) (*Provider, error) {
	if c.Endpoint == "" {
		return nil, errors.New("tracing: an OTLP endpoint is required")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultExportTimeout
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTimeout(timeout)}
	if len(c.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tracing: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tracing: ca_file %s holds no PEM certificate", c.CAFile)
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return &Provider{sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(c.Sampler()),
		sdktrace.WithResource(c.Resource()),
	)}, nil
}

// Resource describes the process to the tracing backend.
func (c Config) Resource() *resource.Resource {
	name := c.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if c.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(c.ServiceVersion))
	}
	if c.InstanceID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(c.InstanceID))
	}
	for k, v := range c.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...)
}

// Sampler is c's sampler (see NewSampler).
func (c Config) Sampler() sdktrace.Sampler {
	ratio := DefaultSampleRatio
	if c.SampleRatio != nil {
		ratio = *c.SampleRatio
	}
	per := c.RemoteSampledPerSecond
	if per == 0 {
		per = DefaultRemoteSampledPerSecond
	}
	return NewSampler(ratio, per)
}

// NewSampler samples new traces with ratio (by trace id, as
// TraceIDRatioBased does: ficus made the id) and continued traces as
// their parent was. A parent that came from a caller ficus does not trust
// (marked with Untrusted) cannot make ficus sample more than ratio of its
// requests plus perSecond: its trace id is its own choice, so ficus draws
// at random instead of by id, and honours its sampled flag at most
// perSecond times a second.
func NewSampler(ratio, perSecond float64) sdktrace.Sampler {
	ratio = min(max(ratio, 0), 1)
	return &sampler{
		root:  sdktrace.TraceIDRatioBased(ratio),
		ratio: ratio,
		limit: rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond))),
	}
}

type sampler struct {
	root  sdktrace.Sampler
	ratio float64
	limit *rate.Limiter
}

func (s *sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	if !psc.IsValid() {
		return s.root.ShouldSample(p)
	}
	decision := sdktrace.Drop
	switch {
	case !psc.IsRemote() || !isUntrusted(p.ParentContext):
		if psc.IsSampled() {
			decision = sdktrace.RecordAndSample
		}
	case psc.IsSampled() && s.limit.Allow(), rand.Float64() < s.ratio:
		decision = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: decision, Tracestate: psc.TraceState()}
}

func (s *sampler) Description() string {
	return fmt.Sprintf("FicusSampler{ratio=%g,untrusted sampled per second=%g}", s.ratio, float64(s.limit.Limit()))
}

type untrustedKey struct{}

// Untrusted marks ctx, which holds a remote span context from a caller
// ficus does not trust, for the sampler.
func Untrusted(ctx context.Context) context.Context {
	return context.WithValue(ctx, untrustedKey{}, true)
}

func isUntrusted(ctx context.Context) bool { v, _ := ctx.Value(untrustedKey{}).(bool); return v }

// Propagator is the W3C trace context (traceparent, tracestate) that ficus
// reads and writes; baggage is neither read nor written.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// ParseTrust reads a trust_incoming value; "" is TrustProxies.
func ParseTrust(s string) (Trust, error) {
	switch Trust(s) {
	case "":
		return TrustProxies, nil
	case TrustProxies, TrustAll, TrustNone:
		return Trust(s), nil
	}
	return "", fmt.Errorf("trust_incoming must be one of proxies, all, none (got %q)", s)
}
