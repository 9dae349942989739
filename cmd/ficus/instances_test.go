package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2/clientcredentials"
)

// staticBinary builds the release binary with `make static`, the target
// the Dockerfile runs, and returns its path.
func staticBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ficus")
	mk := exec.Command("make", "static", "STATIC_BIN="+bin, "VERSION=test")
	mk.Dir = repoRoot
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make static: %v\n%s", err, out)
	}
	return bin
}

// instance is one ficus serve process of the release binary.
type instance struct {
	cfg, front, ops string
	cmd             *exec.Cmd
}

func (in *instance) start(t *testing.T, bin string) {
	t.Helper()
	in.cmd = exec.Command(bin, "serve", "--config", in.cfg)
	in.cmd.Stdout, in.cmd.Stderr = io.Discard, io.Discard
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := in.cmd
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waittest.For(t, in.ops+"/readyz to answer 200", func() bool {
		resp, err := http.Get(in.ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// hookTarget is the service web-hooks are delivered to; it counts each
// event id it receives, and answers its name on every other path.
type hookTarget struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]int
}

func newHookTarget(t *testing.T, name string) *hookTarget {
	h := &hookTarget{got: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Webhook-Event-Id"); id != "" {
			h.mu.Lock()
			h.got[id]++
			h.mu.Unlock()
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookTarget) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[id]
}

// Issue 14: several instances on one PostgreSQL are the scaling model.
// Three ficus serve processes of the release binary (make static) share
// one database and its route store, after ficus migrate: a token issued at
// one works at the others; a revocation at one is honoured by all; a route
// revision applied once is served by all; web-hooks accepted at all three
// are delivered exactly once each. Then one is killed with SIGKILL while
// web-hooks and API calls flow: the others keep serving every call sent to
// them, every web-hook answered 2xx is delivered (more than once only if the
// killed instance had it claimed: at most its workers × batch), and the
// restarted instance serves the revision applied and refuses the token
// revoked while it was down.
func TestThreeInstancesOnOneDatabase(t *testing.T) {
	bin := staticBinary(t)
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	t.Setenv("FICUS_TEST_WHSEC", "whsec_three_instances")
	svc, next := newHookTarget(t, "svc"), newHookTarget(t, "next")
	dir := t.TempDir()
	rules := func(name string, extra string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: %q}
  svc: {url: %q, audience: svc}
  next: {url: %q}
routes:
  - {name: api, match: {prefix: /api}, to: svc, auth: {policy: oauth2}}
%s`, svc.URL, svc.URL, next.URL, extra)), 0o600)
		return p
	}
	base := func(port, opsPort int) string {
		return fmt.Sprintf(`listen: {addr: "127.0.0.1:%d", ops_addr: "127.0.0.1:%d"}
store: {driver: postgres, dsn: env:FICUS_TEST_DSN, max_conns: 8}
routes: {source: postgres, poll_interval: 1h}
idp: {issuer: "http://ficus.test"}
log: {level: warn, access_log: false}
`, port, opsPort)
	}
	// Two workers each; the lease only has to outlast a worker's batch of
	// loopback deliveries and its first token (an argon2id check, seconds
	// on a loaded machine): 2s was seen to expire there, and the event was
	// delivered again by another instance. It is also how long the killed
	// instance's claimed events wait before another delivers them.
	const workers, lease = 2, "20s"
	var ins [3]*instance
	for i := range ins {
		port, opsPort := freePort(t), freePort(t)
		ins[i] = &instance{cfg: filepath.Join(dir, fmt.Sprintf("ficus%d.yaml", i)),
			front: fmt.Sprintf("http://127.0.0.1:%d", port), ops: fmt.Sprintf("http://127.0.0.1:%d", opsPort)}
		os.WriteFile(ins[i].cfg, []byte(base(port, opsPort)), 0o600)
	}
	cli := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append(args, "--config", ins[0].cfg)...)
		if code != 0 {
			t.Fatalf("ficus %v: %s%s", args, out, errs)
		}
		return out
	}
	// The upgrade order: the schema first, with the release binary.
	if out, err := exec.Command(bin, "migrate", "--config", ins[0].cfg).CombinedOutput(); err != nil || string(out) != "migrations applied\n" {
		t.Fatalf("ficus migrate: %v %s", err, out)
	}
	secretOf := func(out string) string {
		m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no client secret in %s", out)
		}
		return m[1]
	}
	t.Setenv("FICUS_TEST_HOOK_SECRET", secretOf(cli("idp", "client", "create", "hook-adapter", "--grant", "client_credentials")))
	appSecret := secretOf(cli("idp", "client", "create", "app", "--grant", "client_credentials"))
	cli("routes", "apply", rules("v1.yaml", ""), "--reason", "start", "--yes")
	for _, in := range ins {
		os.WriteFile(in.cfg, []byte(mustRead(t, in.cfg)+fmt.Sprintf(`webhooks:
  delivery: {workers: %d, lease: %s}
  adapters:
    - {name: stripe, path: /webhooks/stripe, schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}],
       target: /hooks, client_id: hook-adapter, client_secret: env:FICUS_TEST_HOOK_SECRET}
`, workers, lease)), 0o600)
	}
	for _, in := range ins {
		in.start(t, bin)
	}
	waitListeners(t, 3)

	// A token from one instance works at every instance.
	token := func(at *instance) string {
		t.Helper()
		tok, err := (&clientcredentials.Config{ClientID: "app", ClientSecret: appSecret, TokenURL: at.front + "/oauth2/token"}).Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tokA, tokB := token(ins[0]), token(ins[1])
	for _, in := range ins {
		for _, tok := range []string{tokA, tokB} {
			if code := authGet(t, in.front+"/api/x", tok); code != 200 {
				t.Fatalf("%s: a token from another instance: %d", in.front, code)
			}
		}
	}
	// A revocation at one reaches the others, which had the token cached.
	revoke := func(at *instance, tok string) {
		t.Helper()
		resp, err := http.PostForm(at.front+"/oauth2/revoke", url.Values{"token": {tok}, "client_id": {"app"}, "client_secret": {appSecret}})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("revoke: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	revoke(ins[2], tokB)
	for _, in := range ins {
		waittest.For(t, in.front+" to refuse the token revoked at another instance", func() bool { return authGet(t, in.front+"/api/x", tokB) == 401 })
	}
	// A revision applied once is served by all.
	cli("routes", "apply", rules("v2.yaml", "  - {name: v2, match: {prefix: /v2}, to: next}\n"), "--reason", "next", "--yes")
	for _, in := range ins {
		waittest.For(t, in.front+" to serve revision 2", func() bool { _, body := get(t, in.front+"/v2/x"); return body == "next" })
	}

	// Web-hooks accepted at all three, each delivered exactly once.
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(front, id string) int {
		body := fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded"}`, id)
		ts := fmt.Sprint(time.Now().Unix())
		mac := hmac.New(sha256.New, []byte("whsec_three_instances"))
		mac.Write([]byte(ts + "." + body))
		req, _ := http.NewRequest("POST", front+"/webhooks/stripe", strings.NewReader(body))
		req.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var first []string
	for i := range 60 {
		id := fmt.Sprintf("evt_first_%d", i)
		if code := post(ins[i%3].front, id); code != 200 {
			t.Fatalf("%s at %s: %d", id, ins[i%3].front, code)
		}
		first = append(first, id)
	}
	db, err := pgx.Connect(context.Background(), os.Getenv("FICUS_TEST_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	// Delivered rows are final: an event recorded delivered is never sent
	// again, so the counts read after that are the whole story.
	allDelivered := func() bool {
		var pending int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM webhook_inbox WHERE status <> 'delivered'`).Scan(&pending)
		return err == nil && pending == 0
	}
	waittest.For(t, "the first web-hooks to be delivered", allDelivered)
	for _, id := range first {
		if n := svc.count(id); n != 1 {
			t.Fatalf("%s delivered %d times across three instances", id, n)
		}
	}

	// SIGKILL one instance while web-hooks and API calls flow.
	victim, survivors := ins[1], []*instance{ins[0], ins[2]}
	tokC := token(ins[0])
	var accepted sync.Map
	var nAccepted, served, failed atomic.Int64
	killed := make(chan struct{})
	midStream := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 80 {
				id := fmt.Sprintf("evt_kill_%d_%d", w, i)
				at := ins[(w+i)%3]
				if code := post(at.front, id); code == 200 {
					accepted.Store(id, true)
					if nAccepted.Add(1) >= 60 {
						once.Do(func() { close(midStream) })
					}
				}
			}
		})
	}
	wg.Go(func() {
		// API calls to the survivors: every one is served, before, during
		// and after the kill.
		// Bounded: until 200 calls after the kill, at most 20,000.
		after := 0
		for i := range 20000 {
			select {
			case <-killed:
				if after++; after > 200 {
					return
				}
			default:
			}
			if authGet(t, survivors[i%2].front+"/api/x", tokC) == 200 {
				served.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})
	waittest.Recv(t, "web-hooks accepted before the kill", midStream)
	victim.cmd.Process.Signal(syscall.SIGKILL)
	victim.cmd.Wait()
	close(killed)
	// While it is down: a revocation and a revision it must catch up with.
	revoke(ins[0], tokA)
	cli("routes", "apply", rules("v3.yaml", "  - {name: v3, match: {prefix: /v3}, to: next}\n"), "--reason", "while one is down", "--yes")
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d API calls to the surviving instances failed", failed.Load(), served.Load()+failed.Load())
	}

	victim.start(t, bin)
	if _, body := get(t, victim.ops+"/readyz"); body != "ready\nrules: revision 3\n" {
		t.Fatalf("restarted instance: %q", body)
	}
	if code := authGet(t, victim.front+"/api/x", tokA); code != 401 {
		t.Fatalf("the restarted instance accepts a token revoked while it was down: %d", code)
	}
	if code := authGet(t, victim.front+"/api/x", tokC); code != 200 {
		t.Fatalf("the restarted instance refuses a live token: %d", code)
	}
	waittest.For(t, "every accepted web-hook to be delivered", allDelivered)
	dups, n := 0, 0
	accepted.Range(func(k, _ any) bool {
		n++
		switch c := svc.count(k.(string)); {
		case c == 0:
			t.Errorf("%s was answered 200 and never delivered", k)
		case c > 1:
			dups++
		}
		return true
	})
	if dups > workers*8 {
		t.Errorf("%d events delivered twice: more than the killed instance's %d workers × batch 8 could have held", dups, workers)
	}
	t.Logf("%d web-hooks accepted around the kill, all delivered, %d twice (claimed by the killed instance); %d API calls served by the survivors, none failed",
		n, dups, served.Load())
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitListeners waits until n instances LISTEN for both revocations and
// route revisions on the test's database.
func waitListeners(t *testing.T, n int) {
	t.Helper()
	db, err := pgx.Connect(context.Background(), os.Getenv("FICUS_TEST_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	waittest.For(t, fmt.Sprintf("%d instances to LISTEN", n), func() bool {
		var got int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&got)
		return err == nil && got == 2*n
	})
}
