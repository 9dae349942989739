package idp

import (
	"errors"

	"github.com/ficus-gw/ficus/idp/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the IDP's spans.
const TracerName = "github.com/ficus-gw/ficus/idp"

// Attributes of a token-endpoint span.
const (
	AttrGrantType = attribute.Key("oauth2.grant_type")
	AttrClientID  = attribute.Key("oauth2.client_id")
	AttrOutcome   = attribute.Key("oauth2.outcome")
)

// endTokenSpan records a token-endpoint call: the grant type (one ficus
// serves, else "other": a caller's made-up value is unbounded), the
// client id once the client authenticated (never what an unauthenticated
// caller claims), and the outcome, "issued" or the OAuth error code.
// Nothing secret: no credential, token or code.
func (p *Provider) endTokenSpan(sp trace.Span, grantType string, c *store.Client, err error) {
	defer sp.End()
	if !sp.IsRecording() {
		return
	}
	if p.grantHandler(grantType) == nil {
		grantType = "other"
	}
	sp.SetAttributes(AttrGrantType.String(grantType))
	if c != nil {
		sp.SetAttributes(AttrClientID.String(c.ID))
	}
	if err == nil {
		sp.SetAttributes(AttrOutcome.String("issued"))
		return
	}
	outcome := ErrServer.Code
	var oe *Error
	if errors.As(err, &oe) {
		outcome = oe.Code
	}
	sp.SetAttributes(AttrOutcome.String(outcome))
	if oe == nil || oe.Status >= 500 {
		sp.SetStatus(codes.Error, outcome)
	}
}
