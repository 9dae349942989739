package strangler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"

	"github.com/ficus-gw/ficus/routes"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"github.com/prometheus/client_golang/prometheus"
)

// seen is what the test "new service" reports about a request it received.
type seen struct {
	Service  string      `json:"service"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawPath  string      `json:"raw_path"`
	URI      string      `json:"uri"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	BodySHA  string      `json:"body_sha256"`
	BodySize int64       `json:"body_size"`
}

// newService starts a real HTTP server standing for a new service. Query
// parameters steer its answer: status, location, setcookie.
func newService(t testing.TB, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		q := r.URL.Query()
		if v := q.Get("location"); v != "" {
			w.Header().Set("Location", v)
		}
		for _, c := range q["setcookie"] {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusOK
		if v := q.Get("status"); v != "" {
			status, _ = strconv.Atoi(v)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(seen{
			Service: name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, URI: r.RequestURI,
			Host: r.Host, Header: r.Header, BodySHA: hex.EncodeToString(h.Sum(nil)), BodySize: n,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newMonolith starts go-httpbin, a real server, as the legacy monolith.
func newMonolith(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(httpbin.New(httpbin.WithMaxBodySize(256 << 20)))
	t.Cleanup(srv.Close)
	return srv
}

// deadAddr returns an address on which nothing listens (connection refused).
func deadAddr(t testing.TB) string {
	t.Helper()
	// A TCP socket bound to a port but not listening: a connection to it
	// is refused at once, and, unlike a listener opened and closed again,
	// the port stays taken until the test ends, so a test running in
	// parallel cannot get it for a server of its own.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

type env struct {
	monolith, orders, payments *httptest.Server
	dead                       string
}

// fixture is a running gateway in front of real upstreams.
type fixture struct {
	env
	gw   *Gateway
	srv  *httptest.Server
	reg  *prometheus.Registry
	dir  string
	file string
}

// newTestGateway renders a rule file template with the upstream URLs
// ({{.Monolith}}, {{.Orders}}, {{.Payments}}, {{.Dead}}), loads it and
// serves the gateway.
func newTestGateway(t testing.TB, rules string, opts ...func(*Options)) *fixture {
	t.Helper()
	fx := &fixture{env: env{monolith: newMonolith(t), orders: newService(t, "orders"), payments: newService(t, "payments"), dead: deadAddr(t)}}
	fx.reg = prometheus.NewRegistry()
	o := Options{Registerer: fx.reg}
	for _, f := range opts {
		f(&o)
	}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	fx.gw = gw
	fx.dir = t.TempDir()
	fx.file = filepath.Join(fx.dir, "routes.yaml")
	fx.write(t, rules)
	if err := gw.LoadFile(fx.file); err != nil {
		t.Fatal(err)
	}
	fx.srv = httptest.NewServer(gw)
	t.Cleanup(fx.srv.Close)
	return fx
}

// serveRules serves a Gateway with the default Options and the rule file
// text as it is (no template, no test upstreams): what benchmarks measure.
func serveRules(tb testing.TB, rules string) *httptest.Server {
	tb.Helper()
	gw, err := New(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := routes.Parse("rules.yaml", []byte(rules))
	if err != nil {
		tb.Fatal(err)
	}
	if err := gw.Load(f); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	tb.Cleanup(srv.Close)
	return srv
}

func (fx *fixture) render(t testing.TB, rules string) []byte {
	t.Helper()
	tpl := template.Must(template.New("rules").Parse(rules))
	var b bytes.Buffer
	if err := tpl.Execute(&b, map[string]string{
		"Monolith": fx.monolith.URL, "Orders": fx.orders.URL, "Payments": fx.payments.URL, "Dead": "http://" + fx.dead,
	}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (fx *fixture) write(t testing.TB, rules string) {
	t.Helper()
	tmp := fx.file + ".tmp"
	if err := os.WriteFile(tmp, fx.render(t, rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, fx.file); err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) load(t testing.TB, rules string) {
	t.Helper()
	f, err := routes.Parse("test.yaml", fx.render(t, rules))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.gw.Load(f); err != nil {
		t.Fatal(err)
	}
}

// noRedirect is a client that neither follows redirects nor asks for gzip,
// so it sees exactly what ficus sends.
var noRedirect = &http.Client{
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (fx *fixture) do(t testing.TB, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return doURL(t, method, fx.srv.URL+path, body, hdr...)
}

// doURL sends one request with header pairs ("Host" sets the Host) and
// returns the response with its body read.
func doURL(t testing.TB, method, u string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decodeSeen(t testing.TB, b []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("not a new-service answer: %v: %s", err, b)
	}
	return s
}

// httpbinHeaders decodes go-httpbin's /headers answer.
func httpbinHeaders(t testing.TB, b []byte) http.Header {
	t.Helper()
	var v struct {
		Headers http.Header `json:"headers"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not an httpbin answer: %v: %s", err, b)
	}
	return v.Headers
}

// counterValue sums the series of a counter or gauge that carry labels.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

const baseRules = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}"}
  orders: {url: "{{.Orders}}", breaker: {failures: 3, open_for: 1m}}
  payments: {url: "{{.Payments}}"}
  down: {url: "{{.Dead}}", timeouts: {dial: 1s}}
routes:
`
