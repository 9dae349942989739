package strangler

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/shadow"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/prometheus/client_golang/prometheus"
)

// shadowFixture is a gateway in front of a monolith and a new service
// whose handlers the test writes.
type shadowFixture struct {
	gw    *Gateway
	srv   *httptest.Server
	reg   *prometheus.Registry
	rules string // as loaded, with the URLs
}

// newShadowFixture serves rules (MONO and SVC stand for the two
// upstreams' URLs) in front of mono and svc.
func newShadowFixture(t *testing.T, mono, svc http.Handler, rules string, opts ...func(*Options)) *shadowFixture {
	t.Helper()
	m, s := httptest.NewServer(mono), httptest.NewServer(svc)
	t.Cleanup(m.Close)
	t.Cleanup(s.Close)
	fx := &shadowFixture{reg: prometheus.NewRegistry()}
	o := Options{Registerer: fx.reg}
	for _, f := range opts {
		f(&o)
	}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	fx.rules = strings.NewReplacer("MONO", m.URL, "SVC", s.URL).Replace(rules)
	f, err := routes.Parse("rules.yaml", []byte(fx.rules))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		t.Fatal(err)
	}
	fx.gw = gw
	fx.srv = httptest.NewServer(gw)
	t.Cleanup(fx.srv.Close)
	return fx
}

const shadowRules = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  orders: {url: "SVC"}
routes:
`

// report returns the named route's shadow results.
func (fx *shadowFixture) report(t *testing.T, route string) shadow.RouteReport {
	t.Helper()
	for _, r := range fx.gw.ShadowReport() {
		if r.Route == route {
			return r
		}
	}
	t.Fatalf("no shadow report for route %s in %+v", route, fx.gw.ShadowReport())
	return shadow.RouteReport{}
}

// compared waits until the route has n outcomes and returns its report.
func (fx *shadowFixture) compared(t *testing.T, route string, n uint64) shadow.RouteReport {
	t.Helper()
	waittest.For(t, "the shadow comparisons", func() bool { return fx.report(t, route).Compared >= n })
	return fx.report(t, route)
}

// jsonAnswer answers v as JSON.
func jsonAnswer(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

func TestShadowNeverAltersTheClientsResponse(t *testing.T) {
	t.Parallel()
	mono := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Legacy", "yes")
		w.Header().Add("Set-Cookie", "legacy=1; Path=/")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"from":"legacy","path":"`+r.URL.Path+`"}`)
	})
	svcHits := make(chan http.Header, 10)
	svc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svcHits <- r.Header.Clone()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-New", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "something else entirely")
	})
	fx := newShadowFixture(t, mono, svc, shadowRules+`  - {name: plain, match: {prefix: /plain}, to: legacy}
  - {name: mirrored, match: {prefix: /mirrored}, to: legacy, shadow: {to: orders, percent: 100, compare: true}}
`)
	want, wantBody := doURL(t, "GET", fx.srv.URL+"/plain/x", nil)
	got, gotBody := doURL(t, "GET", fx.srv.URL+"/mirrored/x", nil)
	waittest.Recv(t, "the copy", svcHits)
	if got.StatusCode != want.StatusCode || string(gotBody) != strings.Replace(string(wantBody), "/plain/x", "/mirrored/x", 1) {
		t.Fatalf("the client's answer changed: %d %s, want %d %s", got.StatusCode, gotBody, want.StatusCode, wantBody)
	}
	if got.ContentLength != int64(len(gotBody)) {
		t.Errorf("Content-Length %d for %d bytes", got.ContentLength, len(gotBody))
	}
	for _, k := range []string{"Content-Type", "X-Legacy", "Set-Cookie"} {
		if !slices.Equal(got.Header.Values(k), want.Header.Values(k)) {
			t.Errorf("%s: %q, want %q", k, got.Header.Values(k), want.Header.Values(k))
		}
	}
	if got.Header.Get("X-New") != "" {
		t.Fatal("the shadow's header reached the client")
	}
	r := fx.compared(t, "mirrored", 1)
	if r.Matched != 0 || r.Mismatches[shadow.KindStatus] != 1 || r.Parity != 0 || len(r.Samples) != 1 {
		t.Fatalf("report: %+v", r)
	}
	if s := r.Samples[0]; s.Primary.Status != 202 || s.Shadow.Status != 418 || s.Shadow.Body != "something else entirely" ||
		s.Path != "/mirrored/x" || !slices.Contains(s.Diffs, "status") || !slices.Contains(s.Diffs, "body") {
		t.Fatalf("sample: %+v", s)
	}
	if v := counterValue(t, fx.reg, "ficus_shadow_total", map[string]string{"route": "mirrored", "result": "mismatch_status"}); v != 1 {
		t.Fatalf("ficus_shadow_total mismatch_status: %v", v)
	}
}

// The client's answer does not wait for the shadow: it arrives while the
// shadow upstream still holds the copy, and a dead shadow upstream is
// only counted.
func TestShadowDoesNotWaitForTheShadowUpstream(t *testing.T) {
	t.Parallel()
	hanging, asked, release := waittest.Hanging(t)
	mono := jsonAnswer(map[string]string{"a": "b"})
	m := httptest.NewServer(mono)
	t.Cleanup(m.Close)
	fx := newShadowFixture(t, mono, mono, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  slow: {url: "`+hanging+`"}
  dead: {url: "http://`+deadAddr(t)+`"}
routes:
  - {name: slow, match: {prefix: /slow}, to: legacy, shadow: {to: slow, percent: 100, compare: true}}
  - {name: dead, match: {prefix: /dead}, to: legacy, shadow: {to: dead, percent: 100, compare: true}}
`)
	resp, body := doURL(t, "GET", fx.srv.URL+"/slow", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"a":"b"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	<-asked // the copy is still held by the shadow upstream
	if r := fx.report(t, "slow"); r.Compared != 0 {
		t.Fatalf("compared before the shadow answered: %+v", r)
	}
	release()
	fx.compared(t, "slow", 1)

	resp, body = doURL(t, "GET", fx.srv.URL+"/dead", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"a":"b"`) {
		t.Fatalf("dead shadow: %d %s", resp.StatusCode, body)
	}
	if r := fx.compared(t, "dead", 1); r.Mismatches[shadow.KindError] != 1 || r.Parity != 0 {
		t.Fatalf("dead shadow: %+v", r)
	}
	if v := counterValue(t, fx.reg, "ficus_shadow_total", map[string]string{"route": "dead", "result": "error"}); v != 1 {
		t.Fatalf("ficus_shadow_total error: %v", v)
	}
}

func TestShadowFindsAChangedField(t *testing.T) {
	t.Parallel()
	mono := jsonAnswer(map[string]any{"id": 7, "name": "Ada", "meta": map[string]any{"time": "10:00"}, "token": "s3cret"})
	svc := jsonAnswer(map[string]any{"id": 7.0, "name": "Bob", "meta": map[string]any{"time": "10:00"}, "token": "0ther"})
	fx := newShadowFixture(t, mono, svc, shadowRules+`  - {name: users, match: {prefix: /users}, to: legacy, shadow: {to: orders, percent: 100, compare: true, redact: [/token]}}
`)
	doURL(t, "GET", fx.srv.URL+"/users/7?secret=q", nil)
	r := fx.compared(t, "users", 1)
	if r.Mismatches[shadow.KindBody] != 1 || len(r.Samples) != 1 {
		t.Fatalf("report: %+v", r)
	}
	s := r.Samples[0]
	if !slices.Equal(s.Diffs, []string{"/name", "/token"}) || s.Kind != shadow.KindBody || s.Method != "GET" || s.Path != "/users/7" {
		t.Fatalf("sample: %+v", s)
	}
	for _, a := range []shadow.Answer{s.Primary, s.Shadow} {
		if strings.Contains(a.Body, "s3cret") || strings.Contains(a.Body, "0ther") || !strings.Contains(a.Body, `"token":"[redacted]"`) {
			t.Fatalf("sample body not redacted: %s", a.Body)
		}
	}
	if !strings.Contains(s.Primary.Body, `"name":"Ada"`) || !strings.Contains(s.Shadow.Body, `"name":"Bob"`) {
		t.Fatalf("sample bodies: %s / %s", s.Primary.Body, s.Shadow.Body)
	}
}

func TestShadowIgnoresAConfiguredNoisyField(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	stamp := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"name": "Ada", "items": []any{map[string]any{"id": n.Add(1), "v": 1}}, "meta": map[string]any{"time": n.Add(1)}})
	}
	fx := newShadowFixture(t, http.HandlerFunc(stamp), http.HandlerFunc(stamp), shadowRules+`  - {name: users, match: {prefix: /users}, to: legacy, shadow: {to: orders, percent: 100, compare: true, ignore: [/meta/time, "/items/*/id"]}}
  - {name: strict, match: {prefix: /strict}, to: legacy, shadow: {to: orders, percent: 100, compare: true}}
`)
	doURL(t, "GET", fx.srv.URL+"/users/7", nil)
	doURL(t, "GET", fx.srv.URL+"/strict/7", nil)
	if r := fx.compared(t, "users", 1); r.Matched != 1 || r.Parity != 1 || len(r.Samples) != 0 {
		t.Fatalf("ignored fields still differ: %+v", r)
	}
	if r := fx.compared(t, "strict", 1); r.Matched != 0 || !slices.Equal(r.Samples[0].Diffs, []string{"/items/0/id", "/meta/time"}) {
		t.Fatalf("without ignore: %+v", r)
	}
}

func TestShadowIgnoresALearnedNoisyField(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	monoCalls := make(chan struct{}, 10)
	mono := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		monoCalls <- struct{}{}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", strings.Repeat("x", int(n.Add(1))))
		json.NewEncoder(w).Encode(map[string]any{"name": "Ada", "nonce": n.Add(1)})
	})
	svc := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", "other")
		json.NewEncoder(w).Encode(map[string]any{"name": "Ada", "nonce": "whatever"})
	})
	fx := newShadowFixture(t, mono, svc, shadowRules+`  - {name: learn, match: {prefix: /learn}, to: legacy, shadow: {to: orders, percent: 100, compare: true, learn_noise: true, headers: [Etag]}}
  - {name: nolearn, match: {prefix: /nolearn}, to: legacy, shadow: {to: orders, percent: 100, compare: true, headers: [Etag]}}
`)
	doURL(t, "GET", fx.srv.URL+"/learn", nil)
	r := fx.compared(t, "learn", 1)
	if r.Matched != 1 || !slices.Equal(r.Noise, []string{"body:/nonce", "header:Etag"}) {
		t.Fatalf("learned noise not ignored: %+v", r)
	}
	if len(monoCalls) != 2 {
		t.Fatalf("the monolith was asked %d times, want 2 (the client's and the second call)", len(monoCalls))
	}
	doURL(t, "GET", fx.srv.URL+"/nolearn", nil)
	if r := fx.compared(t, "nolearn", 1); r.Matched != 0 || r.Mismatches[shadow.KindHeader] != 1 || len(r.Noise) != 0 {
		t.Fatalf("without learning: %+v", r)
	}
}

// The copy carries the identity the new service would get (its JWT),
// never the client's cookies or token.
func TestShadowCarriesTheNewServicesJWT(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	svc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() })
	fx := newShadowFixture(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), svc, shadowRules+`  - {name: acct, match: {prefix: /acct}, to: legacy, auth: {policy: oauth2}, shadow: {to: orders, percent: 100, compare: true, learn_noise: true}}
`, func(o *Options) { o.Auth = tokenSwap{} })
	doURL(t, "GET", fx.srv.URL+"/acct", nil, "Authorization", "Bearer client-token", "Cookie", "session=abc", "X-Ficus-User", "forged", "Accept", "text/plain")
	h := waittest.Recv(t, "the copy", seen)
	if h.Get("Authorization") != "Bearer jwt-for-orders" || h.Get("Cookie") != "" || h.Get("X-Ficus-User") != "" || h.Get("Accept") != "text/plain" ||
		h.Get("X-Request-Id") == "" || h.Get("X-Forwarded-For") == "" {
		t.Fatalf("the copy's headers: %v", h)
	}
}

func TestShadowCopiesOnlyWhatTheRuleAllows(t *testing.T) {
	t.Parallel()
	hits := make(chan string, 20)
	svc := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { hits <- r.Method + " " + r.URL.Path })
	fx := newShadowFixture(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), svc, shadowRules+`  - {name: safe, match: {prefix: /safe}, to: legacy, shadow: {to: orders, percent: 100}}
  - {name: unsafe, match: {prefix: /unsafe}, to: legacy, shadow: {to: orders, percent: 100, unsafe_methods: true}}
  - {name: none, match: {prefix: /none}, to: legacy, shadow: {to: orders, percent: 0}}
`)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/safe", ""}, {"DELETE", "/safe", ""}, {"POST", "/unsafe/body", "x=1"}, {"GET", "/none", ""},
		{"HEAD", "/safe", ""}, {"DELETE", "/unsafe", ""}, {"GET", "/safe", ""},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		doURL(t, c.method, fx.srv.URL+c.path, body)
	}
	var got []string
	for range 3 {
		got = append(got, waittest.Recv(t, "the copies", hits))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"DELETE /unsafe", "GET /safe", "HEAD /safe"}) || len(hits) != 0 {
		t.Fatalf("copied: %v (and %d more)", got, len(hits))
	}
	waittest.For(t, "the copies' counts", func() bool {
		return counterValue(t, fx.reg, "ficus_shadow_total", map[string]string{"result": "sent"}) == 3
	})
}

// A full queue drops the copy and counts it.
func TestShadowDropsWhenTheQueueIsFull(t *testing.T) {
	t.Parallel()
	hanging, asked, _ := waittest.Hanging(t)
	mono := jsonAnswer("ok")
	fx := newShadowFixture(t, mono, mono, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  slow: {url: "`+hanging+`"}
routes:
  - {name: slow, match: {prefix: /slow}, to: legacy, shadow: {to: slow, percent: 100, compare: true}}
`, func(o *Options) { o.Shadow = shadow.Options{Queue: 1, Workers: 1} })
	doURL(t, "GET", fx.srv.URL+"/slow/1", nil)
	waittest.Recv(t, "the first copy", asked)  // the worker holds it
	doURL(t, "GET", fx.srv.URL+"/slow/2", nil) // waits in the queue
	resp, body := doURL(t, "GET", fx.srv.URL+"/slow/3", nil)
	if resp.StatusCode != 200 || string(body) != "\"ok\"\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if r := fx.report(t, "slow"); r.Dropped != 1 || r.Compared != 0 {
		t.Fatalf("report: %+v", r)
	}
	if v := counterValue(t, fx.reg, "ficus_shadow_total", map[string]string{"route": "slow", "result": "dropped"}); v != 1 {
		t.Fatalf("ficus_shadow_total dropped: %v", v)
	}
}

// A large answer is compared by hash, and still streams to the client.
func TestShadowComparesLargeBodiesByHash(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	answer := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s) }
	}
	fx := newShadowFixture(t, answer(big), answer(big[:len(big)-1]+"!"), shadowRules+`  - {name: big, match: {prefix: /big}, to: legacy, shadow: {to: orders, percent: 100, compare: true, max_body: 64KiB}}
`)
	resp, body := doURL(t, "GET", fx.srv.URL+"/big", nil)
	if resp.StatusCode != 200 || string(body) != big {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	r := fx.compared(t, "big", 1)
	if r.Mismatches[shadow.KindBody] != 1 || !strings.HasPrefix(r.Samples[0].Primary.Body, "[131072 bytes, sha256 ") {
		t.Fatalf("report: %+v", r)
	}
}

// A reload keeps a route's results while its shadow target stays, and
// forgets them when the rule goes.
func TestShadowResultsAcrossReloads(t *testing.T) {
	t.Parallel()
	h := jsonAnswer("same")
	fx := newShadowFixture(t, h, h, shadowRules+`  - {name: r, match: {prefix: /r}, to: legacy, shadow: {to: orders, percent: 100, compare: true}}
`)
	doURL(t, "GET", fx.srv.URL+"/r", nil)
	fx.compared(t, "r", 1)
	f, err := routes.Parse("rules.yaml", []byte(strings.Replace(fx.rules, "percent: 100", "percent: 50", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.gw.Load(f); err != nil {
		t.Fatal(err)
	}
	if r := fx.report(t, "r"); r.Compared != 1 || r.Percent != 50 {
		t.Fatalf("after a reload: %+v", r)
	}
	f.Routes[0].Shadow = nil
	if err := fx.gw.Load(f); err != nil {
		t.Fatal(err)
	}
	if len(fx.gw.ShadowReport()) != 0 {
		t.Fatalf("results of a rule that went: %+v", fx.gw.ShadowReport())
	}
}

// Attack on issue 12: a WebSocket upgrade on a shadowed route (compare
// false) was copied to the new service as a plain GET, once the
// connection ended, with its Sec-WebSocket-* headers; an upgrade is a
// connection, not an answer to compare: it is never copied.
func TestShadowNeverCopiesAnUpgrade(t *testing.T) {
	t.Parallel()
	hits := make(chan string, 10)
	svc := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { hits <- r.URL.Path })
	mono := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		conn.Close()
	})
	fx := newShadowFixture(t, mono, svc, shadowRules+`  - {name: safe, match: {prefix: /safe}, to: legacy, shadow: {to: orders, percent: 100}}
`, func(o *Options) { o.Shadow = shadow.Options{Workers: 1} })
	conn, err := net.Dial("tcp", fx.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("GET /safe/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the upgrade: %v %v", resp, err)
	}
	conn.Close()
	waittest.For(t, "the upgrade's end", func() bool {
		return counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": "safe"}) >= 1
	})
	doURL(t, "GET", fx.srv.URL+"/safe/plain", nil)
	if got := waittest.Recv(t, "a copy", hits); got != "/safe/plain" {
		t.Fatalf("copied first: %s", got)
	}
}
