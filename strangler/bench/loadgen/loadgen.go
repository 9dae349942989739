// Package loadgen is what the load drivers of `make bench` share
// (routes/revisions/bench/revload, strangler/bench/scaleload,
// idp/bench/idpload): a synthetic rule set of many routes, a phase of GETs
// from concurrent clients with its latencies and failures, and their
// percentiles. It targets loopback servers the scripts start.
package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RuleSet is a rule file of n prefix routes (/svc/rN) over two upstreams
// at the same URL; gen alternates every route's target between them, so
// that consecutive generations change every route.
func RuleSet(upstream string, n, gen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: %q}\n  alt: {url: %q}\nroutes:\n", upstream, upstream)
	for i := range n {
		to := "legacy"
		if (i+gen)%2 == 1 {
			to = "alt"
		}
		fmt.Fprintf(&b, "  - {name: r%d, match: {prefix: /svc/r%d}, to: %s}\n", i, i, to)
	}
	return b.String()
}

// Result is one phase: requests per second, how many were sent and how
// many failed (no answer, or not 200), and P: quantile → milliseconds.
type Result struct {
	RPS              float64
	Requests, Failed int64
	P                func(q float64) float64

	lat     [][]time.Duration
	elapsed time.Duration
}

// Merge pools phases into one: their requests, failures and latencies,
// and the requests per second over their summed lengths.
func Merge(rs ...Result) Result {
	var m Result
	for _, r := range rs {
		m.Requests += r.Requests
		m.Failed += r.Failed
		m.lat = append(m.lat, r.lat...)
		m.elapsed += r.elapsed
	}
	if m.elapsed > 0 {
		m.RPS = float64(m.Requests) / m.elapsed.Seconds()
	}
	m.P = Percentiles(m.lat)
	return m
}

// Drive sends GETs from workers clients (worker w's i-th request to
// url(w, i)) for at least d, and while during (if set) runs: during runs
// on the caller's goroutine, the phase ends when it has returned and d
// has passed.
func Drive(client *http.Client, workers int, d time.Duration, url func(w, i int) string, during func()) Result {
	stop := make(chan struct{})
	var failed atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				resp, err := client.Get(url(w, i))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	if during != nil {
		during()
	}
	if rest := d - time.Since(start); rest > 0 {
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	var n int64
	for _, l := range lat {
		n += int64(len(l))
	}
	return Result{RPS: float64(n) / elapsed.Seconds(), Requests: n, Failed: failed.Load(), P: Percentiles(lat), lat: lat, elapsed: elapsed}
}

// Percentiles merges the workers' latencies and returns q → that quantile
// in milliseconds (0 when nothing was measured).
func Percentiles(lat [][]time.Duration) func(q float64) float64 {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*q)].Microseconds()) / 1000
	}
}
