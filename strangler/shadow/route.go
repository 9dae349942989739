package shadow

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of mismatch. A compared request that differs in several ways is
// counted once, under the first kind in this order.
const (
	KindStatus = "status"
	KindHeader = "header"
	KindBody   = "body"
	// KindError: the shadow upstream gave no answer (refused, timed out,
	// broken), or ficus could not send it the copy (no JWT for it).
	KindError = "error"
)

var kinds = [...]string{KindStatus, KindHeader, KindBody, KindError}

// Limits of what a route keeps.
const (
	// SampleSize is how many recent mismatches a route keeps.
	SampleSize = 20
	// SampleBody is the most of a body a sample shows.
	SampleBody = 4 << 10
	// MaxNoise is how many noisy places a route learns at most.
	MaxNoise = 256
)

// Answer is one side of a sample.
type Answer struct {
	Status int
	// Header holds the compared headers and Content-Type; values of
	// Set-Cookie, Cookie and Authorization are "[redacted]".
	Header map[string]string
	// Body is the body as text with the rule's redact places replaced,
	// cut at SampleBody; a body larger than the rule's max_body, a binary
	// one, or a non-JSON one on a route with redact, reads
	// "[N bytes, sha256 HEX]".
	Body string
}

// Sample is one recent mismatch.
type Sample struct {
	At     time.Time
	Method string
	// Path is the request's path, without its query.
	Path string
	// Kind is the mismatch's kind (see KindStatus).
	Kind            string
	Primary, Shadow Answer
	// Diffs name every difference found (at most 64): "status",
	// "header:NAME", "body" for the whole body, or a JSON pointer into
	// the body such as /meta/time. Ignored ones are left out.
	Diffs []string
}

// RouteReport is one route's shadow results.
type RouteReport struct {
	Route   string
	Target  string
	Percent int
	// Compared counts copies whose outcome is known: compared answers and
	// failed shadow calls (KindError).
	Compared uint64
	// Matched counts compared answers with no difference left after the
	// ignored and noisy places.
	Matched uint64
	// Dropped counts copies dropped because the queue was full.
	Dropped uint64
	// Mismatches counts the other compared requests by kind: status,
	// header, body, error.
	Mismatches map[string]uint64
	// Parity is Matched / Compared, between 0 and 1; 1 when nothing was
	// compared yet (never NaN).
	Parity float64
	// Noise lists the learned noisy places (header:NAME, or body: and a
	// JSON pointer with * for array indices), sorted.
	Noise []string
	// Samples are the recent mismatches, newest first.
	Samples []Sample
}

// Route keeps one route's results. Its methods are safe for concurrent
// use. It must not be copied.
type Route struct {
	name string
	now  func() time.Time

	compared, matched, dropped atomic.Uint64
	mismatches                 [len(kinds)]atomic.Uint64
	metrics                    routeMetrics

	mu      sync.Mutex
	target  string
	percent int
	samples []Sample // a ring of SampleSize
	next    int
	noise   map[string]bool
}

type routeMetrics struct {
	match, dropped, sent prometheus.Counter
	mismatch             [len(kinds)]prometheus.Counter
}

// Dropped counts a copy the queue had no room for.
func (r *Route) Dropped() {
	r.dropped.Add(1)
	r.metrics.dropped.Inc()
}

// Sent counts a copy sent without comparison (compare: false).
func (r *Route) Sent() { r.metrics.sent.Inc() }

// SendFailed counts a copy sent without comparison that got no answer.
func (r *Route) SendFailed() { r.metrics.mismatch[len(kinds)-1].Inc() }

// Fail counts a copy that got no answer from the shadow upstream.
func (r *Route) Fail() { r.count(KindError) }

func (r *Route) count(kind string) {
	r.compared.Add(1)
	if kind == "" {
		r.matched.Add(1)
		r.metrics.match.Inc()
		return
	}
	for i, k := range kinds {
		if k == kind {
			r.mismatches[i].Add(1)
			r.metrics.mismatch[i].Inc()
		}
	}
}

// Learn takes the differences between two answers of the monolith to the
// same request as noise. Two answers with different statuses teach
// nothing: they are not two takes of one answer.
func (r *Route) Learn(rule *Rule, primary, secondary *Response) {
	if primary.Status != secondary.Status {
		return
	}
	ds := rule.diffs(primary, secondary)
	if len(ds) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noise == nil {
		r.noise = map[string]bool{}
	}
	for _, d := range ds {
		if len(r.noise) >= MaxNoise {
			return
		}
		r.noise[noiseKey(d.kind, d.generic)] = true
	}
}

// noisy reports whether a learned noisy place covers d.
func (r *Route) noisy(d diff) bool {
	if d.kind == KindStatus || len(r.noise) == 0 {
		return false
	}
	if d.kind == KindHeader {
		return r.noise[noiseKey(KindHeader, d.generic)]
	}
	for i := 0; i <= len(d.generic); i++ {
		if r.noise[noiseKey(KindBody, d.generic[:i])] {
			return true
		}
	}
	return false
}

// Compare compares the shadow upstream's answer with the primary's under
// rule and records the outcome; a mismatch goes into the samples.
func (r *Route) Compare(rule *Rule, method, path string, primary, candidate *Response) {
	all := rule.diffs(primary, candidate)
	r.mu.Lock()
	var left []diff
	for _, d := range all {
		if !rule.ignored(d) && !r.noisy(d) {
			left = append(left, d)
		}
	}
	r.mu.Unlock()
	if len(left) == 0 {
		r.count("")
		return
	}
	kind := ""
	for _, k := range kinds {
		for _, d := range left {
			if d.kind == k && kind == "" {
				kind = k
			}
		}
	}
	s := Sample{
		At: r.now(), Method: method, Path: path, Kind: kind,
		Primary: rule.answer(primary), Shadow: rule.answer(candidate),
	}
	for _, d := range left {
		s.Diffs = append(s.Diffs, d.String())
	}
	r.mu.Lock()
	if len(r.samples) < SampleSize {
		r.samples = append(r.samples, s)
	} else {
		r.samples[r.next] = s
	}
	r.next = (r.next + 1) % SampleSize
	r.mu.Unlock()
	// Counted once its sample is in: a report that counts the mismatch
	// shows its sample too.
	r.count(kind)
}

// Report returns the route's results.
func (r *Route) Report() RouteReport {
	rep := RouteReport{
		Route: r.name, Compared: r.compared.Load(), Matched: r.matched.Load(), Dropped: r.dropped.Load(),
		Mismatches: map[string]uint64{}, Parity: 1,
	}
	for i, k := range kinds {
		rep.Mismatches[k] = r.mismatches[i].Load()
	}
	if rep.Compared > 0 {
		rep.Parity = float64(rep.Matched) / float64(rep.Compared)
		if rep.Parity > 1 { // the two counters are read one after the other
			rep.Parity = 1
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Target, rep.Percent = r.target, r.percent
	for k := range r.noise {
		rep.Noise = append(rep.Noise, k)
	}
	sort.Strings(rep.Noise)
	for i := 1; i <= len(r.samples); i++ {
		rep.Samples = append(rep.Samples, r.samples[(r.next-i+len(r.samples))%len(r.samples)])
	}
	return rep
}

// answer is a response as a sample shows it.
func (rule *Rule) answer(resp *Response) Answer {
	a := Answer{Status: resp.Status, Header: map[string]string{}}
	for k, v := range resp.Header {
		switch k {
		case "Set-Cookie", "Cookie", "Authorization":
			a.Header[k] = "[redacted]"
		default:
			a.Header[k] = strings.Join(v, ", ")
		}
	}
	a.Body = rule.sampleBody(resp)
	return a
}

func (rule *Rule) sampleBody(resp *Response) string {
	hashOnly := func() string { return fmt.Sprintf("[%d bytes, sha256 %x]", resp.Size, resp.sum()) }
	if resp.Hashed || resp.Size != int64(len(resp.Body)) {
		return hashOnly()
	}
	if resp.isJSON() {
		if v, err := decodeJSON(resp.Body); err == nil {
			for _, p := range rule.Redact {
				v = redact(v, p)
			}
			if b, err := json.Marshal(v); err == nil {
				return truncate(string(b))
			}
		}
	}
	if len(rule.Redact) > 0 || !utf8.Valid(resp.Body) {
		return hashOnly()
	}
	return truncate(string(resp.Body))
}

// redact replaces every value p names in v.
func redact(v any, p Pattern) any {
	if len(p) == 0 {
		return "[redacted]"
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p[0] == "*" || p[0] == k {
				x[k] = redact(e, p[1:])
			}
		}
	case []any:
		for i, e := range x {
			if p[0] == "*" || p[0] == indexToken(i) {
				x[i] = redact(e, p[1:])
			}
		}
	}
	return v
}

func truncate(s string) string {
	if len(s) <= SampleBody {
		return s
	}
	cut := SampleBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated]"
}
