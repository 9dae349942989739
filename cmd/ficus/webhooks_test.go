package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/stripe/stripe-go/v82/webhook"
	"golang.org/x/oauth2/clientcredentials"
)

func TestWebhookIngestAndDeliveryThroughServe(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	t.Setenv("FICUS_TEST_WHSEC", "whsec_serve_test")
	dir := t.TempDir()
	port := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)

	var mu sync.Mutex
	got := map[string][]string{} // event id -> client ids seen
	var v *verify.Verifier       // created once the IDP is up
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := verify.ClaimsFrom(r.Context())
			mu.Lock()
			got[r.Header.Get("Webhook-Event-Id")] = append(got[r.Header.Get("Webhook-Event-Id")], c.ClientID)
			mu.Unlock()
		}), "payments.notify").ServeHTTP(w, r)
	}))
	defer svc.Close()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: %q}\n  payments: {url: %q, audience: payments}\nroutes:\n  - {name: hooks, match: {prefix: /internal/payments}, to: payments, auth: {policy: oauth2, scopes_all: [payments.notify]}}\n", svc.URL, svc.URL)), 0o600)
	base := fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:0\"}\nstore: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nroutes: {file: %s}\n", port, rf)
	cfgFile := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(cfgFile, []byte(base), 0o600)
	_, out, errs := runCLI(t, "idp", "client", "create", "stripe-adapter", "--grant", "client_credentials", "--scope", "payments.notify", "--config", cfgFile)
	m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal(errs)
	}
	t.Setenv("FICUS_TEST_ADAPTER_SECRET", m[1])
	// The inbox admin API needs a token with the admin scope.
	_, out, errs = runCLI(t, "idp", "client", "create", "ops", "--grant", "client_credentials", "--scope", "ficus.admin", "--config", cfgFile)
	opsSecret := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if opsSecret == nil {
		t.Fatal(errs)
	}
	front, ops, _ := testServer(t, base+`webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}]
      target: /internal/payments/stripe
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_ADAPTER_SECRET
`)
	v, _ = verify.New(context.Background(), verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "payments"})
	send := func(payload string, secret string) int {
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret}).Header
		req, _ := http.NewRequest("POST", front+"/webhooks/stripe", strings.NewReader(payload))
		req.Header.Set("Stripe-Signature", sig)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ev := `{"id":"evt_serve_1","type":"payment_intent.succeeded"}`
	for i := 0; i < 2; i++ {
		if code := send(ev, "whsec_serve_test"); code != 200 {
			t.Fatalf("signed event: %d", code)
		}
	}
	if code := send(`{"id":"evt_forged"}`, "whsec_wrong"); code != 401 {
		t.Fatalf("forged event: %d", code)
	}
	waittest.For(t, "the delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(got["evt_serve_1"]) == 1 })
	mu.Lock()
	if got["evt_serve_1"][0] != "stripe-adapter" || len(got["evt_forged"]) != 0 {
		t.Fatalf("deliveries: %v", got)
	}
	mu.Unlock()
	cli := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append(args, "--config", cfgFile)...)
		if code != 0 {
			t.Fatalf("ficus %v: %s", args, errs)
		}
		return out
	}
	// The target saw the event before the deliverer recorded its answer:
	// the list says delivered once that is stored.
	waittest.For(t, "the list to show the event delivered", func() bool {
		code, out, _ := runCLI(t, "webhooks", "list", "--config", cfgFile)
		return code == 0 && strings.Contains(out, "evt_serve_1") && strings.Contains(out, "delivered")
	})
	if out := cli("webhooks", "show", "stripe", "evt_serve_1"); !strings.Contains(out, `"payment_intent.succeeded"`) || !strings.Contains(out, "Content-Type: application/json") {
		t.Fatalf("show: %s", out)
	}
	cli("webhooks", "replay", "stripe", "evt_serve_1")
	waittest.For(t, "the CLI replay", func() bool { mu.Lock(); defer mu.Unlock(); return len(got["evt_serve_1"]) == 2 })
	if out := cli("webhooks", "purge", "--older-than", "1h"); !strings.Contains(out, "0 events purged") {
		t.Fatalf("purge of recent events: %s", out)
	}
	if code, _, _ := runCLI(t, "webhooks", "replay", "stripe", "evt_unknown", "--config", cfgFile); code == 0 {
		t.Fatal("replaying an unknown event succeeded")
	}
	tok, err := (&clientcredentials.Config{ClientID: "ops", ClientSecret: opsSecret[1], TokenURL: issuer + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"ops": tok.AccessToken}
	for _, tc := range []struct{ method, path, client string }{
		{"GET", "/admin/webhooks", ""}, {"POST", "/admin/webhooks/stripe/evt_serve_1/replay", ""}, {"POST", "/admin/webhooks/purge?older_than=1h", ""},
	} {
		if code, hdr, _ := call(t, ops, tc.method, tc.path, tc.client, tokens, ""); code != 401 || hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s without a token: %d", tc.method, tc.path, code)
		}
	}
	if code, _, body := call(t, ops, "GET", "/admin/webhooks?adapter=stripe", "ops", tokens, ""); code != 200 || !strings.Contains(body, `"event_id":"evt_serve_1"`) {
		t.Fatalf("admin list: %d %s", code, body)
	}
	if code, _, body := call(t, ops, "GET", "/admin/webhooks/stripe/evt_serve_1", "ops", tokens, ""); code != 200 || !strings.Contains(body, "payment_intent.succeeded") {
		t.Fatalf("admin show: %d %s", code, body)
	}
	if code, _, _ := call(t, ops, "GET", "/admin/webhooks/stripe/nope", "ops", tokens, ""); code != 404 {
		t.Fatalf("admin show unknown: %d", code)
	}
	if code, _, body := call(t, ops, "POST", "/admin/webhooks/stripe/evt_serve_1/replay", "ops", tokens, ""); code != 202 {
		t.Fatalf("admin replay: %d %s", code, body)
	}
	waittest.For(t, "the admin replay", func() bool { mu.Lock(); defer mu.Unlock(); return len(got["evt_serve_1"]) == 3 })
	// The deliverer counts a delivery once the target's answer is back,
	// after the target saw it: poll.
	wants := []string{`ficus_webhooks_received_total{adapter="stripe"} 1`, `ficus_webhooks_duplicates_total{adapter="stripe"} 1`,
		`ficus_webhooks_rejected_total{adapter="stripe",reason="signature"} 1`, `ficus_webhooks_delivered_total{adapter="stripe"} 3`,
		`ficus_webhooks_ack_seconds_count{adapter="stripe"} 1`,
		`ficus_store_group_commit_items_count{kind="inbox"}`, `ficus_store_group_commit_items_count{kind="delivered"}`}
	var metrics string
	if !waittest.Until(10*time.Second, func() bool {
		_, metrics = get(t, ops+"/metrics")
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	}) {
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	}
}
