package strangler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

const reloadA = baseRules + `  - {name: flip, match: {prefix: /anything/flip}, to: orders}
`
const reloadB = baseRules + `  - {name: flip, match: {prefix: /anything/flip}, split: [{to: payments, weight: 50}, {to: legacy, weight: 50}]}
  - {name: extra, match: {prefix: /anything/extra}, to: payments}
`

// Requests running while the rule set is swapped again and again all
// succeed, and each sees one whole rule set.
func TestReloadUnderLoadFailsNothing(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, reloadA)
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := noRedirect.Get(fx.srv.URL + "/anything/flip/x")
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 40; i++ {
		if i%2 == 0 {
			fx.load(t, reloadB)
		} else {
			fx.load(t, reloadA)
		}
		time.Sleep(10 * time.Millisecond) // requests run between two swaps: the load under test
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed across 40 reloads", ok.Load(), failed.Load())
	}
	t.Logf("%d requests across 40 reloads, none failed", ok.Load())
}

func TestInvalidReloadKeepsOldRules(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, reloadA)
	fx.write(t, reloadA+"  - {name: flip, match: {prefix: /dup}, to: nowhere}\n")
	err := fx.gw.Reload(fx.file)
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	if !strings.Contains(err.Error(), "routes.yaml:") || !strings.Contains(err.Error(), `unknown upstream "nowhere"`) || !strings.Contains(err.Error(), "duplicate route name") {
		t.Fatalf("error lacks file:line or reasons: %v", err)
	}
	if got := fx.side(t, "/anything/flip"); got != "orders" {
		t.Fatalf("old rules not serving: %s", got)
	}
	if v := counterValue(t, fx.reg, "ficus_route_reloads_total", map[string]string{"result": "error"}); v != 1 {
		t.Fatalf("reload errors = %v", v)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, reloadA)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 10)
	go func() { _ = fx.gw.Watch(ctx, fx.file, func(err error) { results <- err }) }()
	// The watcher may not watch yet: rewrite the same rules, each time a
	// different file, until it reports a reload.
	for i := 0; ; i++ {
		fx.write(t, reloadA+fmt.Sprintf("# probe %d\n", i))
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("valid file rejected: %v", err)
			}
		case <-time.After(time.Second):
			if i == 10 {
				t.Fatal("the watcher never reloaded")
			}
			continue
		}
		break
	}

	fx.write(t, "version: 1\nmonolith: [broken\n")
	// A late probe may report first, a success; the broken file must fail.
	for rejected := false; !rejected; {
		select {
		case err := <-results:
			rejected = err != nil
		case <-time.After(10 * time.Second):
			t.Fatal("broken file accepted: no rejection within 10s")
		}
	}
	if got := fx.side(t, "/anything/flip"); got != "orders" {
		t.Fatalf("after a broken write, served by %s", got)
	}
	fx.write(t, reloadB)
	if err := waittest.Recv(t, "the reload", results); err != nil {
		t.Fatalf("valid file rejected: %v", err)
	}
	if got := fx.side(t, "/anything/extra"); got != "payments" {
		t.Fatalf("new rules not live: %s", got)
	}
}

// Every spelling of a protected path reaches the protected route (which
// refuses without a token) or is refused: none reaches the monolith's
// catch-all, which would serve it without auth.
func TestPathNormalisationCannotBypassAuth(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`  - {name: admin, match: {prefix: /anything/admin}, to: legacy, auth: {policy: oauth2}}
  - {name: exact, match: {path: /anything/secret}, to: legacy, auth: {policy: oauth2}}
`)
	attempts := []string{
		"/anything/admin", "/anything/admin/", "/anything/ADMIN", "/Anything/Admin/users",
		"//anything//admin", "/anything/./admin", "/anything/x/../admin", "/anything/admin/x/..",
		"/anything/%61dmin", "/anything/%2e/admin", "/anything/x/%2e%2e/admin", "/anything/x/.%2E/admin",
		"/anything/admin;jsessionid=1", "/anything/admin;/x", "/%61nything/admin",
		"/anything/secret", "/anything/secret/", "/anything/SECRET", "/anything/secret;x", "/anything/./secret",
	}
	for _, p := range attempts {
		resp, b := fx.do(t, "GET", p, nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: %d (want 401 from the protected route): %.80s", p, resp.StatusCode, b)
		}
	}
	for _, p := range []string{"/anything/admin%2fx", "/anything%2Fadmin", "/anything/x/..%2fadmin", "/anything/admin%5c", "/anything/x%00/../admin"} {
		resp, _ := fx.do(t, "GET", p, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", p, resp.StatusCode)
		}
	}
	// The normalised path is what is forwarded.
	_, b := fx.do(t, "GET", "/anything/public/./x/../%7Euser", nil)
	if !strings.Contains(string(b), `/anything/public/~user"`) {
		t.Errorf("forwarded path not normalised: %s", b)
	}
}

// Issue 8 item 17: what the process refuses at start (its Check) is
// refused at every reload too, and the live rules keep serving.
func TestCheckRefusesAReloadAndKeepsOldRules(t *testing.T) {
	refuse := errors.New("route flip: refused by the process check")
	fx := newTestGateway(t, reloadA, func(o *Options) {
		o.Check = func(f *routes.File) error {
			for _, r := range f.Routes {
				if r.Name == "refuse-me" {
					return refuse
				}
			}
			return nil
		}
	})
	fx.write(t, reloadA+"  - {name: refuse-me, match: {prefix: /refuse}, to: legacy}\n")
	if err := fx.gw.Reload(fx.file); !errors.Is(err, refuse) {
		t.Fatalf("reload error = %v, want the check's", err)
	}
	if got := fx.side(t, "/anything/flip"); got != "orders" {
		t.Fatalf("old rules not serving: %s", got)
	}
	for _, r := range fx.gw.Rules().Routes {
		if r.Name == "refuse-me" {
			t.Fatal("the refused file went live")
		}
	}
	if v := counterValue(t, fx.reg, "ficus_route_reloads_total", map[string]string{"result": "error"}); v != 1 {
		t.Fatalf("reload errors = %v", v)
	}
}

// seriesOf counts the series of every gateway metric that carry route.
func seriesOf(t testing.TB, fx *fixture, route string) int {
	t.Helper()
	mfs, err := fx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "route" && lp.GetValue() == route {
					n++
				}
			}
		}
	}
	return n
}

// A route that leaves the rule set takes all its series with it (both
// sides, every code, its fallbacks), found by their exact labels; the
// routes that stay keep theirs. Series are lazy: flip's are created here
// as its requests on both sides would.
func TestReloadForgetsTheSeriesOfRemovedRoutes(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, reloadB)
	resp, _ := fx.do(t, "GET", "/anything/extra/1", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /anything/extra/1: %d", resp.StatusCode)
	}
	tb := fx.gw.table.Load()
	flip, extra := &tb.routes[len(tb.routes)-2], &tb.routes[len(tb.routes)-1]
	if flip.name != "flip" || extra.name != "extra" {
		t.Fatalf("routes %s, %s", flip.name, extra.name)
	}
	flip.series.get(fx.gw.metrics, 0)
	flip.series.get(fx.gw.metrics, 1)
	extra.series.fallback(fx.gw.metrics, "payments")
	flip.series.fallback(fx.gw.metrics, "payments")
	// side legacy and new for a split, each a histogram and six codes.
	if n := seriesOf(t, fx, "flip"); n != 2*(1+6)+1 {
		t.Fatalf("flip has %d series before the reload", n)
	}
	if n := seriesOf(t, fx, "extra"); n == 0 {
		t.Fatal("extra has no series before the reload")
	}
	fx.load(t, reloadA)
	if n := seriesOf(t, fx, "extra"); n != 0 {
		t.Errorf("extra left the rule set but %d of its series stay", n)
	}
	// flip stays (now one side): its series are not forgotten.
	if n := seriesOf(t, fx, "flip"); n < 1+6 {
		t.Errorf("flip stays but has %d series", n)
	}
}

// A label whose only series is a fallback (the monolith's answer never
// accounted) is forgotten too when it leaves.
func TestReloadForgetsAFallbackOnlyLabel(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, reloadB)
	tb := fx.gw.table.Load()
	tb.routes[len(tb.routes)-1].series.fallback(fx.gw.metrics, "payments")
	if n := seriesOf(t, fx, "extra"); n != 1 {
		t.Fatalf("extra has %d series before the reload, want its fallback", n)
	}
	fx.load(t, reloadA)
	if n := seriesOf(t, fx, "extra"); n != 0 {
		t.Errorf("extra left the rule set but %d of its series stay", n)
	}
}
