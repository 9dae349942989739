package idp

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters is a bounded set of token buckets, one per key.
type limiters struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[string]*limiterEntry
}

type limiterEntry struct {
	l    *rate.Limiter
	seen time.Time
}

const maxLimiters = 100000

func newLimiters(r rate.Limit, burst int) *limiters {
	return &limiters{r: r, burst: burst, m: map[string]*limiterEntry{}}
}

// allow takes one token for key; when none is left it returns false and
// the seconds to wait.
func (ls *limiters) allow(key string, now time.Time) (bool, int) {
	if ls == nil || ls.r < 0 {
		return true, 0
	}
	ls.mu.Lock()
	e := ls.m[key]
	if e == nil {
		if len(ls.m) >= maxLimiters {
			ls.sweep(now)
		}
		e = &limiterEntry{l: rate.NewLimiter(ls.r, ls.burst)}
		ls.m[key] = e
	}
	e.seen = now
	ls.mu.Unlock()
	r := e.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// sweep drops limiters idle long enough to be full again (lock held).
func (ls *limiters) sweep(now time.Time) {
	idle := time.Minute
	if ls.r > 0 {
		if full := time.Duration(float64(ls.burst) / float64(ls.r) * float64(time.Second)); full > idle {
			idle = full
		}
	}
	for k, e := range ls.m {
		if now.Sub(e.seen) > idle {
			delete(ls.m, k)
		}
	}
}
