package background

import (
	"math"
	"runtime/debug"
	"testing"
)

// The collector is held off while background work runs (GOGC off, a
// memory limit CollectorBudget above what is in use) and the process's
// own settings come back when the last hold is released. Not parallel:
// the settings are the process's.
func TestCollectorHeldWhileWorkRuns(t *testing.T) {
	percent := debug.SetGCPercent(150)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	type settings struct {
		percent int
		limit   int64
	}
	read := func() settings {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return settings{p, debug.SetMemoryLimit(-1)}
	}
	before := inUse()
	during, err := Run(func() (settings, error) {
		// A nested hold (two parses at once) leaves the first one's
		// settings alone and restores nothing early.
		release := holdCollector()
		release()
		return read(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during.percent != -1 {
		t.Errorf("GOGC during the work: %d, want off (-1)", during.percent)
	}
	if lo, hi := int64(before+CollectorBudget)-8<<20, int64(inUse()+CollectorBudget)+8<<20; during.limit < lo || during.limit > hi {
		t.Errorf("memory limit during the work: %d, want about %d (in use + budget)", during.limit, before+CollectorBudget)
	}
	if got := read(); got != (settings{150, math.MaxInt64}) {
		t.Errorf("after the work: %+v, want GOGC 150 and no limit back", got)
	}

	// A limit the process set lower stays the ceiling.
	debug.SetMemoryLimit(1 << 20)
	during, _ = Run(func() (settings, error) { return read(), nil })
	if during.limit != 1<<20 {
		t.Errorf("memory limit during the work: %d, want the process's own 1 MiB", during.limit)
	}
	if got := read(); got != (settings{150, 1 << 20}) {
		t.Errorf("after the work: %+v, want GOGC 150 and the 1 MiB limit back", got)
	}
}
