package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/tracing"
	"go.opentelemetry.io/otel/trace"
)

// tracer is the process's tracing: off (the zero value, provider nil) or
// an OTLP exporter's provider with the trust rule and the token of
// ficus's internal calls.
type tracer struct {
	provider trace.TracerProvider // nil: off
	trust    tracing.Trust
	// internal is the value of X-Ficus-Internal on ficus's own calls to
	// its front door (web-hook deliveries), whose trace the gateway
	// continues.
	internal string
	shutdown func(context.Context) error
}

// newTracing starts the exporter of cfg.tracing; off when no endpoint is
// set. Call close once nothing traces any more: it flushes queued spans.
func newTracing(ctx context.Context, cfg *config.Config, sec *config.Resolved, logger *slog.Logger) (tracer, error) {
	if !cfg.TracingOn() {
		return tracer{}, nil
	}
	t := cfg.Tracing
	trust, err := tracing.ParseTrust(t.TrustIncoming)
	if err != nil {
		return tracer{}, err // validated with the config
	}
	instance := t.InstanceID
	if instance == "" {
		instance, _ = os.Hostname()
	}
	p, err := tracing.New(ctx, tracing.Config{
		Endpoint: t.OTLPEndpoint, Headers: sec.TracingHeaders, CAFile: t.CAFile,
		SampleRatio: t.SampleRatio, RemoteSampledPerSecond: t.UntrustedSampledPerSecond,
		ServiceName: t.ServiceName, ServiceVersion: buildVersion(), InstanceID: instance, Attributes: t.Resource,
	})
	if err != nil {
		return tracer{}, err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	logger.Info("tracing on", "otlp_endpoint", t.OTLPEndpoint, "trust_incoming", string(trust))
	return tracer{provider: p, trust: trust, internal: hex.EncodeToString(b[:]), shutdown: p.Shutdown}, nil
}

// close flushes the spans still queued, for at most timeout.
func (t tracer) close(timeout time.Duration) {
	if t.shutdown == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	defer cancel()
	_ = t.shutdown(ctx)
}

// tracer returns the named tracer, nil when tracing is off.
func (t tracer) tracer(name string) trace.Tracer {
	if t.provider == nil {
		return nil
	}
	return t.provider.Tracer(name)
}

// internalCalls marks c's requests as ficus's own (see tracer.internal);
// c unchanged when tracing is off.
func (t tracer) internalCalls(c *http.Client) *http.Client {
	if t.internal == "" {
		return c
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = markedTransport{next: next, token: t.internal}
	return c
}

type markedTransport struct {
	next  http.RoundTripper
	token string
}

// RoundTrip sends a copy of r carrying the token (a RoundTripper does not
// change its request).
func (it markedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.Header.Set(strangler.InternalHeader, it.token)
	return it.next.RoundTrip(r2)
}
