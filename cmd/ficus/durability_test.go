package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// Kill ficus with SIGKILL while a sender posts events and the target is
// slow; after a restart, every event that was answered 2xx reaches the
// target, and no event that was refused does.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ficus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	t.Setenv("FICUS_TEST_WHSEC", "whsec_kill_test")
	var mu sync.Mutex
	received := map[string]int{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // a slow target: a backlog builds up
		mu.Lock()
		received[r.Header.Get("Webhook-Event-Id")]++
		mu.Unlock()
	}))
	defer target.Close()
	dir := t.TempDir()
	port := freePort(t)
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: %q}\nroutes: []\n", target.URL)), 0o600)
	cfg := filepath.Join(dir, "ficus.yaml")
	base := fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:%d\"}\nstore: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nroutes: {file: %s}\nlog: {access_log: false}\n", port, freePort(t), rf)
	os.WriteFile(cfg, []byte(base), 0o600)
	_, out, errs := runCLI(t, "idp", "client", "create", "hook-adapter", "--grant", "client_credentials", "--config", cfg)
	m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal(errs)
	}
	t.Setenv("FICUS_TEST_HOOK_SECRET", m[1])
	os.WriteFile(cfg, []byte(base+`webhooks:
  delivery: {workers: 4, lease: 2s}
  adapters:
    - {name: stripe, path: /webhooks/stripe, schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}],
       target: /hooks, client_id: hook-adapter, client_secret: env:FICUS_TEST_HOOK_SECRET}
`), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUp(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
		return cmd
	}
	front := fmt.Sprintf("http://127.0.0.1:%d/webhooks/stripe", port)
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(id string, good bool) int {
		body := fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded"}`, id)
		ts := fmt.Sprint(time.Now().Unix())
		key := "whsec_kill_test"
		if !good {
			key = "whsec_wrong"
		}
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(ts + "." + body))
		req, _ := http.NewRequest("POST", front, strings.NewReader(body))
		req.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0 // no answer: the event may or may not have been committed
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	proc := start()
	var amu sync.Mutex
	accepted, refused := map[string]bool{}, map[string]bool{}
	var wg sync.WaitGroup
	const perWorker = 750
	killed := make(chan struct{})
	// midStream is closed once posts have been both accepted and refused,
	// far from the end of the stream: the moment to kill.
	midStream := make(chan struct{})
	var once sync.Once
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("evt_%d_%d", w, i)
				good := i%10 != 0 // every tenth event carries a bad signature
				code := post(id, good)
				amu.Lock()
				switch {
				case code == 200:
					accepted[id] = true
				case code != 0:
					refused[id] = true
				}
				if len(accepted) >= 200 && len(refused) >= 20 {
					once.Do(func() { close(midStream) })
				}
				amu.Unlock()
				if code == 0 {
					select {
					case <-killed:
						return
					default:
					}
				}
			}
		}()
	}
	select {
	case <-midStream: // posts are in flight
	case <-time.After(waittest.Patience):
		t.Fatal("no posts were both accepted and refused")
	}
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()
	close(killed)
	wg.Wait()
	amu.Lock()
	nAccepted, nRefused := len(accepted), len(refused)
	amu.Unlock()
	if nAccepted == 0 || nRefused == 0 || nAccepted+nRefused >= 4*perWorker {
		t.Fatalf("accepted %d, refused %d of %d before the kill (the kill must land mid-stream)", nAccepted, nRefused, 4*perWorker)
	}
	mu.Lock()
	before := len(received)
	mu.Unlock()

	proc = start()
	defer func() { proc.Process.Kill(); proc.Wait() }()
	missing := 0
	if !waittest.Until(60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		missing = 0
		for id := range accepted {
			if received[id] == 0 {
				missing++
			}
		}
		return missing == 0
	}) {
		t.Fatalf("%d of %d accepted events never reached the target after the restart", missing, nAccepted)
	}
	mu.Lock()
	defer mu.Unlock()
	redelivered := 0
	for id, n := range received {
		if refused[id] {
			t.Fatalf("refused event %s was delivered", id)
		}
		if n > 1 {
			redelivered++
		}
	}
	t.Logf("%d accepted, %d refused; %d delivered before the kill; all accepted delivered after the restart; %d redelivered (in flight at the kill; targets dedupe by Webhook-Event-Id)",
		nAccepted, nRefused, before, redelivered)
}
