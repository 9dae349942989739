package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

// startDemo runs the demo with its route file in dir until stop is called.
func startDemo(t *testing.T, dir string) (front string, out *lockedBuffer, stop func()) {
	t.Helper()
	return startDemoWith(t, demoOptions{dir: dir})
}

// startDemoWith runs the demo with o (on free loopback ports, hints for
// bin/ficus) until stop is called.
func startDemoWith(t *testing.T, o demoOptions) (front string, out *lockedBuffer, stop func()) {
	t.Helper()
	o.addr, o.opsAddr, o.prog = "127.0.0.1:0", "127.0.0.1:0", "bin/ficus"
	ctx, cancel := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	done := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		done <- runDemo(ctx, o, serverIO{stdout: out, stderr: out, started: func(a, _ string) { started <- a }})
	}()
	select {
	case a := <-started:
		front = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("demo did not start: %v\n%s", err, out.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("demo did not start")
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return front, out, stop
}

// Issue 8 item 18: the demo says when an edit of its route file is taken,
// its hints name the binary as it was run, and `demo --dir` keeps an
// edited route file (serving the upstreams it names) instead of
// overwriting it.
func TestDemoReloadsAndKeepsTheRouteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	front, out, stop := startDemo(t, dir)
	if !strings.Contains(out.String(), "  bin/ficus routes validate ") || strings.Contains(out.String(), "\n  ficus ") {
		t.Fatalf("hints do not name bin/ficus:\n%s", out.String())
	}
	rf := filepath.Join(dir, "routes.yaml")
	b, err := os.ReadFile(rf)
	if err != nil {
		t.Fatal(err)
	}
	// Send /get to the new service instead of the monolith.
	// The watcher may start after the demo says it serves: write until an
	// edit is seen, each time a different file.
	var edited string
	for i := 0; ; i++ {
		edited = strings.Replace(string(b), "routes:\n", "routes:\n  - {name: get-moved, match: {path: /get}, to: orders}\n", 1) + fmt.Sprintf("# edit %d\n", i)
		if err := os.WriteFile(rf, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		if waittest.Until(2*time.Second, func() bool { return strings.Contains(out.String(), "route file reloaded") }) {
			break
		}
		if i == 10 {
			t.Fatalf("no reload reported:\n%s", out.String())
		}
	}
	if _, body := get(t, front+"/get"); !strings.Contains(body, "the new service") {
		t.Fatalf("the edit is not live: %s", body)
	}
	stop()

	front, out, _ = startDemo(t, dir)
	if b, _ := os.ReadFile(rf); string(b) != edited {
		t.Fatalf("the edited route file was overwritten:\n%s", b)
	}
	if !strings.Contains(out.String(), "keeping the existing route file") {
		t.Fatalf("the demo does not say it keeps the file:\n%s", out.String())
	}
	if code, body := get(t, front+"/get"); code != 200 || !strings.Contains(body, "the new service") {
		t.Fatalf("the kept file's upstreams are not served: %d %s", code, body)
	}
	if code, body := get(t, front+"/headers"); code != 200 || !strings.Contains(body, `"headers"`) {
		t.Fatalf("the monolith of the kept file: %d %s", code, body)
	}
}
