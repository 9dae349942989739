package adapters

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/schemes"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/trace"
)

// Answer is what a sender expects back for an accepted event.
type Answer struct {
	Status      int    `yaml:"status" validate:"omitempty,gte=200,lte=299"` // default 200
	Body        string `yaml:"body"`                                        // e.g. "[accepted]" for Adyen
	ContentType string `yaml:"content_type"`                                // default text/plain
}

// Inserter is the durable part of the inbox that ingest needs; inbox.Store
// (PostgreSQL) and inbox.Memory implement it. Both methods report whether
// the event is new (a repeat of its event id stores nothing) and fill in a
// new event's ID.
type Inserter interface {
	// Insert stores an event due for delivery at once.
	Insert(ctx context.Context, e *inbox.Event) (bool, error)
	// InsertClaimed stores an event already claimed for lease by the
	// caller, which delivers it inline (synchronous mode): no worker takes
	// it unless that attempt fails or its lease ends.
	InsertClaimed(ctx context.Context, e *inbox.Event, lease time.Duration) (bool, error)
}

var (
	_ Inserter = (*inbox.Store)(nil)
	_ Inserter = (*inbox.Memory)(nil)
)

// Syncer makes the inline delivery attempt of synchronous mode;
// *Deliverer is one.
type Syncer interface {
	// SyncLease is how long a new event is reserved for the inline attempt.
	SyncLease() time.Duration
	// Sync delivers a new event stored with InsertClaimed and returns the
	// target's answer; it records the outcome in the inbox itself.
	Sync(ctx context.Context, e *inbox.Event) (*http.Response, []byte, error)
}

var _ Syncer = (*Deliverer)(nil)

// Ingest receives one adapter's web-hooks: it refuses an oversized body
// (413) before verifying, verifies the sender's scheme (401, or the
// sender's own status for a bad signature), takes the event id, stores the
// event durably, and only then answers. A repeat of an event id is
// answered like the first delivery and stored once. When the inbox cannot
// be written the answer is 503, so the sender retries. Nothing refused is
// stored.
type Ingest struct {
	Name   string
	Scheme schemes.Scheme
	Inbox  Inserter
	// MaxBody bounds the body. Default 1 MiB.
	MaxBody int64
	// EventIDHeader names the header carrying the event id; else
	// EventIDPointer is a JSON pointer into the body (e.g. /id).
	EventIDHeader  string
	EventIDPointer string
	// ContentTypes, if set, are the accepted media types; others get 415.
	ContentTypes []string
	// OrderKeyPointer, a JSON pointer, gives events an order key (events
	// with one key are delivered in order).
	OrderKeyPointer string
	// Accepted is the answer to an accepted (or repeated) event.
	Accepted Answer
	// BadSignatureStatus overrides 401 (GoCardless expects 498).
	BadSignatureStatus int
	// KeepHeaders are the original headers stored and delivered with the
	// event (the signature headers, the event id, content type …).
	KeepHeaders []string
	// RemoteAddr returns the sender's address (after trusted-proxy
	// handling). Default: the socket peer.
	RemoteAddr func(*http.Request) netip.Addr
	Logger     *slog.Logger
	Now        func() time.Time
	// Metrics, if set, count what happens.
	Metrics *Metrics
	// Sync, if set, is synchronous mode: a new event is stored claimed for
	// Sync's inline attempt (so no worker delivers it at the same time),
	// delivered at once, and the sender gets the target's answer. A repeat
	// gets Accepted and is not sent again inline.
	Sync Syncer
	// Tracer, if set, traces each request (a span with the adapter and
	// the outcome), and a stored event keeps the span's traceparent for
	// its deliveries. A sender's own traceparent is not continued. Nil: no
	// tracing.
	Tracer trace.Tracer
}

// ServeHTTP receives one web-hook.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var o ingestOutcome
	if in.Tracer == nil {
		in.serve(w, r, &o)
		return
	}
	ctx, sp := in.Tracer.Start(r.Context(), "webhook.ingest", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(AttrAdapter.String(in.Name)))
	o.span = sp
	defer o.end()
	in.serve(w, r.WithContext(ctx), &o)
}

func (in *Ingest) serve(w http.ResponseWriter, r *http.Request, o *ingestOutcome) {
	log := in.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.Method != http.MethodPost {
		o.refused("method")
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(in.ContentTypes) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if !slices.Contains(in.ContentTypes, mt) {
			in.Metrics.rejectReason(in.Name, "content_type")
			o.refused("content_type")
			http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
			return
		}
	}
	limit := in.MaxBody
	if limit <= 0 {
		limit = 1 << 20
	}
	arrived := time.Now()
	if r.ContentLength > limit {
		in.Metrics.rejectReason(in.Name, "too_large")
		o.refused("too_large")
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			in.Metrics.rejectReason(in.Name, "too_large")
			o.refused("too_large")
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		o.refused("unreadable_body")
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	now := time.Now()
	if in.Now != nil {
		now = in.Now()
	}
	addr := clientaddr.Peer(r)
	if in.RemoteAddr != nil {
		addr = in.RemoteAddr(r)
	}
	if err := in.Scheme.Verify(r.Context(), &schemes.Request{Header: r.Header, Body: body, RemoteAddr: addr, Now: now}); err != nil {
		status := http.StatusUnauthorized
		if in.BadSignatureStatus != 0 && errors.Is(err, schemes.ErrSignature) {
			status = in.BadSignatureStatus
		}
		if errors.Is(err, schemes.ErrForbidden) {
			status = http.StatusForbidden
		}
		if errors.Is(err, schemes.ErrUnavailable) {
			status = http.StatusServiceUnavailable // not the sender's fault: it retries
			w.Header().Set("Retry-After", "10")
		}
		in.Metrics.reject(in.Name, err)
		o.refused("verification")
		log.Warn("web-hook refused", "adapter", in.Name, "reason", err.Error(), "remote", addr.String())
		http.Error(w, http.StatusText(status), status)
		return
	}
	o.verified = true
	id := in.eventID(r.Header, body)
	// A NUL (\u0000 in a JSON id) is a text PostgreSQL never stores: its
	// insert would fail on every retry (503 for days) and split the batch
	// of every event it met on the way.
	if id == "" || len(id) > 256 || strings.ContainsRune(id, 0) {
		in.Metrics.rejectReason(in.Name, "no_event_id")
		o.refused("no_event_id")
		http.Error(w, "no event id", http.StatusBadRequest)
		return
	}
	kept := http.Header{}
	for _, k := range in.KeepHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			kept[http.CanonicalHeaderKey(k)] = v
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		kept.Set("Content-Type", ct)
	}
	// An order key keeps its NULs apart from other keys as U+FFFD (the
	// same key for every event that carries it), as for the id above.
	ev := &inbox.Event{Adapter: in.Name, EventID: id, Header: kept, Body: body, OrderKey: strings.ReplaceAll(pointer(body, in.OrderKeyPointer), "\x00", "\uFFFD"),
		TraceParent: o.traceParent()}
	o.eventID = id
	var fresh bool
	if in.Sync != nil {
		fresh, err = in.Inbox.InsertClaimed(r.Context(), ev, in.Sync.SyncLease())
	} else {
		fresh, err = in.Inbox.Insert(r.Context(), ev)
	}
	if err != nil {
		in.Metrics.rejectReason(in.Name, "inbox_unavailable")
		o.outcome = "unavailable"
		log.Error("web-hook inbox unavailable: answering 503 so the sender retries", "adapter", in.Name, "error", err.Error())
		w.Header().Set("Retry-After", "10")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	in.Metrics.accepted(in.Name, fresh, time.Since(arrived).Seconds())
	o.outcome = "accepted"
	if !fresh {
		o.outcome = "duplicate"
	}
	if !fresh {
		log.Info("duplicate web-hook", "adapter", in.Name, "event_id", id)
	}
	if fresh && in.Sync != nil {
		// Stored already: whatever happens now, the event is not lost.
		if resp, rbody, err := in.Sync.Sync(r.Context(), ev); err == nil {
			if ct := resp.Header.Get("Content-Type"); ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(rbody)
			return
		}
	}
	a := in.Accepted
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	ct := a.ContentType
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	if a.Body != "" && status != http.StatusNoContent {
		_, _ = io.WriteString(w, a.Body)
	}
}

func (in *Ingest) eventID(h http.Header, body []byte) string {
	if in.EventIDHeader != "" {
		return h.Get(in.EventIDHeader)
	}
	return pointer(body, in.EventIDPointer)
}

// pointer reads a string or number at an RFC 6901 JSON pointer. It walks
// the body once without building it (the rest of the body is skipped, not
// decoded), with encoding/json's answers: "" for a body that is not JSON
// or a value that is not a string or number; of repeated names, the last
// counts; a number comes as written; invalid UTF-8 becomes U+FFFD.
func pointer(body []byte, ptr string) string {
	if ptr == "" {
		return ""
	}
	path := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, tok := range path {
		path[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	dec := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(dec)
	dec.Reset(bytes.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	v, err := find(dec, path)
	dec.Reset(bytes.NewReader(nil)) // let the body go
	if err != nil {
		return ""
	}
	return v
}

// decoders are reused by pointer (a decoder's buffers are most of its
// cost for a small body).
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(bytes.NewReader(nil)) }}

// find reads the next value of dec and returns what path names in it.
func find(dec *jsontext.Decoder, path []string) (string, error) {
	kind := dec.PeekKind()
	switch {
	case len(path) == 0 && (kind == '"' || kind == '0'):
		tok, err := dec.ReadToken()
		return tok.String(), err
	case len(path) == 0 || (kind != '{' && kind != '['):
		return "", dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil { // { or [
		return "", err
	}
	idx := -1
	if kind == '[' {
		if i, err := strconv.Atoi(path[0]); err == nil && i >= 0 {
			idx = i
		}
	}
	var found string
	for n := 0; dec.PeekKind() != kind+2; n++ { // '{'+2 is '}', '['+2 is ']'
		match := n == idx
		if kind == '{' {
			name, err := dec.ReadToken()
			if err != nil {
				return "", err
			}
			match = name.String() == path[0]
		}
		if !match {
			if err := dec.SkipValue(); err != nil {
				return "", err
			}
			continue
		}
		v, err := find(dec, path[1:])
		if err != nil {
			return "", err
		}
		found = v // of repeated names the last counts
	}
	_, err := dec.ReadToken() // } or ]
	return found, err
}

// ClientAddr returns the sender's address: the socket peer, or, when the
// peer is one of trusted (a proxy in front of ficus), the nearest address
// in X-Forwarded-For that is not itself a trusted proxy (see clientaddr,
// which the IDP uses too).
func ClientAddr(trusted []netip.Prefix) func(*http.Request) netip.Addr {
	return clientaddr.New(trusted).Addr
}
