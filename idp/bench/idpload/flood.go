package main

import (
	"bufio"
	"fmt"
	"github.com/ficus-gw/ficus/strangler/bench/loadgen"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type floodOpts struct {
	id, secret, coldID, coldSecret string
	legit, bogus                   int
	xff                            bool
	pid                            int
	dur                            time.Duration
}

// runFlood measures the IDP under a flood of bogus client authentications
// (each costs an argon2id run) while real clients ask for tokens, and
// prints one line. Every request names its client address in
// X-Forwarded-For (ficus must trust the load generator as a proxy): the
// real clients 192.0.2.10, the bogus workers 198.51.100.1 or, with -xff, a
// random address each time.
//
//	flood <bogus total> <401> <503> <429> <other> <legit ok> <legit failed> <legit p50 ms> <legit p99 ms>
//	      <cold attempts> <cold ok> <rss before MiB> <peak rss MiB>
func runFlood(client *http.Client, base string, o floodOpts) {
	try := func(id, secret, from string) (int, int, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, retry, nil
	}
	// The real client's secret is verified once before the flood, as it is
	// for a client that has been working.
	const real = "192.0.2.10"
	if code, _, err := try(o.id, o.secret, real); err != nil || code != 200 {
		log.Fatalf("warm-up: %d %v", code, err)
	}
	before := rss(o.pid, "VmRSS")

	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	if o.pid != 0 {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if v := rss(o.pid, "VmRSS"); v > peak.Load() {
					peak.Store(v)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}

	deadline := time.Now().Add(o.dur)
	var byStatus sync.Map // status -> *atomic.Int64
	count := func(code int) {
		v, _ := byStatus.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	var wg sync.WaitGroup
	for range o.bogus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				from := "198.51.100.1"
				if o.xff {
					from = fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256))
				}
				code, _, err := try(fmt.Sprintf("bogus-%x", rand.Uint64()), fmt.Sprintf("guess-%x", rand.Uint64()), from)
				if err != nil {
					code = -1
				}
				count(code)
			}
		}()
	}
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, o.legit)
	for w := range o.legit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				code, _, err := try(o.id, o.secret, real)
				if err != nil || code != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	coldAttempts, coldOK := 0, false
	if o.coldID != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(o.dur / 5) // well into the flood
			for time.Now().Before(deadline) {
				coldAttempts++
				code, retry, err := try(o.coldID, o.coldSecret, real)
				if err == nil && code == 200 {
					coldOK = true
					return
				}
				time.Sleep(time.Duration(max(retry, 1)) * time.Second) // as Retry-After says
			}
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()

	pct := loadgen.Percentiles(lat)
	n := func(code int) int64 {
		if v, ok := byStatus.Load(code); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	var total int64
	byStatus.Range(func(_, v any) bool { total += v.(*atomic.Int64).Load(); return true })
	hwm := max(peak.Load(), rss(o.pid, "VmHWM"))
	fmt.Printf("flood %d %d %d %d %d %d %d %.2f %.2f %d %t %d %d\n", total, n(401), n(503), n(429), total-n(401)-n(503)-n(429),
		ok.Load(), failed.Load(), pct(0.5), pct(0.99), coldAttempts, coldOK, before>>20, hwm>>20)
}

// rss reads a memory figure (VmRSS, VmHWM) of a process, in bytes.
func rss(pid int, field string) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
