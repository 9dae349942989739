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
	"github.com/ficus-gw/ficus/strangler/bench/loadgen"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
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
		r, err := st.Apply(ctx, revisions.Proposal{Text: loadgen.RuleSet(upstream, *n, gen), Parent: live, Author: "revload", Reason: "benchmark"})
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

	url := func(w, i int) string {
		return fmt.Sprintf("%s/svc/r%d/x", frontURLs[(w+i)%len(frontURLs)], rand.IntN(*n))
	}
	before := loadgen.Drive(client, *workers, *dur, url, nil)
	var props []time.Duration
	during := loadgen.Drive(client, *workers, *dur, url, func() {
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
		*n, len(frontURLs), *applies, before.RPS, before.P(0.5), before.P(0.99), before.Failed,
		during.RPS, during.P(0.5), during.P(0.99), during.Failed, during.Requests, ms(props[len(props)/2]), ms(props[len(props)-1]), len(props))
}

// ruleSet is a rule file of n prefix routes; gen alternates each route
// between two upstream names (one server), so every revision changes all
// of them.

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
