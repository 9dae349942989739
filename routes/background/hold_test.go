package background

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// forcedCollections is how many collections were forced so far (by
// runtime.GC or debug.FreeOSMemory).
func forcedCollections() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// While background work runs the process has one more P and the
// collector is held off (GOGC off, a memory limit CollectorBudget above
// what is in use); the process's own settings come back when the last
// hold is released. Not parallel: the settings are the process's.
func TestProcessHeldWhileWorkRuns(t *testing.T) {
	percent := debug.SetGCPercent(150)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	type settings struct {
		percent int
		limit   int64
		procs   int
	}
	read := func() settings {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return settings{p, debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0)}
	}
	before, forced := inUse(), forcedCollections()
	during, err := Run(func() (settings, error) {
		// A nested hold (two parses at once) leaves the first one's
		// settings alone and restores nothing early.
		release := hold()
		release()
		return read(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during.percent != -1 || during.procs != procs+1 {
		t.Errorf("during the work: GOGC %d, GOMAXPROCS %d; want off (-1) and %d", during.percent, during.procs, procs+1)
	}
	if got := forcedCollections(); got <= forced {
		t.Errorf("forced collections: %d before the work, %d after; want the hold's first collection", forced, got)
	}
	// The hold collects and returns free memory first, so what is in use
	// when the budget is counted is at most what was before.
	if lo, hi := int64(CollectorBudget), int64(before+CollectorBudget)+8<<20; during.limit < lo || during.limit > hi {
		t.Errorf("memory limit during the work: %d, want between %d and %d (in use after a collection + budget)", during.limit, lo, hi)
	}
	if got := read(); got != (settings{150, math.MaxInt64, procs}) {
		t.Errorf("after the work: %+v, want GOGC 150, no limit and GOMAXPROCS %d back", got, procs)
	}

	// A limit the process set lower stays the ceiling.
	debug.SetMemoryLimit(1 << 20)
	during, _ = Run(func() (settings, error) { return read(), nil })
	if during.limit != 1<<20 {
		t.Errorf("memory limit during the work: %d, want the process's own 1 MiB", during.limit)
	}
	if got := read(); got != (settings{150, 1 << 20, procs}) {
		t.Errorf("after the work: %+v, want GOGC 150 and the 1 MiB limit back", got)
	}
}
