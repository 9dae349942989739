package adapters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// EventIDHeader carries the sender's event id to the target.
const EventIDHeader = "Webhook-Event-Id"

// Target is where an adapter's events go: a URL behind the gateway, called
// with the adapter's own OAuth2 client token (which the gateway exchanges
// for a JWT like any other caller's).
type Target struct {
	URL string
	// Token supplies the adapter client's access token, cached until
	// shortly before it expires (tokens.ClientCredentials).
	Token TokenSource
}

// TokenSource supplies an access token; Token returns when ctx ends.
type TokenSource interface {
	Token(ctx context.Context) (*oauth2.Token, error)
}

// TokenFunc adapts a function to a TokenSource.
type TokenFunc func(ctx context.Context) (*oauth2.Token, error)

// Token calls f(ctx).
func (f TokenFunc) Token(ctx context.Context) (*oauth2.Token, error) { return f(ctx) }

var _ TokenSource = (*tokens.ClientCredentials)(nil)

// Queue is the part of an inbox that delivery needs; inbox.Store
// (PostgreSQL) and inbox.Memory implement it.
type Queue interface {
	Claim(ctx context.Context, limit int, lease time.Duration, ordered []string) ([]*inbox.Event, error)
	// Delivered, Retry and DeadLetter act only while the event is still
	// under the claim that returned it (inbox.ErrClaimLost otherwise).
	Delivered(ctx context.Context, e *inbox.Event) error
	Retry(ctx context.Context, e *inbox.Event, next time.Time, reason string) error
	DeadLetter(ctx context.Context, e *inbox.Event, reason string) error
}

var (
	_ Queue = (*inbox.Store)(nil)
	_ Queue = (*inbox.Memory)(nil)
)

// Deliverer sends inbox events to their targets until ctx ends.
type Deliverer struct {
	Inbox   Queue
	Targets map[string]Target // by adapter name
	// Ordered lists adapters whose events go out in order per order key.
	Ordered []string
	// Workers deliver concurrently (one slow target does not hold up the
	// others). Default 16: with 8, delivery fell behind 64 concurrent
	// senders on two cores (0.52× their ingest rate, issue 15); with 16 it
	// keeps up (0.91×), the cores shared between accepting and delivering.
	Workers int
	// Batch is how many due events a worker claims at once (one
	// statement); it delivers them concurrently and claims again once
	// all are settled, so at most Workers × Batch attempts run at once.
	// Default 8.
	Batch int
	// MaxAge: an event still failing this long after it arrived goes to
	// the dead letters. Default 72h.
	MaxAge time.Duration
	// BaseBackoff doubles per attempt, with full jitter, up to MaxBackoff.
	// Defaults 1s and 1h.
	BaseBackoff, MaxBackoff time.Duration
	// Lease is how long a claimed event is reserved for its worker; an
	// attempt is cut short before its lease ends (so another worker never
	// takes an event still being delivered). Default 1m (longer than
	// Client's timeout).
	Lease time.Duration
	// Poll is how often idle workers look for due events. Default 200ms.
	Poll   time.Duration
	Client *http.Client
	Logger *slog.Logger
	// Metrics, if set, count deliveries.
	Metrics *Metrics
	// Tracer, if set, traces each attempt in the trace of the event's
	// ingest, and the request carries the attempt span's traceparent.
	// Nil: no tracing.
	Tracer trace.Tracer

	once sync.Once
}

func (d *Deliverer) defaults() { d.once.Do(d.setDefaults) }

func (d *Deliverer) setDefaults() {
	if d.Workers == 0 {
		d.Workers = 16
	}
	if d.Batch == 0 {
		d.Batch = 8
	}
	if d.MaxAge == 0 {
		d.MaxAge = 72 * time.Hour
	}
	if d.BaseBackoff == 0 {
		d.BaseBackoff = time.Second
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = time.Hour
	}
	if d.Lease == 0 {
		d.Lease = time.Minute
	}
	if d.Poll == 0 {
		d.Poll = 200 * time.Millisecond
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	d.defaults()
	var wg sync.WaitGroup
	for i := 0; i < d.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				events, err := d.Inbox.Claim(ctx, d.Batch, d.Lease, d.Ordered)
				if err != nil && ctx.Err() == nil {
					d.Logger.Error("claiming web-hook events", "error", err.Error())
				}
				if len(events) == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(d.Poll):
					}
					continue
				}
				d.deliverBatch(ctx, events)
			}
		}()
	}
	wg.Wait()
}

// deliverBatch delivers claimed events at once, each on its own: they
// were claimed together just now, so every attempt starts well inside its
// lease (and is cut short before the lease ends), and a claim holds at
// most one event of an ordered adapter's order key, so order is kept.
// Their outcomes share the inbox's group commit.
func (d *Deliverer) deliverBatch(ctx context.Context, events []*inbox.Event) {
	var wg sync.WaitGroup
	for _, e := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliver(ctx, e)
		}()
	}
	wg.Wait()
}

func (d *Deliverer) deliver(ctx context.Context, e *inbox.Event) {
	_, _, err := d.attempt(ctx, e)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	d.settle(sctx, e, err)
}

// leaseMargin is how long before its lease ends an attempt is cut short,
// leaving time to record its outcome under the claim.
func (d *Deliverer) leaseMargin() time.Duration { return min(d.Lease/10, 5*time.Second) }

// settle records the outcome of an attempt: delivered, dead-lettered, or
// due again after a backoff.
func (d *Deliverer) settle(ctx context.Context, e *inbox.Event, err error) {
	var serr error
	switch {
	case err == nil:
		serr = d.Inbox.Delivered(ctx, e)
		d.Metrics.outcome(e.Adapter, "delivered", time.Since(e.ReceivedAt).Seconds())
	case isPermanent(err):
		d.Metrics.outcome(e.Adapter, "dead", 0)
		d.Logger.Warn("web-hook dead-lettered", "adapter", e.Adapter, "event_id", e.EventID, "reason", err.Error())
		serr = d.Inbox.DeadLetter(ctx, e, err.Error())
	case time.Since(e.ReceivedAt) > d.MaxAge:
		d.Metrics.outcome(e.Adapter, "dead", 0)
		d.Logger.Warn("web-hook dead-lettered after its maximum age", "adapter", e.Adapter, "event_id", e.EventID, "reason", err.Error())
		serr = d.Inbox.DeadLetter(ctx, e, "max age reached: "+err.Error())
	default:
		d.Metrics.outcome(e.Adapter, "retried", 0)
		serr = d.Inbox.Retry(ctx, e, time.Now().Add(d.backoff(e.Attempts)), err.Error())
	}
	switch {
	case serr == nil:
	case errors.Is(serr, inbox.ErrClaimLost):
		d.Logger.Warn("web-hook outcome not recorded: its lease ran out and another worker claimed it", "adapter", e.Adapter, "event_id", e.EventID)
	default:
		d.Logger.Error("recording a web-hook delivery outcome", "adapter", e.Adapter, "event_id", e.EventID, "error", serr.Error())
	}
}

// backoff is exponential in the attempt number with full jitter.
func (d *Deliverer) backoff(attempt int) time.Duration {
	ceiling := d.BaseBackoff << min(attempt-1, 30)
	if ceiling <= 0 || ceiling > d.MaxBackoff {
		ceiling = d.MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(ceiling))) + d.BaseBackoff/2
}

type permanentError struct{ error }

func isPermanent(err error) bool { _, ok := err.(permanentError); return ok }

// post sends an event to its target and returns the answer, its body
// read (at most 64 KiB).
func (d *Deliverer) post(ctx context.Context, t Target, e *inbox.Event) (*http.Response, []byte, error) {
	tok, err := t.Token.Token(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("no token for the adapter's client: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(e.Body))
	if err != nil {
		return nil, nil, permanentError{err}
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if d.Tracer != nil {
		injectTrace(ctx, req.Header)
	}
	req.Header.Set(EventIDHeader, e.EventID)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := d.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, body, nil
}

// SyncLease is how long an event stored for an inline attempt
// (synchronous mode) is reserved for it: Lease.
func (d *Deliverer) SyncLease() time.Duration {
	d.defaults()
	return d.Lease
}

// Sync makes the inline attempt of synchronous mode for an event stored
// with InsertClaimed and returns the target's answer (err only when there
// is none). The outcome is recorded as for a worker's attempt: a 2xx marks
// the event delivered, a retryable failure makes it due for the workers
// after the usual backoff (without waiting for its lease to end), a
// permanent refusal dead-letters it. The outcome is recorded even when ctx
// (the sender's request) ends first.
func (d *Deliverer) Sync(ctx context.Context, e *inbox.Event) (*http.Response, []byte, error) {
	d.defaults()
	resp, body, err := d.attempt(ctx, e)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	d.settle(sctx, e, err)
	if resp != nil {
		return resp, body, nil
	}
	return nil, nil, err
}

// attempt posts an event to its target once. The error is nil for a 2xx
// and a permanentError for a refusal that retrying cannot change; the
// target's answer, when there is one, is returned as well.
func (d *Deliverer) attempt(ctx context.Context, e *inbox.Event) (resp *http.Response, body []byte, err error) {
	if d.Tracer != nil {
		var sp trace.Span
		ctx, sp = d.startDelivery(ctx, e)
		defer func() { endDelivery(sp, resp, err) }()
	}
	t, ok := d.Targets[e.Adapter]
	if !ok {
		return nil, nil, permanentError{fmt.Errorf("no target configured for adapter %s", e.Adapter)}
	}
	if !e.LeaseEnds.IsZero() {
		// Past its lease the event may be another worker's: stop before.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, e.LeaseEnds.Add(-d.leaseMargin()))
		defer cancel()
	}
	resp, body, err = d.post(ctx, t, e)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case resp.StatusCode < 300:
		return resp, body, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		resp.StatusCode == http.StatusUnauthorized: // a token may have been revoked or rotated: retry with a fresh one
		return resp, body, fmt.Errorf("target answered %d", resp.StatusCode)
	default:
		return resp, body, permanentError{fmt.Errorf("target refused with %d", resp.StatusCode)}
	}
}
