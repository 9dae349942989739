// Command revload measures route revisions on running ficus instances
// that follow one route store (routes.source: postgres): it serves an
// upstream on loopback, stores a rule set of -routes routes, then drives
// traffic through every instance for -d ("before"), and again for -d
// while it stores -applies new revisions of the same size, one after the
// other once every instance serves the previous one ("during"). For each
// revision it measures, per instance, the time from the end of the
// store's Apply to /readyz naming the revision.
//
// It prints one line of key=value results. It targets loopback only and
// runs for a bounded time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL URL of the route store")
	fronts := flag.String("fronts", "", "front doors, comma-separated (http://127.0.0.1:…)")
	opses := flag.String("ops", "", "their operational listeners, same order")
	n := flag.Int("routes", 10000, "routes per revision")
	applies := flag.Int("applies", 5, "revisions stored during the load")
	workers := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "length of each traffic phase")
	flag.Parse()
	frontURLs, opsURLs := strings.Split(*fronts, ","), strings.Split(*opses, ",")
	for _, u := range append(slices.Clone(frontURLs), opsURLs...) {
		if !strings.HasPrefix(u, "http://127.") {
			log.Fatalf("revload only targets loopback (got %q)", u)
		}
	}
	if len(frontURLs) != len(opsURLs) {
		log.Fatal("-fronts and -ops differ in length")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := revisions.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	st := revisions.New(pool)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	upstream := "http://" + ln.Addr().String()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers * 2}, Timeout: 10 * time.Second}
	live, err := st.LiveNumber(ctx)
	if err != nil {
		log.Fatal(err)
	}
	apply := func(gen int) (int64, time.Time) {
		r, err := st.Apply(ctx, revisions.Proposal{Text: ruleSet(upstream, *n, gen), Parent: live, Author: "revload", Reason: "benchmark"})
		if err != nil {
			log.Fatal(err)
		}
		live = r.Number
		return r.Number, time.Now()
	}
	rev, _ := apply(0)
	for _, o := range opsURLs {
		waitServes(client, o, rev, time.Minute)
	}

	before := drive(client, frontURLs, *n, *workers, *dur, nil)
	var props []time.Duration
	during := drive(client, frontURLs, *n, *workers, *dur, func() {
		for i := 1; i <= *applies; i++ {
			rev, at := apply(i)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, o := range opsURLs {
				wg.Go(func() {
					d := waitServes(client, o, rev, time.Minute).Sub(at)
					mu.Lock()
					props = append(props, d)
					mu.Unlock()
				})
			}
			wg.Wait()
		}
	})
	slices.Sort(props)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	fmt.Printf("routes=%d instances=%d applies=%d before_rps=%.0f before_p50=%.2f before_p99=%.2f before_failed=%d "+
		"during_rps=%.0f during_p50=%.2f during_p99=%.2f during_failed=%d during_requests=%d prop_median=%s prop_max=%s prop_n=%d\n",
		*n, len(frontURLs), *applies, before.rps, before.p(0.5), before.p(0.99), before.failed,
		during.rps, during.p(0.5), during.p(0.99), during.failed, during.requests, ms(props[len(props)/2]), ms(props[len(props)-1]), len(props))
}

// ruleSet is a rule file of n prefix routes; gen alternates each route
// between two upstream names (one server), so every revision changes all
// of them.
func ruleSet(upstream string, n, gen int) string {
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

// waitServes polls ops/readyz until it names revision rev and returns
// when it did.
func waitServes(client *http.Client, ops string, rev int64, within time.Duration) time.Time {
	want := fmt.Sprintf("rules: revision %d\n", rev)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(ops + "/readyz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasSuffix(string(body), want) {
				return time.Now()
			}
		}
		time.Sleep(time.Millisecond)
	}
	log.Fatalf("%s did not serve revision %d within %v", ops, rev, within)
	return time.Time{}
}

type result struct {
	rps              float64
	requests, failed int64
	p                func(float64) float64
}

// drive sends GETs to random routes through the front doors in turn from
// workers clients, for at least d and until during (if set) returned.
func drive(client *http.Client, fronts []string, n, workers int, d time.Duration, during func()) result {
	stop := make(chan struct{})
	var failed, total atomic.Int64
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
				u := fmt.Sprintf("%s/svc/r%d/x", fronts[(w+i)%len(fronts)], rand.IntN(n))
				t0 := time.Now()
				resp, err := client.Get(u)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[w] = append(lat[w], time.Since(t0))
				total.Add(1)
				if err != nil || resp.StatusCode != 200 {
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
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return result{rps: float64(total.Load()) / elapsed.Seconds(), requests: total.Load(), failed: failed.Load(),
		p: func(q float64) float64 {
			if len(all) == 0 {
				return 0
			}
			return float64(all[int(float64(len(all)-1)*q)].Microseconds()) / 1000
		}}
}
