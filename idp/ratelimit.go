package idp

import (
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// limiters is a bounded set of token buckets, one per key: at most
// maxLimiters of them (the least used go first when more keys arrive), and
// a bucket idle long enough to be full again is dropped. A flood of new
// keys (random client ids, usernames or addresses) therefore costs bounded
// memory and constant time per request. A nil *limiters allows everything.
type limiters struct {
	r     rate.Limit
	burst int
	c     *otter.Cache[string, *bucket]
}

// bucket is one key's token bucket and the attempts in flight against it
// (see admit).
type bucket struct {
	l        *rate.Limiter
	inflight atomic.Int64
}

const maxLimiters = 1 << 16

// newLimiters returns buckets of burst tokens refilled at r; nil (no
// limit) when r is negative.
func newLimiters(r rate.Limit, burst int) *limiters {
	if r < 0 {
		return nil
	}
	idle := time.Minute
	if r > 0 {
		if full := time.Duration(float64(burst) / float64(r) * float64(time.Second)); full > idle {
			idle = full
		}
	}
	return &limiters{r: r, burst: burst, c: otter.Must(&otter.Options[string, *bucket]{
		MaximumSize:      maxLimiters,
		ExpiryCalculator: otter.ExpiryAccessing[string, *bucket](idle),
	})}
}

func (ls *limiters) get(key string) *bucket {
	b, _ := ls.c.ComputeIfAbsent(key, func() (*bucket, bool) { return &bucket{l: rate.NewLimiter(ls.r, ls.burst)}, false })
	return b
}

// allow takes one token for key; when none is left it returns false and
// the seconds to wait.
func (ls *limiters) allow(key string, now time.Time) (bool, int) {
	if ls == nil {
		return true, 0
	}
	l := ls.get(key).l
	if l.AllowN(now, 1) { // no Reservation to allocate on the common path
		return true, 0
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0 // a token came back in between: the reservation holds it
}

// blocked reports, without taking a token, whether key has no token left,
// and the seconds until it has one. Keys never charged are not stored.
func (ls *limiters) blocked(key string, now time.Time) (bool, int) {
	if ls == nil {
		return false, 0
	}
	b, ok := ls.c.GetIfPresent(key)
	if !ok {
		return false, 0
	}
	return ls.wait(b.l.TokensAt(now))
}

// wait says whether a bucket holding tokens lacks one, and for how many
// seconds.
func (ls *limiters) wait(tokens float64) (bool, int) {
	if tokens >= 1 {
		return false, 0
	}
	if ls.r == 0 {
		return true, 3600
	}
	return true, max(int(math.Ceil((1-tokens)/float64(ls.r))), 1)
}

// admit lets one more attempt that may fail (and be charged) be in flight
// for key, if the tokens left cover it and every attempt already in
// flight: concurrency cannot stretch the budget. Call done when the
// attempt is over (before charging it). When refused, wait is the seconds
// until a token is back.
func (ls *limiters) admit(key string, now time.Time) (done func(), ok bool, wait int) {
	if ls == nil {
		return func() {}, true, 0
	}
	b := ls.get(key)
	n := b.inflight.Add(1)
	if tokens := b.l.TokensAt(now) - float64(n-1); tokens < 1 {
		b.inflight.Add(-1)
		_, wait = ls.wait(tokens)
		return nil, false, wait
	}
	return func() { b.inflight.Add(-1) }, true, 0
}

// charge takes a token for key if one is left (one more failure counted).
func (ls *limiters) charge(key string, now time.Time) {
	if ls != nil {
		ls.get(key).l.AllowN(now, 1)
	}
}

// size is the number of buckets held (after pending evictions).
func (ls *limiters) size() int {
	ls.c.CleanUp()
	return ls.c.EstimatedSize()
}

// addrKey is the per-address limit key of a client address: the address,
// or for IPv6 its /64 (one subscriber usually holds a whole /64).
func addrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "addr:" + ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}
