package strangler

import (
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkRoundTrip measures one GET through each kind of hop against the
// same upstream, in the same run, so the ratios are what counts.
func BenchmarkRoundTrip(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from upstream\n")
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)

	tuned := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	minimal := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: tuned,
	})
	defer minimal.Close()

	ficus := serveRules(b, strings.ReplaceAll(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "UP"}
  svc: {url: "UP"}
routes:
  - {name: split, match: {prefix: /split}, split: [{to: svc, weight: 50}, {to: legacy, weight: 50}], sticky: {header: X-User}}
`, "UP", upstream.URL))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, url string }{
		{"direct", upstream.URL + "/x"},
		{"httputil-minimal", minimal.URL + "/x"},
		{"ficus-monolith", ficus.URL + "/x"},
		{"ficus-split", ficus.URL + "/split/x"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", c.url, nil)
				req.Header.Set("X-User", "user-42")
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkGatewayOverhead is ficus's own work per request (normalise,
// match, choose, rewrite, metrics) with the upstream hop served in memory.
func BenchmarkGatewayOverhead(b *testing.B) {
	gw, _ := New(Options{})
	f, _ := routes.Parse("bench.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://mem"}
routes:
  - {name: api, match: {prefix: /api}, to: legacy}
`))
	_ = gw.Load(f)
	gw.table.Load().upstreams["legacy"].send = memTransport{}
	req := httptest.NewRequest("GET", "http://example.com/api/orders/42", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := &respRecorder{h: http.Header{}}
		gw.ServeHTTP(w, req)
	}
}

// BenchmarkGatewayOverheadLimited is BenchmarkGatewayOverhead on a route
// with a rate limit that lets every request through (by address: one
// bucket; by header: one bucket per key of 1,000, whose header costs the
// request's clone an allocation of its own, limit or not).
func BenchmarkGatewayOverheadLimited(b *testing.B) {
	for _, by := range []string{"address", "header"} {
		b.Run(by, func(b *testing.B) {
			gw, _ := New(Options{})
			f, err := routes.Parse("bench.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://mem"}
routes:
  - {name: api, match: {prefix: /api}, to: legacy, rate_limit: {rate: 1000000000/s, burst: 1000000, by: `+by+`, header: `+map[string]string{"address": `""`, "header": "X-Api-Key"}[by]+`}}
`))
			if err != nil {
				b.Fatal(err)
			}
			_ = gw.Load(f)
			gw.table.Load().upstreams["legacy"].send = memTransport{}
			reqs := make([]*http.Request, 1000)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", "http://example.com/api/orders/42", nil)
				reqs[i].RemoteAddr = "192.0.2.1:1234"
				if by == "header" {
					reqs[i].Header.Set("X-Api-Key", "key-"+strconv.Itoa(i))
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w := &respRecorder{h: http.Header{}}
				gw.ServeHTTP(w, reqs[i%len(reqs)])
				if w.code != 0 && w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}

// BenchmarkRateLimitInterleaved alternates, request by request, a route
// without a limit and the same route with a limit by address that lets
// everything through, on one gateway, so that load from elsewhere falls
// on both alike; it reports each one's ns per request and their ratio
// (limited over plain).
func BenchmarkRateLimitInterleaved(b *testing.B) {
	gw, _ := New(Options{})
	f, err := routes.Parse("bench.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://mem"}
routes:
  - {name: plain, match: {prefix: /api}, to: legacy}
  - {name: limited, match: {prefix: /lim}, to: legacy, rate_limit: {rate: 1000000000/s, burst: 1000000, by: address}}
`))
	if err != nil {
		b.Fatal(err)
	}
	_ = gw.Load(f)
	gw.table.Load().upstreams["legacy"].send = memTransport{}
	plain := httptest.NewRequest("GET", "http://example.com/api/orders/42", nil)
	limited := httptest.NewRequest("GET", "http://example.com/lim/orders/42", nil)
	plain.RemoteAddr, limited.RemoteAddr = "192.0.2.1:1234", "192.0.2.1:1234"
	var tPlain, tLimited time.Duration
	first, second, tFirst, tSecond := plain, limited, &tPlain, &tLimited
	b.ReportAllocs()
	for b.Loop() {
		// Each goes first every other time: neither gains by its place.
		first, second, tFirst, tSecond = second, first, tSecond, tFirst
		start := time.Now()
		gw.ServeHTTP(&respRecorder{h: http.Header{}}, first)
		mid := time.Now()
		gw.ServeHTTP(&respRecorder{h: http.Header{}}, second)
		*tFirst, *tSecond = *tFirst+mid.Sub(start), *tSecond+time.Since(mid)
	}
	b.ReportMetric(float64(tPlain.Nanoseconds())/float64(b.N), "plain-ns/req")
	b.ReportMetric(float64(tLimited.Nanoseconds())/float64(b.N), "limited-ns/req")
	b.ReportMetric(float64(tLimited)/float64(tPlain), "limited/plain")
}

// BenchmarkRateLimitTake is the limiter's own work on a request: the
// key, the bucket's look-up and a token (by address: one bucket; by
// header: 1,000 keys).
func BenchmarkRateLimitTake(b *testing.B) {
	for _, by := range []string{"address", "header"} {
		b.Run(by, func(b *testing.B) {
			l := newLimiter(routes.RateLimit{Rate: routes.Rate{Count: 1000000000, Per: time.Second}, Burst: 1000000, By: by, Header: map[string]string{"header": "X-Api-Key"}[by]})
			reqs := make([]*http.Request, 1000)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", "/", nil)
				reqs[i].RemoteAddr = "192.0.2.1:1234"
				reqs[i].Header.Set("X-Api-Key", "key-"+strconv.Itoa(i))
			}
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.take(reqs[i%len(reqs)], nil, nil, now)
				i++
			}
		})
	}
}

type memTransport struct{}

func (memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r, ContentLength: 0}, nil
}

// BenchmarkPassThroughBody measures body throughput through the gateway for
// a large response with a Content-Length and for a chunked one, against the
// same upstream reached directly. The ratio ficus/direct is what counts.
func BenchmarkPassThroughBody(b *testing.B) {
	const size = 4 << 20
	payload := strings.Repeat("x", size)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			// Written in 64 KiB pieces without a length: chunked.
			for i := 0; i < size; i += 64 << 10 {
				io.WriteString(w, payload[i:i+64<<10])
			}
			return
		}
		w.Header().Set("Content-Length", "4194304")
		io.WriteString(w, payload)
	}))
	defer upstream.Close()
	ficus := serveRules(b, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "`+upstream.URL+`"}
`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	for _, c := range []struct{ name, url string }{
		{"direct-length", upstream.URL + "/length"},
		{"ficus-length", ficus.URL + "/length"},
		{"direct-chunked", upstream.URL + "/chunked"},
		{"ficus-chunked", ficus.URL + "/chunked"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				resp, err := client.Get(c.url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != size {
					b.Fatalf("read %d bytes", n)
				}
			}
		})
	}
}

// BenchmarkLoad10k is the swap of a 10,000-route revision once it is
// parsed (routes.BenchmarkParse10k): building the table (upstreams,
// routes, their metric series) and swapping it in. Two revisions
// alternate, each route's target changing every time, as in
// routes/revisions/bench/revload.
func BenchmarkLoad10k(b *testing.B) {
	files := make([]*routes.File, 2)
	for gen := range files {
		var sb strings.Builder
		sb.WriteString("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  alt: {url: \"http://127.0.0.1:1\"}\nroutes:\n")
		for i := range 10000 {
			to := "legacy"
			if (i+gen)%2 == 1 {
				to = "alt"
			}
			fmt.Fprintf(&sb, "  - {name: r%d, match: {prefix: /svc/r%d}, to: %s}\n", i, i, to)
		}
		f, err := routes.Parse("bench.yaml", []byte(sb.String()))
		if err != nil {
			b.Fatal(err)
		}
		files[gen] = f
	}
	b.Run("idle", func(b *testing.B) { benchLoads(b, files, false) })
	// every route has served requests on both sides: the reload hands
	// 10,000 routes' series on.
	b.Run("seen", func(b *testing.B) { benchLoads(b, files, true) })
}

func benchLoads(b *testing.B, files []*routes.File, seen bool) {
	gw, _ := New(Options{})
	if err := gw.Load(files[1]); err != nil {
		b.Fatal(err)
	}
	if seen {
		t := gw.table.Load()
		for j := range t.routes {
			t.routes[j].series.get(gw.metrics, 0)
			t.routes[j].series.get(gw.metrics, 1)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := gw.Load(files[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteSeries is the per-request cost of a route's series once a
// first request created them (an atomic load), and in parallel.
func BenchmarkRouteSeries(b *testing.B) {
	m := newMetrics(nil)
	s := &routeSeries{label: "r"}
	s.get(m, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.get(m, 1).codes[2].Inc()
		}
	})
}

// BenchmarkRouteSeriesFirst is the cost of a route's first request: the
// series' lookup in the vectors.
func BenchmarkRouteSeriesFirst(b *testing.B) {
	m := newMetrics(nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := &routeSeries{label: "r" + strconv.Itoa(i%10000)}
		s.get(m, 1)
	}
}

// BenchmarkLoadShrink is the swap from a rule set of 10,000 routes to one
// of one route: the 10,000 routes' series (every route's, both sides,
// created before the swap, as if each had served requests) are forgotten
// in the swap, by their exact labels.
func BenchmarkLoadShrink(b *testing.B) {
	var big strings.Builder
	big.WriteString("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://mem\"}\n  orders: {url: \"http://mem2\"}\nroutes:\n")
	for i := range 10000 {
		fmt.Fprintf(&big, "  - {name: r%d, match: {prefix: /p%d}, split: [{to: orders, weight: 50}, {to: legacy, weight: 50}]}\n", i, i)
	}
	large, err := routes.Parse("large.yaml", []byte(big.String()))
	if err != nil {
		b.Fatal(err)
	}
	small, _ := routes.Parse("small.yaml", []byte("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://mem\"}\nroutes:\n  - {name: api, match: {prefix: /api}, to: legacy}\n"))
	gw, _ := New(Options{Registerer: prometheus.NewRegistry()})
	for b.Loop() {
		b.StopTimer()
		if err := gw.Load(large); err != nil {
			b.Fatal(err)
		}
		t := gw.table.Load()
		for i := range t.routes {
			rt := &t.routes[i]
			rt.series.get(gw.metrics, 0)
			rt.series.get(gw.metrics, 1)
		}
		b.StartTimer()
		if err := gw.Load(small); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShadow is the cost of shadowing for the client: one GET with a
// 1 KiB JSON answer through a route without a shadow rule, and through
// routes copying 10 % of their requests (compared; with learned noise, a
// second monolith call each) to a shadow upstream that answers, to one that never answers (the queue
// fills and copies are dropped), and to one that refuses connections. All
// in the same run against the same upstream: the ratios are what counts.
func BenchmarkShadow(b *testing.B) {
	body := `{"items":[` + strings.Repeat(`{"id":1234567,"name":"a product name","price":12.5},`, 19) + `{"id":1}],"meta":{"time":"now"}}`
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer upstream.Close()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	dead := deadAddr(b)
	ficus := serveRules(b, strings.NewReplacer("UP", upstream.URL, "HANG", hanging.URL, "DEAD", dead).Replace(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "UP"}
  svc: {url: "UP"}
  hang: {url: "HANG"}
  dead: {url: "http://DEAD"}
routes:
  - {name: plain, match: {prefix: /plain}, to: legacy}
  - {name: shadow, match: {prefix: /shadow}, to: legacy, shadow: {to: svc, percent: 10, compare: true}}
  - {name: learn, match: {prefix: /learn}, to: legacy, shadow: {to: svc, percent: 10, compare: true, learn_noise: true}}
  - {name: hang, match: {prefix: /hang}, to: legacy, shadow: {to: hang, percent: 10, compare: true}}
  - {name: dead, match: {prefix: /dead}, to: legacy, shadow: {to: dead, percent: 10, compare: true}}
`))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, path string }{
		{"no-shadow", "/plain/x"},
		{"shadow-10pct", "/shadow/x"},
		{"shadow-10pct-learn-noise", "/learn/x"},
		{"shadow-10pct-hanging-target", "/hang/x"},
		{"shadow-10pct-dead-target", "/dead/x"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", ficus.URL+c.path, nil)
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
	// Request by request, so that load from elsewhere on the machine falls
	// on both alike: the client's time on the plain route over its time on
	// the route copying 10 % (compared) to a shadow target that answers.
	b.Run("interleaved", func(b *testing.B) {
		var spent [2]atomic.Int64 // plain, shadowed
		b.RunParallel(func(pb *testing.PB) {
			var reqs [2]*http.Request
			for i, p := range []string{"/plain/x", "/shadow/x"} {
				reqs[i], _ = http.NewRequest(http.MethodGet, ficus.URL+p, nil)
			}
			for i := 0; pb.Next(); i++ {
				start := time.Now()
				resp, err := client.Do(reqs[i%2])
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				spent[i%2].Add(int64(time.Since(start)))
			}
		})
		if shadowed := spent[1].Load(); shadowed > 0 {
			b.ReportMetric(float64(spent[0].Load())/float64(shadowed), "throughput-ratio")
		}
	})
}

// BenchmarkGatewayTracing is BenchmarkGatewayOverhead with tracing off
// (the default: no tracer), on with nothing sampled, and on with every
// request sampled (spans recorded, then dropped: no exporter). The client
// sends a traceparent, which the untrusted peer cannot continue.
func BenchmarkGatewayTracing(b *testing.B) {
	f, _ := routes.Parse("bench.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://mem"}
routes:
  - {name: api, match: {prefix: /api}, to: legacy}
`))
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"unsampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))},
		{"sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))},
	} {
		b.Run(c.name, func(b *testing.B) {
			gw, _ := New(Options{Tracer: c.tp})
			_ = gw.Load(f)
			gw.table.Load().upstreams["legacy"].send = memTransport{}
			req := httptest.NewRequest("GET", "http://example.com/api/orders/42", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			b.ReportAllocs()
			for b.Loop() {
				w := &respRecorder{h: http.Header{}}
				gw.ServeHTTP(w, req)
			}
		})
	}
}
