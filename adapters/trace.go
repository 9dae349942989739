package adapters

import (
	"context"
	"net/http"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the adapters' spans.
const TracerName = "github.com/ficus-gw/ficus/adapters"

// Attributes of the web-hook spans.
const (
	AttrAdapter  = attribute.Key("ficus.webhook.adapter")
	AttrEventID  = attribute.Key("ficus.webhook.event_id")
	AttrOutcome  = attribute.Key("ficus.webhook.outcome")
	AttrReason   = attribute.Key("ficus.webhook.reason")
	AttrVerified = attribute.Key("ficus.webhook.verified")
	AttrAttempt  = attribute.Key("ficus.webhook.attempt")
)

// propagator writes and reads the W3C trace context of deliveries.
var propagator = propagation.TraceContext{}

// ingestOutcome is what an ingest span records: whether the sender was
// verified, and accepted, duplicate, refused (and why) or unavailable.
type ingestOutcome struct {
	span     trace.Span // nil: tracing off
	verified bool
	outcome  string
	reason   string
	eventID  string
}

func (o *ingestOutcome) refused(reason string) { o.outcome, o.reason = "refused", reason }

// traceParent is the ingest span's traceparent, "" without a span.
func (o *ingestOutcome) traceParent() string {
	if o.span == nil {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(trace.ContextWithSpan(context.Background(), o.span), c)
	return c["traceparent"]
}

func (o *ingestOutcome) end() {
	sp := o.span
	if sp.IsRecording() {
		sp.SetAttributes(AttrVerified.Bool(o.verified), AttrOutcome.String(o.outcome))
		if o.reason != "" {
			sp.SetAttributes(AttrReason.String(o.reason))
		}
		if o.eventID != "" {
			sp.SetAttributes(AttrEventID.String(o.eventID))
		}
		if o.outcome == "unavailable" {
			sp.SetStatus(codes.Error, "inbox unavailable")
		}
	}
	sp.End()
}

// startDelivery opens the span of one delivery attempt of e, in the trace
// of its ingest (the traceparent stored with it), so that a delivery after
// a restart or on another instance still joins it.
func (d *Deliverer) startDelivery(ctx context.Context, e *inbox.Event) (context.Context, trace.Span) {
	parent := ctx
	if e.TraceParent != "" {
		if sc := trace.SpanContextFromContext(propagator.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": e.TraceParent})); sc.IsValid() {
			parent = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return d.Tracer.Start(parent, "webhook.deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrAdapter.String(e.Adapter), AttrEventID.String(e.EventID), AttrAttempt.Int(e.Attempts)))
}

func endDelivery(sp trace.Span, resp *http.Response, err error) {
	if sp.IsRecording() {
		outcome := "delivered"
		switch {
		case err != nil && isPermanent(err):
			outcome = "refused"
		case err != nil:
			outcome = "failed"
		}
		sp.SetAttributes(AttrOutcome.String(outcome))
		if resp != nil {
			sp.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		}
		if err != nil {
			sp.SetStatus(codes.Error, err.Error())
		}
	}
	sp.End()
}

// injectTrace puts the delivery span's traceparent on its request, in
// place of any the sender sent (kept among the event's headers).
func injectTrace(ctx context.Context, h http.Header) {
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
