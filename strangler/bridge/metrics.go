package bridge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	whoami   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		whoami: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ficus_bridge_whoami_total",
			Help: "Who-am-I calls of the legacy session bridge, by bridge and outcome (ok, anonymous, error, timeout, busy).",
		}, []string{"bridge", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ficus_bridge_whoami_duration_seconds",
			Help:    "Duration of the legacy session bridge's who-am-I calls, by bridge.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"bridge"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.whoami, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("bridge metrics: %w", err)
			}
		}
	}
	return m, nil
}
