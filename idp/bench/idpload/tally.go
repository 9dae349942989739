package main

import (
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/strangler/bench/loadgen"
)

// tally counts one measurement's operations: the latencies of those that
// succeeded, per worker, and the errors (the first three logged).
type tally struct {
	ops, errs atomic.Int64
	lat       [][]time.Duration
}

func newTally(workers int) *tally { return &tally{lat: make([][]time.Duration, workers)} }

// note records worker w's operation begun at t0 that ended with err.
func (t *tally) note(w int, t0 time.Time, err error) {
	if err != nil {
		if t.errs.Add(1) <= 3 {
			log.Print(err)
		}
		return
	}
	t.ops.Add(1)
	t.lat[w] = append(t.lat[w], time.Since(t0))
}

// line is the result line load.sh reads: op, rate over elapsed, p50 and
// p99 in milliseconds, errors.
func (t *tally) line(op string, elapsed time.Duration) string {
	pct := loadgen.Percentiles(t.lat)
	return fmt.Sprintf("%s %.0f %.2f %.2f %d", op, float64(t.ops.Load())/elapsed.Seconds(), pct(0.5), pct(0.99), t.errs.Load())
}
