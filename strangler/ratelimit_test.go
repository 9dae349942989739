package strangler

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/clientaddr"
)

// status sends a GET with header pairs and returns the status and the
// Retry-After header.
func (fx *fixture) status(t testing.TB, path string, hdr ...string) (int, string) {
	t.Helper()
	resp, _ := fx.do(t, "GET", path, nil, hdr...)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// spend sends n requests that must all pass.
func (fx *fixture) spend(t testing.TB, n int, path string, hdr ...string) {
	t.Helper()
	for i := range n {
		if code, _ := fx.status(t, path, hdr...); code != 200 {
			t.Fatalf("request %d of %d to %s %v: status %d, want 200", i+1, n, path, hdr, code)
		}
	}
}

func trustLoopback(o *Options) {
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// Behind a trusted proxy each client address has its own bucket; an IPv6
// client counts by its /64.
func TestRateLimitByAddressThroughTrustedProxy(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`
  - name: api
    match: {prefix: /get}
    to: legacy
    rate_limit: {rate: 1/m, burst: 2, by: address}
`, trustLoopback)
	xff := func(a string) []string { return []string{"X-Forwarded-For", a} }
	fx.spend(t, 2, "/get", xff("198.51.100.1")...)
	if code, retry := fx.status(t, "/get", xff("198.51.100.1")...); code != 429 || !inSeconds(retry, 1, 60) {
		t.Fatalf("third request: %d, Retry-After %q; want 429 and 1 to 60 seconds", code, retry)
	}
	fx.spend(t, 2, "/get", xff("198.51.100.2")...)
	// A spoofed hop before the trusted proxy's is not the client.
	if code, _ := fx.status(t, "/get", xff("203.0.113.9, 198.51.100.1")...); code != 429 {
		t.Fatalf("a spoofed first hop escaped the limit: %d", code)
	}
	fx.spend(t, 2, "/get", xff("2001:db8:1:2::1")...)
	if code, _ := fx.status(t, "/get", xff("2001:db8:1:2:ffff::7")...); code != 429 {
		t.Fatalf("another address of the same /64 got a bucket of its own: %d", code)
	}
	fx.spend(t, 2, "/get", xff("2001:db8:1:3::1")...)
	if n := fx.gw.table.Load().routes[0].limit.keys(); n != 4 {
		t.Errorf("%d buckets, want 4 (two IPv4 addresses, two /64s)", n)
	}
}

// From a peer that is not a trusted proxy, X-Forwarded-For is the
// client's word: a new value per request makes no new bucket.
func TestRateLimitIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`
  - name: api
    match: {prefix: /get}
    to: legacy
    rate_limit: {rate: 1/m, burst: 3, by: address}
`, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	limited := 0
	for i := range 20 {
		if code, _ := fx.status(t, "/get", "X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1)); code == 429 {
			limited++
		}
	}
	if limited != 17 {
		t.Errorf("%d of 20 spoofed requests limited, want 17 (all but the burst)", limited)
	}
	if n := fx.gw.table.Load().routes[0].limit.keys(); n != 1 {
		t.Errorf("%d buckets, want 1: the socket peer's", n)
	}
}

func TestRateLimitByHeader(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`
  - name: keyed
    match: {prefix: /get}
    to: legacy
    rate_limit: {rate: 1/m, burst: 2, by: header, header: X-Api-Key}
  - name: keyed-shared
    match: {prefix: /anything}
    to: legacy
    rate_limit: {rate: 1/h, burst: 1, by: header, header: X-Api-Key, absent: shared}
`, trustLoopback)
	fx.spend(t, 2, "/get", "X-Api-Key", "alpha")
	code, retry := fx.status(t, "/get", "X-Api-Key", "alpha")
	if code != 429 || !inSeconds(retry, 1, 60) {
		t.Fatalf("alpha's third request: %d, Retry-After %q; want 429 and 1 to 60 seconds", code, retry)
	}
	fx.spend(t, 2, "/get", "X-Api-Key", "beta")
	// Without the header: the client address (absent: address, the
	// default), one bucket per address.
	fx.spend(t, 2, "/get", "X-Forwarded-For", "198.51.100.1")
	if code, _ := fx.status(t, "/get", "X-Forwarded-For", "198.51.100.1"); code != 429 {
		t.Fatalf("a keyless request beyond its address's burst: %d", code)
	}
	fx.spend(t, 2, "/get", "X-Forwarded-For", "198.51.100.2")

	// absent: shared: every keyless request draws from one bucket.
	fx.spend(t, 1, "/anything", "X-Forwarded-For", "198.51.100.3")
	code, retry = fx.status(t, "/anything", "X-Forwarded-For", "198.51.100.4")
	if code != 429 || !inSeconds(retry, 1, 3600) {
		t.Fatalf("a second keyless request: %d, Retry-After %q; want 429 and 1 to 3600 seconds", code, retry)
	}
	fx.spend(t, 1, "/anything", "X-Api-Key", "alpha")
}

// A refusal is 429 with a whole number of seconds in Retry-After, at
// least 1, and a short body; it reaches no upstream and counts against
// none.
func TestRateLimitAnswerAndMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logBuf bytes.Buffer
	fx := newTestGateway(t, baseRules+`
  - name: orders
    match: {prefix: /orders}
    to: orders
    rate_limit: {rate: 1/m, burst: 1, by: address}
`, func(o *Options) { o.AccessLog = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logBuf}, nil)) })
	fx.spend(t, 1, "/orders/1")
	resp, body := fx.do(t, "GET", "/orders/2", nil)
	if resp.StatusCode != 429 || !inSeconds(resp.Header.Get("Retry-After"), 1, 60) {
		t.Fatalf("%d, Retry-After %q; want 429 and 1 to 60 seconds", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(body) > 100 || !strings.Contains(string(body), "rate limit") {
		t.Errorf("body %q", body)
	}
	if v := counterValue(t, fx.reg, "ficus_rate_limited_total", map[string]string{"route": "orders", "by": "address"}); v != 1 {
		t.Errorf("ficus_rate_limited_total = %v, want 1", v)
	}
	if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": "orders"}); v != 1 {
		t.Errorf("ficus_requests_total = %v, want 1: the refusal is nobody's answer", v)
	}
	if rep := fx.gw.Health().Report(time.Now()); len(rep) != 1 || rep[0].New.Requests != 1 {
		t.Errorf("the health window counts %+v, want the one request served", rep)
	}
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	mu.Unlock()
	var last struct {
		Status      int  `json:"status"`
		RateLimited bool `json:"rate_limited"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Status != 429 || !last.RateLimited {
		t.Errorf("access log %s: %+v %v", lines[len(lines)-1], last, err)
	}
	// A route that loses its limit loses its series.
	fx.load(t, baseRules+`
  - {name: orders, match: {prefix: /orders}, to: orders}
`)
	if v := counterValue(t, fx.reg, "ficus_rate_limited_total", map[string]string{"route": "orders"}); v != 0 {
		t.Errorf("the series of a removed limit stayed: %v", v)
	}
}

// Buckets survive a reload that leaves the limit as it was, and start
// full when the limit changes. Routes that use one named limit share its
// buckets.
func TestRateLimitAcrossReloads(t *testing.T) {
	t.Parallel()
	rules := func(rate, extra string) string {
		return baseRules + `
  - {name: a, match: {prefix: /get}, to: legacy, rate_limit: shared-api}
  - {name: b, match: {prefix: /anything}, to: legacy, rate_limit: shared-api}
  - {name: own, match: {prefix: /headers}, to: legacy, rate_limit: {rate: ` + rate + `, burst: 2, by: address}}
` + extra + `rate_limits:
  shared-api: {rate: 1/m, burst: 3, by: address}
`
	}
	fx := newTestGateway(t, rules("1/m", ""))
	fx.spend(t, 2, "/get")
	fx.spend(t, 1, "/anything")
	if code, _ := fx.status(t, "/get"); code != 429 {
		t.Fatalf("a named limit's buckets are not shared by its routes: %d", code)
	}
	fx.spend(t, 2, "/headers")
	// An unrelated change: every bucket lives on.
	fx.load(t, rules("1/m", "  - {name: new, match: {prefix: /status}, to: legacy}\n"))
	if code, _ := fx.status(t, "/anything"); code != 429 {
		t.Errorf("a reload refilled the named limit's buckets: %d", code)
	}
	if code, _ := fx.status(t, "/headers"); code != 429 {
		t.Errorf("a reload refilled the route's own buckets: %d", code)
	}
	// The route's limit changes: its buckets start anew; the named
	// limit's do not.
	fx.load(t, rules("2/m", ""))
	fx.spend(t, 2, "/headers")
	if code, _ := fx.status(t, "/get"); code != 429 {
		t.Errorf("changing another limit refilled the named one: %d", code)
	}
}

// A flood of distinct keys holds at most max_keys buckets.
func TestRateLimitKeysAreBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(routes.RateLimit{Rate: routes.Rate{Count: 1, Per: time.Minute}, By: "header", Header: "X-Api-Key", MaxKeys: 100})
	addrs := clientaddr.New(nil)
	now := time.Now()
	req := httptest.NewRequest("GET", "/", nil)
	for i := range 20000 {
		req.Header.Set("X-Api-Key", "key-"+strconv.Itoa(i))
		if _, _, ok := l.take(req, nil, addrs, now); !ok {
			t.Fatalf("a new key's first request was refused (key %d)", i)
		}
	}
	l.buckets.Load().CleanUp()
	if n := l.keys(); n > 100 || n == 0 {
		t.Fatalf("%d buckets after 20,000 keys, want at most max_keys (100)", n)
	}
	// A throttled client that keeps trying while the flood goes on keeps
	// its spent bucket: the cache admits by frequency (W-TinyLFU), so the
	// flood's one-off keys do not push it out and hand it a fresh burst.
	hot := httptest.NewRequest("GET", "/", nil)
	hot.Header.Set("X-Api-Key", "hot")
	l2 := newLimiter(routes.RateLimit{Rate: routes.Rate{Count: 1, Per: time.Hour}, Burst: 10, By: "header", Header: "X-Api-Key", MaxKeys: 100})
	for range 10 {
		l2.take(hot, nil, addrs, now)
	}
	let := 0
	for i := range 5000 {
		req.Header.Set("X-Api-Key", "flood-"+strconv.Itoa(i))
		l2.take(req, nil, addrs, now)
		if i%10 == 0 {
			if _, _, ok := l2.take(hot, nil, addrs, now); ok {
				let++
			}
		}
	}
	// The admission is by an estimate of frequency, so early in a flood
	// the hot bucket may be evicted once (one fresh burst); without it,
	// every check (500) could find a fresh bucket.
	if let > 10 {
		t.Errorf("the throttled client got %d requests through during a flood of new keys (its bucket was evicted more than once)", let)
	}
}

// inSeconds reports whether a Retry-After value is a whole number of
// seconds from lo to hi.
func inSeconds(v string, lo, hi int) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= lo && n <= hi
}

// Retry-After is the exact wait for the next token, rounded up to whole
// seconds.
func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:1"
	for _, tt := range []struct {
		rate  routes.Rate
		burst int
		after time.Duration // since the burst was spent
		want  int
	}{
		{routes.Rate{Count: 1, Per: time.Minute}, 1, 0, 60},
		{routes.Rate{Count: 1, Per: time.Minute}, 1, 59*time.Second + 500*time.Millisecond, 1},
		{routes.Rate{Count: 1, Per: time.Minute}, 1, 30 * time.Second, 30},
		{routes.Rate{Count: 1, Per: time.Minute}, 1, 30*time.Second - time.Millisecond, 31},
		{routes.Rate{Count: 100, Per: time.Second}, 5, 0, 1},
		{routes.Rate{Count: 1, Per: time.Hour}, 2, 0, 3600},
	} {
		l := newLimiter(routes.RateLimit{Rate: tt.rate, Burst: tt.burst, By: "address"})
		start := time.Now()
		for range tt.burst {
			if _, _, ok := l.take(req, nil, nil, start); !ok {
				t.Fatalf("%v: the burst was refused", tt.rate)
			}
		}
		kind, retry, ok := l.take(req, nil, nil, start.Add(tt.after))
		if ok || retry != tt.want || kind != "address" {
			t.Errorf("%v burst %d, %v later: ok %v, retry %d, kind %s; want refused, %d", tt.rate, tt.burst, tt.after, ok, retry, kind, tt.want)
		}
	}
}

// A route without a limit pays nothing for the feature: no limiter.
func TestUnlimitedRouteHasNoLimiter(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`
  - {name: open, match: {prefix: /get}, to: legacy}
`)
	if tb := fx.gw.table.Load(); tb.routes[0].limit != nil || tb.limits != nil || tb.unmatched.limit != nil {
		t.Fatal("a table without limits holds limiters")
	}
}

// Taking a token from an existing bucket allocates nothing.
func TestRateLimitTakeDoesNotAllocate(t *testing.T) {
	l := newLimiter(routes.RateLimit{Rate: routes.Rate{Count: 1000000, Per: time.Second}, Burst: 1000000, By: "header", Header: "X-Api-Key"})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Api-Key", "k")
	req6 := httptest.NewRequest("GET", "/", nil)
	req6.RemoteAddr = "[2001:db8::1]:1"
	la := newLimiter(routes.RateLimit{Rate: routes.Rate{Count: 1000000, Per: time.Second}, Burst: 1000000, By: "address"})
	now := time.Now()
	l.take(req, nil, nil, now)
	la.take(req6, nil, nil, now)
	if n := testing.AllocsPerRun(100, func() {
		l.take(req, nil, nil, now)
		la.take(req6, nil, nil, now)
	}); n != 0 {
		t.Fatalf("%v allocations per take", n)
	}
}
