package session

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// DefaultStartsPerMinute is the default of Options.StartsPerMinute.
const DefaultStartsPerMinute = 60

// maxStartBuckets bounds the addresses whose session starts are counted
// at once; the least recently used go first.
const maxStartBuckets = 1 << 16

// startLimit bounds the sessions one client address may start: each
// start writes a session and a visitor to the store, and a client that
// never sends its cookies back would otherwise make one pair of rows per
// request. Memory is bounded by maxStartBuckets.
type startLimit struct {
	r     rate.Limit
	burst int
	c     *otter.Cache[netip.Prefix, *rate.Limiter]
}

func newStartLimit(perMinute float64) *startLimit {
	burst := max(1, int(perMinute))
	// A bucket idle long enough to be full again is dropped.
	idle := max(time.Minute, time.Duration(float64(burst)/perMinute*float64(time.Minute)))
	return &startLimit{r: rate.Limit(perMinute / 60), burst: burst, c: otter.Must(&otter.Options[netip.Prefix, *rate.Limiter]{
		MaximumSize: maxStartBuckets, ExpiryCalculator: otter.ExpiryAccessing[netip.Prefix, *rate.Limiter](idle)})}
}

// allow takes a start for addr; when none is left it returns false and
// the whole seconds to wait, as a Retry-After value. An IPv6 client
// counts by its /64, which one host usually holds whole.
func (l *startLimit) allow(addr netip.Addr, now time.Time) (bool, string) {
	bits := 64
	if addr.Unmap().Is4() {
		addr, bits = addr.Unmap(), 32
	}
	key, _ := addr.Prefix(bits)
	b, _ := l.c.ComputeIfAbsent(key, func() (*rate.Limiter, bool) { return rate.NewLimiter(l.r, l.burst), false })
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
	}
	return true, ""
}
