package health

import (
	"math"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func TestBucketsRoundTrip(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, us := range []uint64{0, 1, 7, 8, 9, 15, 16, 100, 999, 1000, 12345, 1 << 20, 1<<27 - 1} {
		b := bucketOf(us)
		if b < prev || b >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", us, b, prev)
		}
		prev = b
		if us >= 8 {
			if v := bucketValue(b); math.Abs(v-float64(us))/float64(us) > 0.0625 {
				t.Errorf("bucketValue(bucketOf(%d)) = %v: more than 6.25%% off", us, v)
			}
		}
	}
	if bucketOf(1<<40) != nBuckets-1 {
		t.Error("a huge latency is not in the last bucket")
	}
}

func TestPercentilesAndErrors(t *testing.T) {
	t.Parallel()
	r := newRoute("orders", time.Minute, t0)
	// New side: 90 answers in 10ms, 9 in 100ms, 1 in 2s; 5 of them 5xx,
	// and 4xx and 499 are no errors.
	for i := range 100 {
		d, status := 10*time.Millisecond, 200
		switch {
		case i >= 99:
			d = 2 * time.Second
		case i >= 90:
			d = 100 * time.Millisecond
		}
		if i < 5 {
			status = 503
		} else if i < 10 {
			status = 404
		} else if i < 12 {
			status = 499
		}
		r.Record(true, status, d, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	r.Record(false, 200, time.Millisecond, t0)
	h := r.Report(t0.Add(30*time.Second), time.Time{})
	n := h.New
	if n.Requests != 100 || n.ErrorRate != 0.05 {
		t.Fatalf("new: %+v", n)
	}
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= 0.0625*float64(want)
	}
	if !near(n.P50, 10*time.Millisecond) || !near(n.P90, 10*time.Millisecond) || !near(n.P99, 100*time.Millisecond) {
		t.Errorf("percentiles: p50 %v p90 %v p99 %v", n.P50, n.P90, n.P99)
	}
	// 100 requests over the 30 s since the window was made.
	if math.Abs(n.Rate-100.0/30) > 1e-9 {
		t.Errorf("rate %v", n.Rate)
	}
	if h.Legacy.Requests != 1 || h.Legacy.ErrorRate != 0 || h.Window != time.Minute {
		t.Errorf("legacy: %+v", h)
	}
}

func TestWindowSlides(t *testing.T) {
	t.Parallel()
	r := newRoute("orders", 10*time.Second, t0)
	for i := range 20 {
		r.Record(true, 500, time.Millisecond, t0.Add(time.Duration(i)*time.Second))
	}
	// At t0+19.5s the window holds the seconds from about 10 to 19.
	h := r.Report(t0.Add(19500*time.Millisecond), time.Time{})
	if h.New.Requests < 9 || h.New.Requests > 10 || h.New.ErrorRate != 1 {
		t.Fatalf("after 20 s: %+v", h.New)
	}
	// A minute later nothing is left, and slots reused hold only new data.
	r.Record(true, 200, time.Millisecond, t0.Add(80*time.Second))
	h = r.Report(t0.Add(80*time.Second), time.Time{})
	if h.New.Requests != 1 || h.New.ErrorRate != 0 {
		t.Fatalf("a minute later: %+v", h.New)
	}
	// A record older than the window is dropped, not counted as new.
	r.Record(true, 500, time.Millisecond, t0.Add(time.Second))
	if h = r.Report(t0.Add(80*time.Second), time.Time{}); h.New.Requests != 1 {
		t.Fatalf("an old record was counted: %+v", h.New)
	}
}

func TestReportSince(t *testing.T) {
	t.Parallel()
	r := newRoute("orders", 10*time.Second, t0)
	for i := range 5 {
		r.Record(true, 500, time.Millisecond, t0.Add(time.Duration(i)*time.Second))
	}
	since := t0.Add(5 * time.Second)
	// The slot since falls in began before it: left out, so records a
	// slot (833 ms) or more after since are the ones counted.
	r.Record(true, 500, time.Millisecond, since)
	for i := range 3 {
		r.Record(true, 200, time.Millisecond, since.Add(time.Second+time.Duration(i)*500*time.Millisecond))
	}
	h := r.Report(since.Add(3*time.Second), since)
	if h.New.Requests != 3 || h.New.ErrorRate != 0 || math.Abs(h.New.Rate-1) > 1e-9 {
		t.Fatalf("since: %+v", h.New)
	}
	if h = r.Report(since.Add(3*time.Second), time.Time{}); h.New.Requests != 9 {
		t.Fatalf("whole window: %+v", h.New)
	}
}

func TestSetKeepsWindowsAcrossReloads(t *testing.T) {
	t.Parallel()
	s := NewSet()
	a := s.Route("orders", time.Minute)
	if s.Route("orders", time.Minute) != a || s.Get("orders") != a {
		t.Fatal("same window not kept")
	}
	b := s.Route("orders", 2*time.Minute)
	if b == a || b.Window() != 2*time.Minute {
		t.Fatal("a new window length keeps the old window")
	}
	s.Route("cart", time.Minute)
	s.Retain(func(name string) bool { return name == "cart" })
	if s.Get("orders") != nil || len(s.Report(time.Now())) != 1 {
		t.Fatal("Retain kept orders")
	}
}

// Concurrent records lose nothing (run with -race).
func TestConcurrentRecords(t *testing.T) {
	t.Parallel()
	r := newRoute("orders", time.Minute, t0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				r.Record(g%2 == 0, 200+300*(i%2), time.Millisecond, t0.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	h := r.Report(t0.Add(time.Second), time.Time{})
	if h.New.Requests != 4000 || h.Legacy.Requests != 4000 || h.New.ErrorRate != 0.5 {
		t.Fatalf("%+v", h)
	}
}

// BenchmarkRecord is the cost a request pays for the window (in
// Gateway.account), serially and from every CPU at once.
func BenchmarkRecord(b *testing.B) {
	r := newRoute("orders", time.Minute, time.Now())
	b.Run("serial", func(b *testing.B) {
		now := time.Now()
		for i := 0; b.Loop(); i++ {
			r.Record(i%2 == 0, 200, 3*time.Millisecond, now)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Record(true, 200, 3*time.Millisecond, now)
			}
		})
	})
}

// Issue 16: a side's ring is made by its first request, so thousands of
// routes without traffic cost no counters; requests racing to make it
// all land in the one ring that wins.
func TestRingMadeByFirstRequest(t *testing.T) {
	t.Parallel()
	r := newRoute("orders", time.Minute, t0)
	if r.sides[0].ring.Load() != nil || r.sides[1].ring.Load() != nil {
		t.Fatal("a route without requests has counters")
	}
	if h := r.Report(t0.Add(time.Second), time.Time{}); h.Legacy.Requests != 0 || h.New.Requests != 0 || h.New.P99 != 0 {
		t.Fatalf("report without requests: %+v", h)
	}
	const workers, each = 8, 250
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-start
			for range each {
				r.Record(true, 200, time.Millisecond, t0)
			}
		})
	}
	close(start)
	wg.Wait()
	if r.sides[0].ring.Load() != nil {
		t.Error("the legacy side got counters from new-side requests")
	}
	if n := r.Report(t0.Add(time.Second), time.Time{}).New.Requests; n != workers*each {
		t.Errorf("new side counted %d requests, want %d", n, workers*each)
	}
}
