package background

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// CollectorBudget is how far the process's memory may grow while
// background work runs before the garbage collector runs. Parsing 10,000
// routes allocates ~40 MB, nearly all of it garbage by the end: with the
// default GOGC and a small live heap that is several collections per
// parse, and each one stops the world, which has to wait for the parse's
// low-priority thread to be given the processor again (measured:
// stop-the-world phases of 5-27 ms instead of ~1 ms while a reload
// parsed). Holding the collector off until the work ends, or until the
// budget is spent, makes that one or two collections.
//
// The budget is a trade between those pauses and peak memory, and the
// peak also depends on what the process holds when the work starts: a
// heap between two collections carries garbage and free pages, so hold
// first collects and returns free memory to the system
// (debug.FreeOSMemory, at the caller's normal priority, before the
// low-priority thread starts), and the budget counts from there.
// Measured on 2026-11-30/12-01 with 10,000 routes reloaded every second
// under load (strangler/bench/scaleload -rounds 3, interleaved runs, quiet
// 2-core machine): without that first collection, 64 MiB gave a p99
// during reloads of 1.06-1.12x the p99 without and a peak RSS of 122-124
// MiB, 16 MiB 1.09-1.18x and 79-107 MiB, no hold at all 1.28-1.35x and
// 97-98 MiB; with it, 16 MiB 1.76-1.94x and 70 MiB (collections during
// the parse), 24 MiB 1.10-1.26x and 76-79 MiB, 32 MiB 1.05-1.30x and
// 93-101 MiB. 24 MiB keeps the peak well under issue 16's 100 MiB with
// the p99 of the larger budgets.
const CollectorBudget = 24 << 20

// held is the process-wide state that hold changes while background work
// runs, and what it was before.
var held struct {
	mu      sync.Mutex
	n       int   // holds not yet released
	percent int   // GOGC before the first hold
	limit   int64 // the memory limit before the first hold
	procs   int   // GOMAXPROCS before the first hold
}

// hold readies the process for a piece of low-priority work, and release
// puts it back:
//
//   - One more P (GOMAXPROCS + 1). A goroutine's thread holds its P even
//     while the system has descheduled it, which at nice 19 on a busy
//     machine is most of the time: without a spare one, requests would
//     be served on one P fewer for as long as the parse lasts.
//   - A collection first, which returns free memory to the system;
//     then the collector's GOGC pacing off, under a memory limit of the
//     memory in use now plus CollectorBudget (never above a limit already
//     set), so that it collects during the work only if the work needs
//     more than that (see CollectorBudget).
//
// Holds nest: the settings come back when the last one is released.
// GOMAXPROCS comes back as it was set: the runtime's default (which
// follows the CPUs and the cgroup quota) unless the GOMAXPROCS
// environment variable set it.
func hold() (release func()) {
	held.mu.Lock()
	defer held.mu.Unlock()
	if held.n == 0 {
		debug.FreeOSMemory()
		held.procs = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(held.procs + 1)
		held.limit = debug.SetMemoryLimit(-1)
		ceiling := inUse() + CollectorBudget
		if ceiling > uint64(held.limit) {
			ceiling = uint64(held.limit)
		}
		debug.SetMemoryLimit(int64(ceiling))
		held.percent = debug.SetGCPercent(-1)
	}
	held.n++
	return func() {
		held.mu.Lock()
		defer held.mu.Unlock()
		if held.n--; held.n > 0 {
			return
		}
		debug.SetGCPercent(held.percent)
		debug.SetMemoryLimit(held.limit)
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.SetDefaultGOMAXPROCS()
		} else {
			runtime.GOMAXPROCS(held.procs)
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
