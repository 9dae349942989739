// Package health is ficus's own view of each route's two sides, legacy
// and new: request rate, 5xx rate and latency percentiles over a sliding
// window, kept per instance in memory. The Prometheus metrics stay; this
// view is what the canary analysis (strangler/analysis) judges and what
// the dashboard shows.
//
// A window is a ring of time slots, each holding a request count, a 5xx
// count and a latency histogram of log-linear buckets (8 per power of two,
// so a percentile is within about 6% of the true value). Recording takes
// no lock: one atomic load to find the slot and three atomic adds; a
// slot's counters are zeroed under a small lock only when the slot starts
// a new period, once per slot length.
package health

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWindow is the window of a route without an analysis rule.
const DefaultWindow = time.Minute

// Slots is how many slots a window is cut into: a window of 1m keeps its
// data in slots of 5s, and a report covers between Window-Window/Slots
// and Window of the past.
const Slots = 12

// Side is one side of a route over a window.
type Side struct {
	// Requests served in the window (or since the start of the report).
	Requests uint64 `json:"requests"`
	// Rate is Requests per second over the time covered.
	Rate float64 `json:"rate"`
	// ErrorRate is the share of Requests answered 5xx, 0..1 (0 without
	// requests). A client's fault (4xx, 499) is no error.
	ErrorRate float64 `json:"error_rate"`
	// P50, P90 and P99 are latency percentiles (to the end of the
	// response); 0 without requests.
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
}

// RouteHealth is one route's two sides over its window.
type RouteHealth struct {
	Route string `json:"route"`
	// Window is how far back the report looks.
	Window time.Duration `json:"window"`
	Legacy Side          `json:"legacy"`
	New    Side          `json:"new"`
}

// Set holds the windows of every route. It is safe for concurrent use.
type Set struct {
	mu     sync.Mutex
	routes map[string]*Route
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{routes: map[string]*Route{}} }

// Route returns the window of route name, making it when the set has none
// of that length: a route keeps its data across rule reloads unless its
// window changes.
func (s *Set) Route(name string, window time.Duration) *Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.routes[name]; r != nil && r.window == window {
		return r
	}
	r := newRoute(name, window, time.Now())
	s.routes[name] = r
	return r
}

// Retain drops the windows of routes that keep is false for.
func (s *Set) Retain(keep func(route string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.routes {
		if !keep(name) {
			delete(s.routes, name)
		}
	}
}

// Get returns route name's window, or nil.
func (s *Set) Get(name string) *Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes[name]
}

// Report returns every route's health at now, by route name.
func (s *Set) Report(now time.Time) []RouteHealth {
	s.mu.Lock()
	rs := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	out := make([]RouteHealth, len(rs))
	for i, r := range rs {
		out[i] = r.Report(now, time.Time{})
	}
	return out
}

// Route is one route's sliding window, both sides. It must not be copied.
type Route struct {
	name    string
	window  time.Duration
	res     int64 // slot length, ns
	created time.Time
	sides   [2]side // legacy, new
}

func newRoute(name string, window time.Duration, now time.Time) *Route {
	res := max(int64(window)/Slots, int64(time.Millisecond))
	return &Route{name: name, window: time.Duration(res * Slots), res: res, created: now}
}

// Window is how far back the route's reports look.
func (r *Route) Window() time.Duration { return r.window }

// Record counts one request served by the new side (or the legacy side),
// answered status (0 when it was cut off) after d, ending at at.
func (r *Route) Record(newSide bool, status int, d time.Duration, at time.Time) {
	i := 0
	if newSide {
		i = 1
	}
	r.sides[i].record(at.UnixNano()/r.res, status >= 500, d)
}

// Report sums the window ending at now. A non-zero since leaves out the
// slots that began before it (the analysis counts only what was served
// since the route's weight changed); the rate is over the time covered.
func (r *Route) Report(now, since time.Time) RouteHealth {
	h := RouteHealth{Route: r.name, Window: r.window}
	end := now.UnixNano() / r.res
	first := end - Slots + 1
	start := r.created
	if since.After(start) {
		start = since
	}
	if !since.IsZero() {
		// The first whole slot at or after since.
		first = max(first, (since.UnixNano()+r.res-1)/r.res)
	}
	covered := min(r.window, now.Sub(start))
	for i := range r.sides {
		s := r.sides[i].sum(first, end)
		side := s.side()
		if covered > 0 {
			side.Rate = float64(side.Requests) / covered.Seconds()
		}
		if i == 0 {
			h.Legacy = side
		} else {
			h.New = side
		}
	}
	return h
}

// buckets is the histogram's size: latencies up to 2^27 µs (134 s) in
// log-linear buckets; longer ones land in the last.
const (
	subBits  = 3
	sub      = 1 << subBits
	maxExp   = 27
	nBuckets = (maxExp-subBits+1)*sub + sub
)

// bucketOf maps a latency in microseconds to its histogram bucket: exact
// below 8 µs, then 8 buckets per power of two.
func bucketOf(us uint64) int {
	if us < sub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us >= 2^e
	if e > maxExp {
		return nBuckets - 1
	}
	m := (us >> (e - subBits)) & (sub - 1)
	return (e-subBits+1)*sub + int(m)
}

// bucketValue is a latency in the middle of bucket i, in microseconds.
func bucketValue(i int) float64 {
	if i < sub {
		return float64(i)
	}
	e := i/sub + subBits - 1
	m := i % sub
	low := float64(uint64(sub+m) << (e - subBits))
	width := float64(uint64(1) << (e - subBits))
	return low + width/2
}

// side is one side's ring of slots, made by its first request: a ring
// holds ~10 KB of counters, and of thousands of routes most may see no
// traffic on one side or both (10,000 routes made 211 MB with every
// ring made up front).
type side struct{ ring atomic.Pointer[[Slots]slot] }

// slots returns the side's ring, making it if it has none yet.
func (s *side) slots() *[Slots]slot {
	if r := s.ring.Load(); r != nil {
		return r
	}
	s.ring.CompareAndSwap(nil, new([Slots]slot))
	return s.ring.Load()
}

type slot struct {
	// period is the slot number (time / slot length) the counters hold.
	period atomic.Int64
	mu     sync.Mutex // taken only to start a new period
	count  atomic.Uint64
	errors atomic.Uint64
	hist   [nBuckets]atomic.Uint32
}

func (s *side) record(period int64, failed bool, d time.Duration) {
	sl := &s.slots()[uint64(period)%Slots]
	if p := sl.period.Load(); p != period {
		if p > period {
			return // older than the window: a request that took longer than it
		}
		sl.mu.Lock()
		if sl.period.Load() < period {
			sl.count.Store(0)
			sl.errors.Store(0)
			for i := range sl.hist {
				sl.hist[i].Store(0)
			}
			sl.period.Store(period)
		}
		sl.mu.Unlock()
		if sl.period.Load() != period {
			return
		}
	}
	sl.count.Add(1)
	if failed {
		sl.errors.Add(1)
	}
	sl.hist[bucketOf(uint64(max(d, 0)/time.Microsecond))].Add(1)
}

// sums are a side's counters added over slots.
type sums struct {
	count, errors uint64
	hist          [nBuckets]uint64
}

func (s *side) sum(first, last int64) *sums {
	out := &sums{}
	ring := s.ring.Load()
	if ring == nil {
		return out // no request yet
	}
	for i := range ring {
		sl := &ring[i]
		p := sl.period.Load()
		if p < first || p > last {
			continue
		}
		c, e := sl.count.Load(), sl.errors.Load()
		var h [nBuckets]uint32
		for j := range sl.hist {
			h[j] = sl.hist[j].Load()
		}
		if sl.period.Load() != p {
			continue // started a new period while read
		}
		out.count += c
		out.errors += e
		for j, v := range h {
			out.hist[j] += uint64(v)
		}
	}
	return out
}

func (s *sums) side() Side {
	out := Side{Requests: s.count}
	if s.count == 0 {
		return out
	}
	out.ErrorRate = float64(s.errors) / float64(s.count)
	out.P50, out.P90, out.P99 = s.percentile(.50), s.percentile(.90), s.percentile(.99)
	return out
}

// percentile returns the latency below which a share q of the requests
// lie (nearest rank, the middle of its bucket).
func (s *sums) percentile(q float64) time.Duration {
	var total uint64
	for _, v := range s.hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, v := range s.hist {
		if seen += v; seen >= rank {
			return time.Duration(bucketValue(i) * float64(time.Microsecond))
		}
	}
	return time.Duration(bucketValue(nBuckets-1) * float64(time.Microsecond))
}
