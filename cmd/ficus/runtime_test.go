package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
)

// Issue 15: listen.ops_pprof serves Go's profiles on the ops listener,
// and only there; off by default.
func TestServeOpsPprof(t *testing.T) {
	up := slowUpstream(t)
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("ops_pprof=", on), func(t *testing.T) {
			front, ops, _ := testServer(t, fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\", ops_pprof: %v}\nroutes: {file: %s, watch: false}\nidp: {enabled: false}\nlog: {access_log: false}\n",
				on, routeFile(t, up.URL)))
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/profile?seconds=1"} {
				if code, _ := get(t, ops+p); code != want {
					t.Errorf("ops %s: %d, want %d", p, code, want)
				}
			}
			// Never on the front door: it goes to the monolith.
			if code, body := get(t, front+"/debug/pprof/"); code != http.StatusOK || !strings.HasPrefix(body, "done /debug/pprof/") {
				t.Errorf("front door: %d %q", code, body)
			}
		})
	}
}

// Issue 15: runtime.gogc and runtime.memory_limit reach the runtime,
// each unless the environment set it.
func TestApplyRuntime(t *testing.T) {
	prevGC, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := config.Defaults()
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	// t.Setenv cannot unset: LookupEnv sees "" as set, so the values of
	// the environment stay.
	applyRuntime(&cfg, quiet)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC in the environment: percent %d, want it left at 100", got)
	}

	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	debug.SetGCPercent(77) // so that the default has to be applied to show
	applyRuntime(&cfg, quiet)
	if got := debug.SetGCPercent(100); got != config.DefaultGOGC {
		t.Fatalf("default percent %d, want %d", got, config.DefaultGOGC)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("no limit by default, got %d", got)
	}
	cfg.Runtime = config.Runtime{GOGC: 150, MemoryLimit: 48 << 20}
	applyRuntime(&cfg, quiet)
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("percent %d, want 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 48<<20 {
		t.Fatalf("limit %d, want %d", got, 48<<20)
	}
}

// unsetenv removes k from the environment for the test (t.Setenv first,
// so that it is restored after).
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "")
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
