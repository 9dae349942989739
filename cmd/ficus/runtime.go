package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
)

// applyRuntime sets the collector's growth percent and soft memory limit
// from runtime.gogc and runtime.memory_limit, each unless the environment's
// GOGC or GOMEMLIMIT already set it (the runtime read those at start).
func applyRuntime(cfg *config.Config, logger *slog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		logger.Info("garbage collector: GOGC from the environment; runtime.gogc is not applied", "GOGC", v)
	} else {
		debug.SetGCPercent(cfg.GOGC())
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		logger.Info("garbage collector: GOMEMLIMIT from the environment; runtime.memory_limit is not applied", "GOMEMLIMIT", v)
	} else if cfg.Runtime.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.Runtime.MemoryLimit))
	}
}

// mountPprof serves Go's profiles under /debug/pprof/ on mux (the ops
// listener's, with listen.ops_pprof). The handlers are mounted one by one:
// the package's own registration is on http.DefaultServeMux, which no
// ficus listener serves.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
