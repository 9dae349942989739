package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stripe/stripe-go/v82/webhook"
)

// writeConfig writes a process config (and an empty route file beside it
// on a dead monolith) into a new directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(rf, []byte("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\nroutes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ficus.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveMustRefuse runs `ficus serve` and expects it to refuse to start.
// A server that starts anyway is stopped after a while and fails the test.
func serveMustRefuse(t *testing.T, cfg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"serve", "--config", cfg}, strings.NewReader(""), &out, &errb)
	if code == 0 || ctx.Err() != nil {
		t.Fatalf("ficus serve started (exit %d); stderr:\n%s", code, errb.String())
	}
	return errb.String()
}

// serveBackground runs `ficus serve` until the test ends and returns its
// standard error as it grows.
func serveBackground(t *testing.T, cfg string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, strings.NewReader(""), io.Discard, &stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waittest.For(t, "ficus to serve", func() bool {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("ficus serve ended with %d:\n%s", code, stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), "ficus is serving")
	})
	return &stderr
}

// Issue 8 item 16: a CLI command resolves only the secrets it uses. The
// adapter's client secret does not exist before `idp client create` makes
// it, and the web-hook and mobile secrets are no business of the CLI.
func TestCLIResolvesOnlyTheSecretsItUses(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, "http://127.0.0.1:1", `idp: {issuer: "http://ficus.test"}
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_UNSET_WHSEC]}]
      target: /internal/payments
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_UNSET_ADAPTER_SECRET
mobile:
  paths: [/api]
  apps:
    - {name: ios, key: env:FICUS_TEST_UNSET_APP_KEY, client_id: ios-app, client_secret: env:FICUS_TEST_UNSET_APP_SECRET}
`)
	code, out, errs := runCLI(t, "idp", "client", "create", "stripe-adapter", "--grant", "client_credentials", "--config", cfg)
	if code != 0 || !strings.Contains(out, "client_secret: ficus_cs_") {
		t.Fatalf("idp client create: %d\n%s", code, errs)
	}
	for _, args := range [][]string{{"migrate"}, {"webhooks", "list"}, {"idp", "client", "list"}} {
		if code, _, errs := runCLI(t, append(args, "--config", cfg)...); code != 0 {
			t.Fatalf("ficus %v: %s", args, errs)
		}
	}
	// serve uses them all, and names every missing one at once.
	errs = serveMustRefuse(t, cfg)
	for _, want := range []string{"FICUS_TEST_UNSET_WHSEC", "FICUS_TEST_UNSET_ADAPTER_SECRET", "FICUS_TEST_UNSET_APP_KEY"} {
		if !strings.Contains(errs, want) {
			t.Errorf("serve does not name %s:\n%s", want, errs)
		}
	}
	// A literal secret is refused by every command, and not echoed.
	bad := writeConfig(t, "store: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nmobile: {apps: [{name: ios, key: hunter2hunter2hunter2, client_id: x, client_secret: env:X}]}\n")
	if code, _, errs := runCLI(t, "idp", "client", "list", "--config", bad); code == 0 || !strings.Contains(errs, "not a secret reference") || strings.Contains(errs, "hunter2") {
		t.Fatalf("literal secret: %d %s", code, errs)
	}
}

// Issue 8 item 16: every problem of a config file is reported at once —
// YAML type errors, invalid values and missing secrets — each with
// file:line, in the config's own terms, never with Go type names.
func TestConfigErrorsAllAtOnce(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `listen:
  addr: "127.0.0.1:0"
  ops_addr: "127.0.0.1:0"
  read_header_timeout: soon
store: {driver: postgres, dsn: env:FICUS_TEST_UNSET_DSN}
routes: {file: routes.yaml}
idp:
  issuer: http://ficus.test
  access_ttl: 5
  max_tokens_per_user: -1
log: {access_log: maybe}
webhooks:
  delivery: {workers: -2, max_age: 1 week}
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_UNSET_WHSEC]}]
      target: /payments
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_UNSET_ADAPTER
      max_body: lots
      answer: {status: 200, contenttype: text/plain}
`)
	errs := serveMustRefuse(t, cfg)
	for _, want := range []string{
		"ficus.yaml:4: listen.read_header_timeout: ",
		"ficus.yaml:5: store.dsn: environment variable FICUS_TEST_UNSET_DSN is not set",
		"ficus.yaml:9: idp.access_ttl: ",
		"ficus.yaml:10: idp.max_tokens_per_user: must not be negative",
		"ficus.yaml:11: log.access_log: must be true or false",
		"ficus.yaml:13: webhooks.delivery.workers: must not be negative",
		"ficus.yaml:13: webhooks.delivery.max_age: must be a duration",
		"FICUS_TEST_UNSET_WHSEC",
		"ficus.yaml:21: webhooks.adapters[0].max_body: ",
		"ficus.yaml:22: webhooks.adapters[0].answer.contenttype: unknown field (did you mean content_type?)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, goName := range []string{"time.Duration", "!!str", "unmarshal", "not found in type", "config.", "adapters.", "int64", "*bool"} {
		if strings.Contains(errs, goName) {
			t.Errorf("message shows Go internals (%q)", goName)
		}
	}
	if t.Failed() {
		t.Log(errs)
	}
}

// Issue 8 items 16 and 18: answer.content_type (snake case, like every
// other key) and a human max_body work end to end.
func TestAdapterAnswerAndMaxBodyKeys(t *testing.T) {
	t.Setenv("FICUS_TEST_WHSEC", "whsec_answer_test")
	t.Setenv("FICUS_TEST_ADAPTER_SECRET", "adapter-secret")
	port := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`listen: {addr: "127.0.0.1:%d", ops_addr: "127.0.0.1:0"}
routes: {file: routes.yaml}
log: {access_log: false}
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}]
      target: /payments
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_ADAPTER_SECRET
      max_body: 1KiB
      answer: {status: 202, body: "thanks", content_type: text/x-thanks}
`, port))
	serveBackground(t, cfg)
	post := func(payload string) (*http.Response, string) {
		t.Helper()
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: "whsec_answer_test", Timestamp: time.Now()})
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/webhooks/stripe", port), strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", sp.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(`{"id":"evt_1","type":"x"}`)
	if resp.StatusCode != 202 || body != "thanks" || resp.Header.Get("Content-Type") != "text/x-thanks" {
		t.Fatalf("answer: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := post(`{"id":"evt_2","pad":"` + strings.Repeat("x", 1100) + `"}`); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over max_body 1KiB: %d", resp.StatusCode)
	}
}

// Issue 8 item 12: ficus serve refuses to derive an issuer that clients
// cannot use, and names the key to set.
func TestServeRefusesAnUnusableDefaultIssuer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
	}
	for _, tc := range []struct{ name, listen, want string }{
		{"port 0", `{addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}`, "has port 0"},
		{"tls", fmt.Sprintf(`{addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0", tls: {cert_file: %s/tls.crt, key_file: %s/tls.key}}`, dir, dir), "plain http while listen.tls serves https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := serveMustRefuse(t, writeConfig(t, "listen: "+tc.listen+"\nroutes: {file: routes.yaml}\n"))
			if !strings.Contains(errs, "idp.issuer: is required") || !strings.Contains(errs, tc.want) {
				t.Fatalf("%s", errs)
			}
		})
	}
	// Set, or without the IDP, it starts.
	serveBackground(t, writeConfig(t, "listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: routes.yaml}\nidp: {issuer: \"https://login.example.com\"}\n"))
	serveBackground(t, writeConfig(t, "listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: routes.yaml}\nidp: {enabled: false}\n"))
}

// Issue 8 item 17: what would fail on every request fails at start.
func TestServeRefusesAtStartWhatFailsPerRequest(t *testing.T) {
	t.Setenv("FICUS_TEST_GW_SECRET", "gateway-secret")
	remote := `listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
routes: {file: routes.yaml}
idp: {enabled: false}
gateway:
  remote_idp: {issuer: "http://127.0.0.1:1", client_id: gateway, client_secret: env:FICUS_TEST_GW_SECRET}
`
	cfg := writeConfig(t, remote)
	os.WriteFile(filepath.Join(filepath.Dir(cfg), "routes.yaml"), []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
routes:
  - {name: legacy-jwt, match: {prefix: /old}, to: legacy, auth: {policy: jwt}}
  - {name: orders-jwt, match: {prefix: /orders}, to: orders, auth: {policy: jwt}}
  - {name: anon, match: {prefix: /shop}, to: orders, auth: {policy: optional, client: web}}
`), 0o600)
	errs := serveMustRefuse(t, cfg)
	for _, want := range []string{`route orders-jwt: policy jwt`, `route anon: policy optional`, "gateway.remote_idp"} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "legacy-jwt") {
		t.Errorf("a jwt route to the monolith needs no new JWT, and works:\n%s", errs)
	}

	errs = serveMustRefuse(t, writeConfig(t, "listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: routes.yaml}\nidp: {enabled: false}\nwebhooks: {delivery: {workers: -1}}\n"))
	if !strings.Contains(errs, "webhooks.delivery.workers: must not be negative (got -1)") {
		t.Fatalf("negative workers: %s", errs)
	}
}

// Issue 8 item 18: no flag repeats in its usage the default that pflag
// prints itself, and the purge minimum is stated.
func TestFlagHelpHasNoDoubledDefault(t *testing.T) {
	t.Parallel()
	var visit func(path string, c *cobra.Command)
	visit = func(path string, c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				printed := !slices.Contains([]string{"", "0", "0s", "false", "[]"}, f.DefValue)
				if printed && strings.Contains(f.Usage, "default") {
					t.Errorf("%s --%s: usage %q repeats the default that --help prints (%s)", path, f.Name, f.Usage, f.DefValue)
				}
			})
		}
		for _, sub := range c.Commands() {
			visit(path+" "+sub.Name(), sub)
		}
	}
	visit("ficus", newRoot(io.Discard, io.Discard))
	code, out, _ := runCLI(t, "webhooks", "purge", "--help")
	line := regexp.MustCompile(`(?m)^ +--older-than .*`).FindString(out)
	if code != 0 || strings.Count(line, "default") != 1 || !strings.Contains(line, "at least 1h") {
		t.Fatalf("purge --help:\n%s", out)
	}
	if code, _, errs := runCLI(t, "webhooks", "purge", "--older-than", "30m"); code == 0 || !strings.Contains(errs, "at least 1h") {
		t.Fatalf("purge under the minimum: %d %s", code, errs)
	}
	// Found by the issue-8 attack run: a mistyped --status listed nothing,
	// successfully, as if there were no such events.
	if code, _, errs := runCLI(t, "webhooks", "list", "--status", "deliverd"); code == 0 || !strings.Contains(errs, "--status must be pending, delivered or dead") {
		t.Fatalf("list --status deliverd: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "webhooks", "list", "--limit", "0"); code == 0 || !strings.Contains(errs, "--limit must be at least 1") {
		t.Fatalf("list --limit 0: %d %s", code, errs)
	}
}
