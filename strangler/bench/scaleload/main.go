// Command scaleload measures a gateway with a large rule set (issue 16):
// it starts `ficus serve` on a file of -routes routes of which -hot see
// traffic, drives traffic at the hot ones for one phase without reloads
// and one while it rewrites the file every -every (each rewrite changes
// every route's target, and the gateway's file watch reloads it), -rounds
// times alternated (percentiles pooled per kind of phase), then
// reads the size of /metrics, the last build's time and bytes, and the
// process's peak resident memory. It prints one line of key=value pairs.
// Loopback only; bounded by its two phases.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"github.com/ficus-gw/ficus/strangler/bench/loadgen"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	ficus := flag.String("ficus", "", "the ficus binary")
	dir := flag.String("dir", "", "a directory for the rule file, the configuration and the logs")
	port := flag.Int("port", 18480, "front door port on 127.0.0.1 (ops listener: port+1)")
	n := flag.Int("routes", 10000, "routes in the rule set")
	hot := flag.Int("hot", 100, "routes that see traffic, spread over the rule set")
	workers := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "length of each traffic phase")
	every := flag.Duration("every", time.Second, "time between two rewrites of the rule file in the second phase")
	rounds := flag.Int("rounds", 1, "pairs of phases, alternated (without, with reloads); the percentiles pool each kind, so that load from elsewhere on the machine falls on both alike")
	flag.Parse()
	if *ficus == "" || *dir == "" || *hot < 1 || *hot > *n {
		log.Fatal("usage: scaleload -ficus BIN -dir DIR [-routes N -hot N -c N -d DUR -every DUR -rounds N]")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	upstream := "http://" + ln.Addr().String()
	front := fmt.Sprintf("http://127.0.0.1:%d", *port)
	ops := fmt.Sprintf("http://127.0.0.1:%d", *port+1)

	rules := filepath.Join(*dir, "routes.yaml")
	write := func(gen int) {
		tmp := rules + ".tmp"
		if err := os.WriteFile(tmp, []byte(loadgen.RuleSet(upstream, *n, gen)), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, rules); err != nil {
			log.Fatal(err)
		}
	}
	write(0)
	cfg := filepath.Join(*dir, "ficus.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:%d\"}\n"+
		"routes: {file: routes.yaml}\nidp: {enabled: false}\nlog: {level: info, access_log: false}\n", *port, *port+1)), 0o600); err != nil {
		log.Fatal(err)
	}
	errLog, err := os.Create(filepath.Join(*dir, "ficus.err"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, *ficus, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, errLog
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers * 2}, Timeout: 10 * time.Second}
	ready := false
	for deadline := time.Now().Add(time.Minute); !ready && time.Now().Before(deadline); {
		if resp, err := client.Get(ops + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
		if !ready {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ready {
		log.Fatal("ficus did not become ready within a minute")
	}
	loadsAtStart := metric(client, ops, `ficus_route_reloads_total{result="ok"}`)
	step := *n / *hot
	url := func(w, i int) string { return fmt.Sprintf("%s/svc/r%d/x", front, ((w+i)%*hot)*step) }
	var rewrites int
	var quiet, reloading []loadgen.Result
	var ratios []string
	for range max(*rounds, 1) {
		b := loadgen.Drive(client, *workers, *dur, url, nil)
		d := loadgen.Drive(client, *workers, *dur, url, func() {
			t := time.NewTicker(*every)
			defer t.Stop()
			end := time.After(*dur)
			for {
				select {
				case <-end:
					return
				case <-t.C:
					rewrites++
					write(rewrites)
				}
			}
		})
		time.Sleep(2 * *every) // the last rewrite's reload
		quiet, reloading = append(quiet, b), append(reloading, d)
		ratios = append(ratios, fmt.Sprintf("%.2f", d.P(0.99)/b.P(0.99)))
	}
	before, during := loadgen.Merge(quiet...), loadgen.Merge(reloading...)
	resp, err := client.Get(ops + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	reloads := metricIn(text, `ficus_route_reloads_total{result="ok"}`) - loadsAtStart
	fmt.Printf("routes=%d hot=%d before_rps=%.0f before_p50=%.2f before_p99=%.2f before_failed=%d "+
		"during_rps=%.0f during_p50=%.2f during_p99=%.2f during_failed=%d during_requests=%d rewrites=%d reloads=%.0f "+
		"metrics_bytes=%d metrics_lines=%d build_ms=%.1f build_bytes=%.0f peak_rss_mib=%.1f rss_mib=%.1f rounds=%d p99_ratio=%.2f round_p99_ratios=%s\n",
		*n, *hot, before.RPS, before.P(0.5), before.P(0.99), before.Failed,
		during.RPS, during.P(0.5), during.P(0.99), during.Failed, during.Requests, rewrites, reloads,
		len(body), strings.Count(text, "\n"), metricIn(text, "ficus_routes_build_seconds")*1000, metricIn(text, "ficus_routes_build_bytes"),
		procKiB(cmd.Process.Pid, "VmHWM")/1024, procKiB(cmd.Process.Pid, "VmRSS")/1024,
		len(ratios), during.P(0.99)/before.P(0.99), strings.Join(ratios, ","))
}

func metric(client *http.Client, ops, name string) float64 {
	resp, err := client.Get(ops + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return metricIn(string(b), name)
}

// metricIn is the value of the series written exactly as name, or 0.
func metricIn(text, name string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// procKiB reads a kB field of /proc/PID/status.
func procKiB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return 0
}
