package adapters

import (
	"errors"

	"github.com/ficus-gw/ficus/adapters/schemes"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the web-hook adapters' Prometheus collectors. A nil
// *Metrics records nothing.
type Metrics struct {
	received, duplicates, delivered, retried, dead *prometheus.CounterVec
	rejected                                       *prometheus.CounterVec
	ack, lag                                       *prometheus.HistogramVec
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"adapter"}, labels...))
	}
	m := &Metrics{
		received:   counter("ficus_webhooks_received_total", "Web-hooks accepted and stored (repeats excluded)."),
		duplicates: counter("ficus_webhooks_duplicates_total", "Repeats of an already stored event id, answered and not stored."),
		rejected:   counter("ficus_webhooks_rejected_total", "Web-hooks refused, by reason.", "reason"),
		delivered:  counter("ficus_webhooks_delivered_total", "Events delivered to their target."),
		retried:    counter("ficus_webhooks_retried_total", "Delivery attempts that failed and were rescheduled."),
		dead:       counter("ficus_webhooks_dead_lettered_total", "Events given up on (dead letters)."),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_webhooks_ack_seconds",
			Help: "From arrival to the durable acknowledgement (commit) of an event.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"adapter"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_webhooks_delivery_lag_seconds",
			Help: "From arrival to delivery.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 20)}, []string{"adapter"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.duplicates, m.rejected, m.delivered, m.retried, m.dead, m.ack, m.lag)
	}
	return m
}

func (m *Metrics) reject(adapter string, err error) {
	if m == nil {
		return
	}
	reason := "other"
	for _, r := range []struct {
		err  error
		name string
	}{{schemes.ErrMissing, "missing"}, {schemes.ErrSignature, "signature"}, {schemes.ErrTimestamp, "timestamp"},
		{schemes.ErrMalformed, "malformed"}, {schemes.ErrForbidden, "forbidden"}, {schemes.ErrUnavailable, "unavailable"}} {
		if errors.Is(err, r.err) {
			reason = r.name
		}
	}
	m.rejected.WithLabelValues(adapter, reason).Inc()
}

func (m *Metrics) rejectReason(adapter, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(adapter, reason).Inc()
	}
}

func (m *Metrics) accepted(adapter string, fresh bool, seconds float64) {
	if m == nil {
		return
	}
	if fresh {
		m.received.WithLabelValues(adapter).Inc()
		m.ack.WithLabelValues(adapter).Observe(seconds)
	} else {
		m.duplicates.WithLabelValues(adapter).Inc()
	}
}

func (m *Metrics) outcome(adapter, what string, lagSeconds float64) {
	if m == nil {
		return
	}
	switch what {
	case "delivered":
		m.delivered.WithLabelValues(adapter).Inc()
		m.lag.WithLabelValues(adapter).Observe(lagSeconds)
	case "retried":
		m.retried.WithLabelValues(adapter).Inc()
	case "dead":
		m.dead.WithLabelValues(adapter).Inc()
	}
}
