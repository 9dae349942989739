package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"golang.org/x/net/html"
)

// fixed is a Source that reports what it holds.
type fixed struct {
	rules    *routes.File
	traffic  []strangler.RouteTraffic
	breakers map[string]string
	shadow   []ShadowReport
	health   []RouteHealth
	analysis []AnalysisStatus
}

func (f *fixed) Rules() *routes.File               { return f.rules }
func (f *fixed) Traffic() []strangler.RouteTraffic { return f.traffic }
func (f *fixed) Breakers() map[string]string       { return f.breakers }
func (f *fixed) Shadow() []ShadowReport            { return f.shadow }
func (f *fixed) Health() []RouteHealth             { return f.health }
func (f *fixed) Analysis() []AnalysisStatus        { return f.analysis }

// testRules has a route in each state.
const testRules = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
  cart: {url: "http://127.0.0.1:3"}
  search: {url: "http://127.0.0.1:4"}
routes:
  - {name: home, match: {path: /}, to: legacy}
  - name: search
    match: {prefix: /search}
    to: legacy
    shadow: {to: search, percent: 10, compare: true}
  - name: cart
    match: {prefix: /cart}
    split: [{to: cart, weight: 25}, {to: legacy, weight: 75}]
  - {name: orders, match: {prefix: /api/orders, methods: [GET]}, to: orders}
  - name: three
    match: {prefix: /three}
    split: [{to: cart, weight: 20}, {to: orders, weight: 30}, {to: legacy, weight: 50}]
`

func parseRules(t *testing.T, text string) *routes.File {
	t.Helper()
	f, err := routes.Parse("revision 3", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newTestDashboard(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, d)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and parses the page.
func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string, *html.Node) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b), doc
}

// byID finds the element with id in doc; nil when there is none.
func byID(doc *html.Node, id string) *html.Node {
	if doc.Type == html.ElementNode {
		for _, a := range doc.Attr {
			if a.Key == "id" && a.Val == id {
				return doc
			}
		}
	}
	for c := doc.FirstChild; c != nil; c = c.NextSibling {
		if n := byID(c, id); n != nil {
			return n
		}
	}
	return nil
}

// text is the text of the element with id, spaces collapsed; the test
// fails when there is none.
func text(t *testing.T, doc *html.Node, id string) string {
	t.Helper()
	n := byID(doc, id)
	if n == nil {
		t.Fatalf("no element #%s", id)
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Issue 12: the page shows each route in its state (legacy, shadow,
// canary with its percent, migrated, and a split the states do not
// describe), the counts by state, the share of traffic new services
// served, each route's traffic and its new service's breaker; the
// health charts, the analysis verdict and the shadow parity with its
// samples when they are reported, "no data" when not; and, with the
// rules from a file, no revisions and no buttons.
func TestPageShowsRoutesByState(t *testing.T) {
	t.Parallel()
	src := &fixed{
		rules: parseRules(t, testRules),
		traffic: []strangler.RouteTraffic{
			{Route: "home", Legacy: strangler.SideTraffic{Requests: 50}},
			{Route: "cart", Legacy: strangler.SideTraffic{Requests: 30, Errors: 1}, New: strangler.SideTraffic{Requests: 10, Errors: 2}},
			{Route: "orders", New: strangler.SideTraffic{Requests: 30}},
			{Route: "(unmatched)", Legacy: strangler.SideTraffic{Requests: 40}},
		},
		breakers: map[string]string{"legacy": strangler.BreakerNone, "orders": strangler.BreakerClosed, "cart": strangler.BreakerOpen, "search": strangler.BreakerClosed},
	}
	srv := newTestDashboard(t, Options{Source: src})
	resp, page, doc := get(t, srv, Path)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, tc := range []struct{ route, state, label string }{
		{"home", StateLegacy, "legacy"},
		{"search", StateShadow, "shadow 10 % to search"},
		{"cart", StateCanary, "canary 25 %"},
		{"orders", StateMigrated, "migrated"},
		{"three", StateCustom, "split cart 20 % / orders 30 % / legacy 50 %"},
	} {
		row := text(t, doc, "route-"+tc.route)
		if !strings.Contains(row, tc.label) {
			t.Errorf("route %s: %q, want the label %q", tc.route, row, tc.label)
		}
		if !strings.Contains(page, `data-state="`+tc.state+`"`) {
			t.Errorf("no route in state %s", tc.state)
		}
	}
	for st, n := range map[string]string{StateLegacy: "1", StateShadow: "1", StateCanary: "1", StateMigrated: "1", StateCustom: "1"} {
		if got := text(t, doc, "count-"+st); got != n {
			t.Errorf("count of %s: %s, want %s", st, got, n)
		}
	}
	// 40 of 160 requests went to new services.
	if got := text(t, doc, "share"); got != "25.0 %" {
		t.Errorf("share: %q", got)
	}
	if row := text(t, doc, "route-cart"); !strings.Contains(row, "30 / 10") || !strings.Contains(row, "1 / 2") ||
		!strings.Contains(row, "25.0 %") || !strings.Contains(row, "open") {
		t.Errorf("cart's traffic, share, 5xx or breaker: %q", row)
	}
	if got := text(t, doc, "breaker-cart"); got != "open cart" {
		t.Errorf("breakers: %q", got)
	}
	for _, id := range []string{"health", "parity"} {
		if s := text(t, doc, id); !strings.Contains(s, "No data") {
			t.Errorf("#%s without reports: %q", id, s)
		}
	}
	if s := text(t, doc, "revisions"); !strings.Contains(s, "rules come from a file") {
		t.Errorf("revisions with file rules: %q", s)
	}
	if byID(doc, "token") != nil || strings.Contains(page, "<form") {
		t.Error("buttons without a route store")
	}

	// The reports of the shadow engine and the analysis.
	src.health = []RouteHealth{{Route: "cart", Window: 5 * time.Minute,
		Legacy: HealthSide{Requests: 300, ErrorRate: 0.01, P50: 20 * time.Millisecond, P90: 40 * time.Millisecond, P99: 90 * time.Millisecond},
		New:    HealthSide{Requests: 100, ErrorRate: 0.2, P50: 10 * time.Millisecond, P90: 30 * time.Millisecond, P99: 250 * time.Millisecond}}}
	src.analysis = []AnalysisStatus{{Route: "cart", Verdict: "fail", Reason: "5xx 20 % > 5 %", Step: 1, Weight: 25}}
	src.shadow = []ShadowReport{{Route: "search", Target: "search", Percent: 10, Compared: 200, Matched: 190, Dropped: 3,
		Mismatches: map[string]uint64{"body": 8, "status": 2}, Parity: 0.95,
		Samples: []ShadowSample{{At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Method: "GET", Path: "/search?q=x", Kind: "body",
			Primary: ShadowAnswer{Status: 200, Body: `{"hits":3}`}, Shadow: ShadowAnswer{Status: 200, Body: `{"hits":"<script>alert(1)</script>"}`},
			Diffs: []string{"/hits"}}}}}
	_, page, doc = get(t, srv, Path)
	fig := byID(doc, "health-cart")
	if fig == nil || !strings.Contains(text(t, doc, "health-cart"), "over 5m0s: 300 legacy, 100 new") {
		t.Fatalf("no health chart for cart:\n%s", page)
	}
	for _, want := range []string{"<svg", `class="legacy"`, `class="new"`, "20.0 %", "250", "p99 (ms)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the health chart lacks %q", want)
		}
	}
	if row := text(t, doc, "route-cart"); !strings.Contains(row, "fail · step 1, 25 %") {
		t.Errorf("analysis verdict: %q", row)
	}
	sh := text(t, doc, "shadow-search")
	for _, want := range []string{"95.0 % parity", "200 compared, 190 matched, 3 dropped", "8 body", "2 status", "/hits", `{"hits":3}`} {
		if !strings.Contains(sh, want) {
			t.Errorf("shadow report lacks %q: %s", want, sh)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("a sample body is not escaped")
	}
	if row := text(t, doc, "route-search"); !strings.Contains(row, "95.0 %") {
		t.Errorf("parity in the route row: %q", row)
	}
}

// Issue 12: the page's answers: a strict CSP and no caching; the static
// assets; nothing but GET and HEAD; unknown paths 404, a path ficus will
// not normalise (routes.NormalizePath) 400; and a bound on the
// pages rendered a second (anyone may ask), 429 beyond it.
func TestPageAnswers(t *testing.T) {
	t.Parallel()
	srv := newTestDashboard(t, Options{Source: &fixed{}, PerSecond: 1})
	resp, _, doc := get(t, srv, Path)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") ||
		strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	if s := text(t, doc, "summary"); !strings.Contains(s, "No rules loaded yet") {
		t.Errorf("before rules: %q", s)
	}
	for _, tc := range []struct {
		method, path string
		want         int
		ctype        string
	}{
		{"GET", Path + "static/dashboard.css", 200, "text/css"},
		{"GET", Path + "static/dashboard.js", 200, "text/javascript"},
		{"GET", Path + "static/", 404, ""},
		{"GET", Path + "static/../page.html", 404, ""},
		{"GET", Path + "page.html", 404, ""},
		{"GET", Path + "nothing", 404, ""},
		{"GET", Path + "static%2fdashboard.js", 400, ""},
		{"POST", Path, 405, ""},
		{"DELETE", Path + "static/dashboard.js", 405, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.want, tc.ctype)
		}
	}
	limited := 0
	for range 10 {
		if resp, _, _ := get(t, srv, Path); resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Error("10 pages at once on a bound of 1 a second (burst 3): none refused")
	}
}

// Issue 12: with the route store, the page lists the revisions (who,
// what, why; the live one marked; a rollback button on the others) and
// the instances, and each route in a state has a flip form that posts to
// the admin API; the buttons start disabled (the script enables them once
// a token is pasted). When the store does not answer, the page still
// shows the rest and says so.
func TestPageWithTheRouteStore(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	if err := revisions.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	st := revisions.New(pool)
	var parent int64
	for i, p := range []revisions.Proposal{
		{Text: testRules, Author: "alice", Reason: "first rules"},
		{Text: strings.Replace(testRules, "weight: 25}, {to: legacy, weight: 75", "weight: 50}, {to: legacy, weight: 50", 1), Author: "bob via ops-console", Reason: "more cart"},
	} {
		p.Parent = parent
		rev, err := st.Apply(ctx, p)
		if err != nil {
			t.Fatalf("revision %d: %v", i+1, err)
		}
		parent = rev.Number
	}
	if err := st.Heartbeat(ctx, revisions.Instance{ID: "i-1", Hostname: "gw-1", PID: 42, Revision: parent, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	src := &fixed{rules: parseRules(t, testRules)}
	srv := newTestDashboard(t, Options{Source: src, History: st, AdminPath: "/ops/admin/"})
	_, page, doc := get(t, srv, Path)
	// The source serves "revision 3", the store says 2 is live.
	if s := text(t, doc, "behind"); !strings.Contains(s, "still serves revision 3") {
		t.Errorf("behind: %q", s)
	}
	if s := text(t, doc, "live-revision"); s != "revision 2" {
		t.Errorf("live: %q", s)
	}
	if s := text(t, doc, "revision-2"); !strings.Contains(s, "2 live") || !strings.Contains(s, "bob via ops-console") || !strings.Contains(s, "more cart") {
		t.Errorf("revision 2: %q", s)
	}
	if s := text(t, doc, "revision-1"); !strings.Contains(s, "alice") || !strings.Contains(s, "first rules") || !strings.Contains(s, "Roll back to 1") {
		t.Errorf("revision 1: %q", s)
	}
	if byID(doc, "rollback-2") != nil {
		t.Error("a rollback button on the live revision")
	}
	if s := text(t, doc, "revisions"); !strings.Contains(s, "gw-1 pid 42 (current, revision 2)") {
		t.Errorf("instances: %q", s)
	}
	for _, tc := range []struct{ route, state string }{{"home", "legacy"}, {"search", "legacy"}, {"cart", "canary"}, {"orders", "migrated"}} {
		form := byID(doc, "flip-"+tc.route)
		if form == nil || attr(form, "action") != "/ops/admin/routes/state" {
			t.Fatalf("flip form of %s: %v", tc.route, form)
		}
		if !strings.Contains(page, `<option value="`+tc.state+`" selected>`) {
			t.Errorf("%s: %s not selected", tc.route, tc.state)
		}
		if b := byID(doc, "flip-button-"+tc.route); b == nil || !hasAttr(b, "disabled") {
			t.Errorf("%s: the button is not disabled before a token", tc.route)
		}
	}
	if byID(doc, "flip-three") != nil {
		t.Error("a flip form on a three-way split")
	}
	// home has no new upstream yet: it chooses among them.
	if s := text(t, doc, "flip-home"); !strings.Contains(s, "cart") || !strings.Contains(s, "search") || strings.Contains(s, "orders cart") {
		t.Errorf("home's new upstreams: %q", s)
	}
	if byID(doc, "token") == nil || attr(byID(doc, "token"), "type") != "password" {
		t.Error("no token input")
	}

	src.rules.Name = "revision 2"
	if _, _, doc := get(t, srv, Path); byID(doc, "behind") != nil {
		t.Error("behind while serving the live revision")
	}

	pool.Close()
	resp, _, doc := get(t, srv, Path)
	if resp.StatusCode != 200 || !strings.Contains(text(t, doc, "revisions"), "route store did not answer") || byID(doc, "route-cart") == nil {
		t.Errorf("store down: %d %q", resp.StatusCode, text(t, doc, "revisions"))
	}
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// Attack on issue 12: a rule set of thousands of routes, each shadowed
// with full samples, rendered whole made a page of tens of megabytes per
// request (43 MB for 10,000 routes) for anyone who can reach it. The page
// shows RoutesPerPage routes, with only their charts and shadow reports,
// and links the others by ?page=N; the counts by state stay over every
// route, and the page's sample bodies are bounded (the rest counted); a
// malformed page is 400, one past the end the last page.
func TestBigRuleSetIsPaged(t *testing.T) {
	t.Parallel()
	const n = 1001
	var b strings.Builder
	b.WriteString("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  orders: {url: \"http://127.0.0.1:2\"}\nroutes:\n")
	src := &fixed{}
	body := strings.Repeat("x", 4000)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: r%d, match: {prefix: /p%d}, to: legacy, shadow: {to: orders, percent: 10, compare: true}}\n", i, i)
		var samples []ShadowSample
		for range 20 {
			samples = append(samples, ShadowSample{Method: "GET", Path: "/p", Kind: "body",
				Primary: ShadowAnswer{Status: 200, Body: body}, Shadow: ShadowAnswer{Status: 200, Body: body}})
		}
		src.shadow = append(src.shadow, ShadowReport{Route: fmt.Sprintf("r%d", i), Target: "orders", Compared: 20, Mismatches: map[string]uint64{"body": 20}, Samples: samples})
	}
	src.rules = parseRules(t, b.String())
	srv := newTestDashboard(t, Options{Source: src, PerSecond: 1000})

	resp, page, doc := get(t, srv, Path)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	rows := strings.Count(page, `<tr id="route-`)
	if rows != 200 || byID(doc, "route-r0") == nil || byID(doc, "route-r200") != nil {
		t.Errorf("first page: %d routes", rows)
	}
	if got := strings.Count(page, `<article class="shadow"`); got != 200 || byID(doc, "shadow-r200") != nil {
		t.Errorf("first page: %d shadow reports", got)
	}
	if len(page) > 4<<20 || !strings.Contains(page, "20 more samples not shown") {
		t.Errorf("first page: %d bytes", len(page))
	}
	if got := text(t, doc, "count-"+StateShadow); got != "1001" {
		t.Errorf("count of shadowed routes: %s", got)
	}
	if nav := text(t, doc, "pages"); !strings.Contains(nav, "routes 1–200 of 1001, page 1 of 6") || byID(doc, "page-prev") != nil ||
		attr(byID(doc, "page-next"), "href") != "?page=2" {
		t.Errorf("pages: %q", nav)
	}
	for _, p := range []string{"?page=6", "?page=99"} {
		_, page, doc = get(t, srv, Path+p)
		if strings.Count(page, `<tr id="route-`) != 1 || byID(doc, "route-r1000") == nil || byID(doc, "shadow-r1000") == nil ||
			!strings.Contains(text(t, doc, "pages"), "routes 1001–1001 of 1001, page 6 of 6") || byID(doc, "page-next") != nil {
			t.Errorf("%s: %s", p, text(t, doc, "pages"))
		}
	}
	for _, p := range []string{"?page=0", "?page=-1", "?page=x", "?page=%zz", "?page=99999999999999999999"} {
		if resp, _, _ := get(t, srv, Path+p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", p, resp.StatusCode)
		}
	}
}

// blocking is a Source whose Rules waits for release, after telling
// entered: a page being rendered, held.
type blocking struct {
	fixed
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Rules() *routes.File {
	select {
	case b.entered <- struct{}{}:
		<-b.release
	case <-b.release:
	}
	return nil
}

// Attack on issue 12: the rate bound alone let a burst of pages be
// rendered at once (6 concurrent pages of a big rule set took the
// process from 430 MB to 1.3 GB); at most maxRenders are rendered at
// once, the others get 429 with Retry-After.
func TestConcurrentPagesAreBounded(t *testing.T) {
	t.Parallel()
	src := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	srv := newTestDashboard(t, Options{Source: src, PerSecond: 1000})
	done := make(chan int, maxRenders)
	for range maxRenders {
		go func() {
			resp, err := http.Get(srv.URL + Path)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		<-src.entered
	}
	resp, _, _ := get(t, srv, Path)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a page beyond %d at once: %d", maxRenders, resp.StatusCode)
	}
	close(src.release)
	for range maxRenders {
		if code := <-done; code != 200 {
			t.Errorf("a held page: %d", code)
		}
	}
	if resp, _, _ := get(t, srv, Path); resp.StatusCode != 200 {
		t.Errorf("after the others: %d", resp.StatusCode)
	}
}
