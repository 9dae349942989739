package shadow

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of a Mirror's Options.
const (
	DefaultQueue   = 1024
	DefaultWorkers = 16
	DefaultMemory  = 64 << 20
	DefaultTimeout = 10 * time.Second
)

// Options size a Mirror. The zero value takes the defaults.
type Options struct {
	// Queue is how many copies wait for a worker at most; a copy that
	// finds the queue full is dropped and counted. Zero means 1024.
	Queue int
	// Workers send the copies. Zero means 16.
	Workers int
	// Memory bounds the bytes of answers held for comparison: the
	// primary's body as it streams to the client and the copies' answers.
	// A body that finds no room is compared by its hash. Zero means 64 MiB.
	Memory int64
	// Timeout bounds each copy: the shadow call, the second monolith
	// call, and reading their bodies. Zero means 10s.
	Timeout time.Duration
	// Registerer receives ficus_shadow_total. Nil keeps it unregistered.
	Registerer prometheus.Registerer
	// Logger receives workers' failures. Nil discards them.
	Logger *slog.Logger
	// Now is the clock of the samples. Nil means time.Now.
	Now func() time.Time
}

// Mirror runs the copies of one gateway: a bounded queue, a fixed set of
// workers (started by the first copy), the memory budget, and every
// route's results. It is safe for concurrent use.
type Mirror struct {
	o      Options
	queue  chan func(context.Context)
	start  sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	held   atomic.Int64
	total  *prometheus.CounterVec

	mu     sync.Mutex
	routes map[string]*Route
}

// New returns a Mirror; its workers start with the first Offer.
func New(o Options) *Mirror {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Mirror{o: o, queue: make(chan func(context.Context), o.Queue), routes: map[string]*Route{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ficus_shadow_total",
		Help: "Shadow copies by route and result: match, mismatch_status, mismatch_header, mismatch_body, error, dropped (queue full), sent (not compared).",
	}, []string{"route", "result"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.total)
	}
	return m
}

// Route returns the results of the named route, shadowed to target with
// percent: the same as before a reload, or new ones when the route is new
// or its shadow target changed (results against another upstream say
// nothing about this one).
func (m *Mirror) Route(name, target string, percent int) *Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[name]
	if r != nil {
		r.mu.Lock()
		same := r.target == target
		if same {
			r.percent = percent
		}
		r.mu.Unlock()
		if same {
			return r
		}
		m.total.DeletePartialMatch(prometheus.Labels{"route": name})
	}
	r = &Route{name: name, now: m.o.Now, target: target, percent: percent}
	r.metrics.match = m.total.WithLabelValues(name, "match")
	r.metrics.dropped = m.total.WithLabelValues(name, "dropped")
	r.metrics.sent = m.total.WithLabelValues(name, "sent")
	for i, k := range kinds {
		res := "mismatch_" + k
		if k == KindError {
			res = "error"
		}
		r.metrics.mismatch[i] = m.total.WithLabelValues(name, res)
	}
	m.routes[name] = r
	return r
}

// Retain forgets the results of every route not named in live (routes
// that left the rule set, or lost their shadow rule).
func (m *Mirror) Retain(live map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.routes {
		if !live[name] {
			delete(m.routes, name)
			m.total.DeletePartialMatch(prometheus.Labels{"route": name})
		}
	}
}

// Report returns every shadowed route's results, by route name.
func (m *Mirror) Report() []RouteReport {
	m.mu.Lock()
	rs := make([]*Route, 0, len(m.routes))
	for _, r := range m.routes {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	out := make([]RouteReport, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Report())
	}
	return out
}

// Full reports whether the queue has no room now (an Offer would drop):
// a caller may skip preparing a copy that would be dropped.
func (m *Mirror) Full() bool { return len(m.queue) == cap(m.queue) }

// Offer queues job for a worker, which runs it with a context that ends
// after the Timeout (never the client's: the client may be gone). When the
// queue is full, or the Mirror closed, the job is dropped, counted on r,
// and Offer returns false. Offer never blocks.
func (m *Mirror) Offer(r *Route, job func(ctx context.Context)) bool {
	if m.closed.Load() {
		r.Dropped()
		return false
	}
	m.start.Do(m.startWorkers)
	select {
	case m.queue <- job:
		return true
	default:
		r.Dropped()
		return false
	}
}

func (m *Mirror) startWorkers() {
	for range m.o.Workers {
		m.wg.Add(1)
		go m.work()
	}
}

func (m *Mirror) work() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case job := <-m.queue:
			m.run(job)
		}
	}
}

func (m *Mirror) run(job func(context.Context)) {
	ctx, cancel := context.WithTimeout(m.ctx, m.o.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			m.o.Logger.Error("shadow worker panicked; the copy is lost", "panic", p)
		}
	}()
	job(ctx)
}

// Close stops the workers after the copies they are sending; queued
// copies are dropped. Offer drops every copy after Close.
func (m *Mirror) Close() {
	m.closed.Store(true)
	m.cancel()
	m.wg.Wait()
}

// reserve takes n bytes of the memory budget, if there is room.
func (m *Mirror) reserve(n int64) bool {
	if m.held.Add(n) > m.o.Memory {
		m.held.Add(-n)
		return false
	}
	return true
}

func (m *Mirror) release(n int64) { m.held.Add(-n) }
