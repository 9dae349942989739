package strangler

import (
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// ClientGrant is a Grant that names the OAuth2 client of the caller's own
// token, which rate limits by client count. A Grant without the method
// is read through Claim("client_id").
type ClientGrant interface {
	Grant
	// Client returns the client id of the caller's token, or "" for an
	// anonymous caller (policy optional: the application token ficus
	// took for it is not the caller's).
	Client() string
}

// The kinds of key a request is counted under: the label by of
// ficus_rate_limited_total.
const (
	keyClient  = "client"
	keyAddress = "address"
	keyHeader  = "header"
	keyShared  = "shared"
)

// keyKinds are the values of the by label, for forgetting a route's
// series by their exact labels.
var keyKinds = [...]string{keyClient, keyAddress, keyHeader, keyShared}

// limiter is a rate limit in force: a token bucket (x/time/rate) per key,
// in a bounded cache (otter: at most max_keys buckets, the least used
// go first, and one idle until it is full again goes anyway, losing
// nothing). A key is a keyed 64-bit hash (a random seed per limiter), so
// neither header values nor client ids are kept, and nobody outside can
// aim two keys at one bucket. A limiter lives as long as its rule
// (routes.RateLimit) is unchanged: reloads hand it on.
type limiter struct {
	cfg   routes.RateLimit
	r     rate.Limit
	burst int
	by    string
	// header is the canonical header of by: header.
	header string
	shared bool // keyless requests share one bucket (absent: shared)
	// early: the key is known before the auth stage (by address or
	// header), so the limit is taken there and a flood never reaches a
	// token look-up.
	early bool
	seed  maphash.Seed
	// buckets are made by the first request: a table of many limited
	// routes that see no traffic holds no caches (nor their cleanup
	// goroutines).
	buckets atomic.Pointer[otter.Cache[uint64, *rate.Limiter]]
	mu      sync.Mutex // makes buckets
	stopped bool       // under mu: the limiter left the rule set
}

func newLimiter(cfg routes.RateLimit) *limiter {
	l := &limiter{cfg: cfg, r: rate.Limit(cfg.Rate.PerSecond()), burst: cfg.BurstOrDefault(), by: cfg.By,
		header: textproto.CanonicalMIMEHeaderKey(cfg.Header), shared: cfg.AbsentOrDefault() == "shared",
		seed: maphash.MakeSeed()}
	l.early = l.by != "client"
	return l
}

// cache returns the buckets, made by the first call; nil once the
// limiter stopped without them.
func (l *limiter) cache() *otter.Cache[uint64, *rate.Limiter] {
	if c := l.buckets.Load(); c != nil {
		return c
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.buckets.Load(); c != nil || l.stopped {
		return c
	}
	// A bucket idle this long is full again: dropping it loses nothing.
	idle := max(time.Minute, time.Duration(float64(l.burst)/float64(l.r)*float64(time.Second)))
	c := otter.Must(&otter.Options[uint64, *rate.Limiter]{
		MaximumSize:      l.cfg.MaxKeysOrDefault(),
		ExpiryCalculator: otter.ExpiryAccessing[uint64, *rate.Limiter](idle),
	})
	l.buckets.Store(c)
	return c
}

// keys returns how many buckets the limiter holds (an estimate, as
// otter keeps it).
func (l *limiter) keys() int {
	if c := l.buckets.Load(); c != nil {
		return c.EstimatedSize()
	}
	return 0
}

// stop ends the cache's cleanup goroutine (a limiter that left the rule
// set); requests still in flight on the old table may go on using it.
func (l *limiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if c := l.buckets.Load(); c != nil {
		c.StopAllGoroutines()
	}
}

// take takes a token for r: the key is its client (grant), header or
// address, as the rule says. When none is left, ok is false and retry is
// the whole seconds (at least 1) until one is back. kind is the key's
// kind.
func (l *limiter) take(r *http.Request, grant Grant, addrs *clientaddr.Resolver, now time.Time) (kind string, retry int, ok bool) {
	var key uint64
	switch v := ""; l.by {
	case keyClient:
		if cg, is := grant.(ClientGrant); is {
			v = cg.Client()
		} else if grant != nil {
			v = grant.Claim("client_id")
		}
		if v != "" {
			key, kind = l.hashString('c', v), keyClient
		}
	case keyHeader:
		if vs := r.Header[l.header]; len(vs) > 0 && vs[0] != "" {
			key, kind = l.hashString('h', vs[0]), keyHeader
		}
	}
	switch {
	case kind != "":
	case l.shared && l.by != keyAddress:
		key, kind = l.hashString('s', ""), keyShared
	default:
		key, kind = l.hashAddr(addrs.Addr(r)), keyAddress
	}
	c := l.cache()
	if c == nil {
		return kind, 0, true // stopped before its first request: its table is gone
	}
	b, found := c.GetIfPresent(key)
	if !found {
		b, _ = c.SetIfAbsent(key, rate.NewLimiter(l.r, l.burst))
	}
	if b.AllowN(now, 1) {
		return kind, 0, true
	}
	wait := (1 - b.TokensAt(now)) / float64(l.r) // seconds until one token
	return kind, max(1, int(math.Ceil(wait))), false
}

func (l *limiter) hashString(kind byte, s string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(s)
	return h.Sum64()
}

// hashAddr keys an address: an IPv4 address alone, an IPv6 address by
// its /64, which one host (or one customer's network) usually holds
// whole. The zero Addr (a peer that is no IP address) is one key.
func (l *limiter) hashAddr(a netip.Addr) uint64 {
	if a.Is6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			a = p.Addr()
		}
	}
	b := a.As16()
	var h maphash.Hash
	h.SetSeed(l.seed)
	_ = h.WriteByte('a')
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// limiterFor returns the limiter of route name's limit in t: the one of
// prev when the rule is unchanged (its buckets live on), else a new one.
// Routes using one named limit share its limiter.
func (t *table) limiterFor(route string, l *routes.RateLimit, prev *table) *limiter {
	id := "route:" + route
	if l.Name() != "" {
		id = "named:" + l.Name()
	}
	if lim := t.limits[id]; lim != nil {
		return lim
	}
	if t.limits == nil {
		t.limits = map[string]*limiter{}
	}
	lim := (*limiter)(nil)
	if prev != nil {
		if old := prev.limits[id]; old != nil && old.cfg == *l {
			lim = old
		}
	}
	if lim == nil {
		lim = newLimiter(*l)
	}
	t.limits[id] = lim
	return lim
}

// limit takes a token of the route's limit for rq; when none is left it
// answers 429 with Retry-After and returns false. A refusal is the
// client's: it counts against no upstream.
func (g *Gateway) limit(rq *request, w http.ResponseWriter, l *limiter) bool {
	kind, retry, ok := l.take(rq.in, rq.grant, g.addrs, time.Now())
	if ok {
		return true
	}
	rq.limited = true
	g.metrics.rateLimited.WithLabelValues(rq.route.name, kind).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	http.Error(w, "ficus: rate limit exceeded; retry after "+strconv.Itoa(retry)+" s", http.StatusTooManyRequests)
	return false
}
