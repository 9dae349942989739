package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLIInput(t, "", args...)
}

func runCLIInput(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestRoutesValidate(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "routes", "validate", "../../testdata/routes/valid.yaml")
	if code != 0 || !strings.Contains(out, "valid.yaml: ok (5 routes, 3 upstreams, monolith legacy)") {
		t.Fatalf("valid: %d %q", code, out)
	}
	code, _, errs := runCLI(t, "routes", "validate", "../../testdata/routes/valid.yaml", "../../testdata/routes/invalid.yaml")
	if code != 1 || !strings.Contains(errs, "invalid.yaml:13:14: routes[0].split[1].to: unknown upstream") || !strings.Contains(errs, "1 of 2 files invalid") {
		t.Fatalf("invalid: %d %q", code, errs)
	}
}

func TestRoutesDiff(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "routes", "diff", "../../testdata/routes/valid.yaml", "../../testdata/routes/valid-v2.yaml")
	if code != 0 || !strings.Contains(out, "~ route orders\n    weight legacy: 80% -> 50%") {
		t.Fatalf("diff: %d %q", code, out)
	}
	code, _, _ = runCLI(t, "routes", "diff", "--exit-code", "../../testdata/routes/valid.yaml", "../../testdata/routes/valid-v2.yaml")
	if code != 1 {
		t.Fatalf("--exit-code with changes = %d", code)
	}
	code, out, _ = runCLI(t, "routes", "diff", "--exit-code", "../../testdata/routes/valid.yaml", "../../testdata/routes/valid.yaml")
	if code != 0 || out != "no changes\n" {
		t.Fatalf("no changes: %d %q", code, out)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "ficus ") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestDemoRoutesAreValid(t *testing.T) {
	t.Parallel()
	b, err := demo.Routes(&demo.Upstreams{Monolith: "http://127.0.0.1:1", Orders: "http://127.0.0.1:2", WebApp: "http://127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "demo.yaml")
	os.WriteFile(p, b, 0o600)
	if code, _, errs := runCLI(t, "routes", "validate", p); code != 0 {
		t.Fatal(errs)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "ficus.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	_, _, err := config.Load(write("listen: {addr: nonsense, ops_addr: \"127.0.0.1:9\"}\nstore: {driver: mysql}\nroutes: {file: missing.yaml}\ntrusted_proxies: [300.1.1.1]\n"), config.ForServe)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"listen.addr: must be host:port", "store.driver: must be one of memory, postgres", "routes.file: stat", "trusted_proxies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, _, err = config.Load(write("listen: {addr: \"127.0.0.1:9\", ops_addr: \"127.0.0.1:9\"}\nroutes: {file: ficus.yaml}\n"), config.ForServe)
	if err == nil || !strings.Contains(err.Error(), "listen.ops_addr: must differ from listen.addr") {
		t.Fatalf("same addresses: %v", err)
	}
	_, _, err = config.Load(write("store: {driver: postgres, dsn: 'postgres://u:hunter2@db/x'}\nroutes: {file: x}\n"), config.ForServe)
	if err == nil || !strings.Contains(err.Error(), "use env:NAME or file:PATH") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("literal secret: %v", err)
	}
	_, _, err = config.Load(write("store: {driver: postgres, dsn: env:FICUS_TEST_UNSET_VAR}\nroutes: {file: x}\n"), config.ForServe)
	if err == nil || !strings.Contains(err.Error(), "FICUS_TEST_UNSET_VAR is not set") {
		t.Fatalf("unset env: %v", err)
	}
	_, _, err = config.Load(write("listen: {adr: x}\n"), config.ForServe)
	if err == nil || !strings.Contains(err.Error(), "ficus.yaml:1: listen.adr: unknown field") {
		t.Fatalf("unknown field: %v", err)
	}
}

// testServer runs runServer in-process on free ports and returns its
// addresses and a stop function that waits for it to end.
func testServer(t *testing.T, cfgYAML string) (front, ops string, stop func() error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "ficus.yaml")
	if err := os.WriteFile(p, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, sec, err := config.Load(p, config.ForServe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, sec, serverIO{stdout: io.Discard, stderr: io.Discard, started: func(a, o string) { started <- [2]string{a, o} }})
	}()
	select {
	case a := <-started:
		front, ops = "http://"+a[0], "http://"+a[1]
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() { cancel(); result = <-done })
		return result
	}
	t.Cleanup(func() { stop() })
	return front, ops, stop
}

func routeFile(t *testing.T, upstream string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routes.yaml")
	os.WriteFile(p, []byte("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \""+upstream+"\"}\nroutes: []\n"), 0o600)
	return p
}

// slowServer answers "done <path>" after the duration in the request's
// sleep parameter (none: at once).
type slowServer struct {
	*httptest.Server
	// busy counts the requests it is answering.
	busy atomic.Int64
}

func slowUpstream(t *testing.T) *slowServer {
	s := &slowServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.busy.Add(1)
		defer s.busy.Add(-1)
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d) // a slow upstream, the behaviour under test
		}
		fmt.Fprintf(w, "done %s", r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

// inFlight starts a GET of u (to a slowServer, through ficus) and returns
// once up is answering it, while the request is in flight; the channel
// gets "<status> <body>", or the error.
func inFlight(t *testing.T, up *slowServer, u string) <-chan string {
	t.Helper()
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get(u)
		if err != nil {
			res <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	waittest.For(t, "the request to reach the upstream", func() bool { return up.busy.Load() == 1 })
	return res
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeWithPostgresDrainsOnShutdown(t *testing.T) {
	t.Parallel()
	up := slowUpstream(t)
	front, ops, stop := testServer(t, fmt.Sprintf(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
store: {driver: postgres, dsn: %s}
routes: {file: %s}
idp: {issuer: "http://ficus.test"}
shutdown_timeout: 10s
`, pgDSN(t), routeFile(t, up.URL)))

	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, ops+p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	if code, body := get(t, front+"/hello"); code != 200 || body != "done /hello" {
		t.Fatalf("proxy: %d %q", code, body)
	}
	if _, body := get(t, ops+"/metrics"); !strings.Contains(body, `ficus_requests_total{code="2xx",route="(unmatched)",side="legacy"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics missing: %.500s", body)
	}

	// A request in flight when shutdown starts completes.
	inflight := inFlight(t, up, front+"/slow?sleep=1500ms")
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	if got := <-inflight; got != "200 done /slow" {
		t.Fatalf("in-flight request: %s", got)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("server ended with %v", err)
	}
	if _, err := http.Get(front + "/after"); err == nil {
		t.Fatal("new connections accepted after shutdown")
	}
}

// The real binary: SIGHUP reloads the route file (an invalid one is
// rejected and the old rules keep serving), SIGTERM drains.
func TestBinarySignals(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ficus")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	a, b := slowUpstream(t), httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "new") }))
	t.Cleanup(b.Close)
	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \""+a.URL+"\"}\nroutes: []\n"), 0o600)
	port := freePort(t)
	cfg := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:%d\"}\nroutes: {file: routes.yaml, watch: false}\nshutdown_timeout: 10s\n", port, freePort(t))), 0o600)
	var stderr lockedBuffer
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, front+"/x")

	os.WriteFile(rf, []byte("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \""+a.URL+"\"}\n  new: {url: \""+b.URL+"\"}\nroutes:\n  - {name: n, match: {prefix: /n}, to: new}\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waittest.For(t, "the reloaded rules", func() bool { _, body := get(t, front+"/n"); return body == "new" })

	os.WriteFile(rf, []byte("version: 1\nmonolith: nowhere\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waittest.For(t, "the rejection to be logged", func() bool { return strings.Contains(stderr.String(), "route file rejected") })
	if _, body := get(t, front+"/n"); body != "new" {
		t.Fatalf("after an invalid reload: %q", body)
	}

	inflight := inFlight(t, a, front+"/slow?sleep=1500ms")
	cmd.Process.Signal(syscall.SIGTERM)
	if got := <-inflight; got != "200 done /slow" {
		t.Fatalf("in-flight request during SIGTERM: %q", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(nil)
	defer srv.Close()
	var port int
	fmt.Sscanf(srv.URL[strings.LastIndexByte(srv.URL, ':')+1:], "%d", &port)
	return port
}

// waitUp waits until u answers.
func waitUp(t *testing.T, u string) {
	t.Helper()
	waittest.For(t, u+" to answer", func() bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// lockedBuffer is a bytes.Buffer safe to read while a child process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
