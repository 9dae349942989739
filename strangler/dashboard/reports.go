package dashboard

import "time"

// The report types below mirror what the shadow engine (strangler/shadow)
// and the analysis (strangler/health, analysis) report, field for field,
// so that a Source maps theirs to these with a plain copy.

// ShadowReport is one route's shadow comparison.
type ShadowReport struct {
	Route string
	// Target is the upstream that receives the copies.
	Target string
	// Percent is the share of requests copied.
	Percent int
	// Compared pairs of answers, Matched among them, and copies Dropped
	// (queue full).
	Compared, Matched, Dropped uint64
	// Mismatches counts the mismatched pairs by kind: status, header, body.
	Mismatches map[string]uint64
	// Parity is the share of compared pairs that matched, 0..1; 1 when
	// nothing was compared yet.
	Parity float64
	// Samples are recent mismatches, newest first.
	Samples []ShadowSample
}

// ShadowSample is one recent mismatch.
type ShadowSample struct {
	At           time.Time
	Method, Path string
	// Kind is status, header or body.
	Kind string
	// Primary is the answer the client got, Shadow the copy's.
	Primary, Shadow ShadowAnswer
	// Diffs are the JSON paths that differ.
	Diffs []string
}

// ShadowAnswer is one side of a sample; Body is redacted and truncated by
// the shadow engine.
type ShadowAnswer struct {
	Status int
	Header map[string]string
	Body   string
}

// RouteHealth is one route's two sides over a sliding window.
type RouteHealth struct {
	Route  string
	Window time.Duration
	// Legacy is the monolith's side, New the new service's.
	Legacy, New HealthSide
}

// HealthSide is one side's numbers over the window.
type HealthSide struct {
	Requests uint64
	// Rate is requests per second; ErrorRate the share of 5xx, 0..1.
	Rate, ErrorRate float64
	// P50, P90 and P99 are latency percentiles.
	P50, P90, P99 time.Duration
}

// AnalysisStatus is where a route's automatic analysis stands.
type AnalysisStatus struct {
	Route string
	// Verdict is pass, fail, hold, idle or insufficient.
	Verdict string
	Reason  string
	// Step is the index of the current step of the schedule, Weight the
	// new side's weight it set.
	Step, Weight int
	// Since is when the verdict was reached.
	Since time.Time
}
