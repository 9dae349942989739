package ops

import (
	"context"
	"sync/atomic"
	"time"
)

// Readiness is the readiness rule of a process beyond its route table:
// it is ready while it is not draining and every check passes. The zero
// value is ready until Drain. A Readiness must not be copied after first
// use.
type Readiness struct {
	// Checks must all pass, each within CheckTimeout, for the process to
	// be ready (the store's Ping). Nil: none.
	Checks []func(context.Context) error
	// CheckTimeout bounds each check. Default 1s.
	CheckTimeout time.Duration

	draining atomic.Bool
}

// Drain makes the process not ready from now on (it is shutting down:
// load balancers should stop sending it requests).
func (r *Readiness) Drain() { r.draining.Store(true) }

// Ready reports whether the process should receive requests.
func (r *Readiness) Ready() bool {
	if r.draining.Load() {
		return false
	}
	timeout := r.CheckTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	for _, check := range r.Checks {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := check(ctx)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}
