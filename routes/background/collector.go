package background

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// CollectorBudget is how far the process's memory may grow while a
// background parse runs before the garbage collector runs. Parsing
// 10,000 routes allocates ~40 MB, nearly all of it garbage by the end:
// with the default GOGC and a small live heap that is several
// collections per parse, and each one stops the world, which has to wait
// for the parse's low-priority thread to be given the processor again
// (measured: stop-the-world phases of 5-27 ms instead of ~1 ms, and the
// p99 of requests during reloads rose with them). Holding the collector
// off until the parse ends makes that one collection, after it.
const CollectorBudget = 64 << 20

var collector struct {
	mu      sync.Mutex
	held    int
	percent int   // GOGC before the first hold
	limit   int64 // the memory limit before the first hold
}

// holdCollector turns the collector's GOGC pacing off and sets a memory
// limit of the memory in use now plus CollectorBudget (never above a
// limit already set), so that the collector runs only if the parse
// needs more than that; release restores both. Holds nest: the settings
// come back when the last one is released.
func holdCollector() (release func()) {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	if collector.held == 0 {
		collector.limit = debug.SetMemoryLimit(-1)
		ceiling := inUse() + CollectorBudget
		if ceiling > uint64(collector.limit) {
			ceiling = uint64(collector.limit)
		}
		debug.SetMemoryLimit(int64(ceiling))
		collector.percent = debug.SetGCPercent(-1)
	}
	collector.held++
	return func() {
		collector.mu.Lock()
		defer collector.mu.Unlock()
		if collector.held--; collector.held == 0 {
			debug.SetGCPercent(collector.percent)
			debug.SetMemoryLimit(collector.limit)
		}
	}
}

// inUse is the memory the runtime counts against its memory limit: all
// it has mapped less what it returned to the system. It reads runtime
// counters without stopping the world.
func inUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
