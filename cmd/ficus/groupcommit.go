package main

import (
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/prometheus/client_golang/prometheus"
)

// newGroupCommitMetrics registers the group commit's collectors on reg
// and returns the observer that feeds them (groupcommit.Options.Observe),
// labelled by the batcher's kind: tokens, rotations, inbox, delivered.
func newGroupCommitMetrics(reg prometheus.Registerer) func(groupcommit.Batch) {
	items := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_store_group_commit_items",
		Help:    "Writes per group commit, by kind.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11)}, []string{"kind"})
	commit := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_store_group_commit_seconds",
		Help:    "Time one group commit took (its statements and the commit), by kind.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}, []string{"kind"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_store_group_commit_wait_seconds",
		Help:    "Time a write waited before the commit holding it began (queued, then gathering), by kind.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14)}, []string{"kind"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ficus_store_group_commit_failed_total",
		Help: "Group commits that failed (every write in them got the error, or was tried again alone), by kind."}, []string{"kind"})
	reg.MustRegister(items, commit, wait, failed)
	return func(b groupcommit.Batch) {
		items.WithLabelValues(b.Name).Observe(float64(b.Items))
		commit.WithLabelValues(b.Name).Observe(b.Commit.Seconds())
		// The failed series exists, at 0, once its kind has committed
		// (operations.md: a kind has series once it has committed
		// something), so that an alert on its rate sees 0, not nothing.
		f := failed.WithLabelValues(b.Name)
		if b.Err != nil {
			f.Inc()
		}
		if len(b.Waited) > 0 {
			w := wait.WithLabelValues(b.Name)
			for _, d := range b.Waited {
				w.Observe(d.Seconds())
			}
		}
	}
}
