package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ficus config validate checks the whole process configuration as serve
// loads it, with its route file, and reports every problem at once.
func TestConfigValidate(t *testing.T) {
	t.Setenv("FICUS_TEST_CV_WHSEC", "whsec_config_validate")
	good := writeConfig(t, `listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
idp: {issuer: "https://login.example.com"}
routes: {file: routes.yaml}
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_CV_WHSEC]}]
      target: /payments
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_CV_WHSEC
`)
	writeRoutes(t, good, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
rate_limits:
  per-address: {rate: 6000/m, by: address}
routes:
  - {name: api, match: {prefix: /api}, to: legacy, rate_limit: per-address}
`)
	code, out, errs := runCLI(t, "config", "validate", "-c", good)
	if code != 0 || !strings.Contains(out, good+": ok") || errs != "" {
		t.Fatalf("a good configuration: exit %d\n%s\n%s", code, out, errs)
	}

	// Problems of the configuration (a field, a secret that is not set,
	// a TLS file that is not there) and of its route file, all at once.
	bad := writeConfig(t, `listen:
  addr: "127.0.0.1:0"
  ops_addr: "localhost"
  tls: {cert_file: missing.crt, key_file: missing.key}
idp: {issuer: "https://login.example.com"}
routes: {file: routes.yaml}
log: {access_log: maybe}
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_CV_UNSET]}]
      target: /payments
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_CV_WHSEC
`)
	writeRoutes(t, bad, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
routes:
  - {name: api, match: {prefix: /api}, to: legacy, rate_limit: {rate: 10/s}}
  - {name: who, match: {prefix: /me}, to: nowhere}
  - {name: web, match: {prefix: /web}, to: legacy, auth: {policy: session}}
`)
	code, out, errs = runCLI(t, "config", "validate", "--config", bad)
	if code != 1 || out != "" {
		t.Fatalf("a bad configuration: exit %d, stdout %q", code, out)
	}
	dir := filepath.Dir(bad)
	for _, want := range []string{
		bad + ":3: listen.ops_addr: must be host:port",
		bad + ":4: listen.tls.cert_file: ",
		bad + ":4: listen.tls.key_file: ",
		bad + ":7: log.access_log: must be true or false",
		"FICUS_TEST_CV_UNSET",
		filepath.Join(dir, "routes.yaml") + ":6:",
		"routes[0].rate_limit.by: is required",
		filepath.Join(dir, "routes.yaml") + ":7:",
		`routes[1].to: unknown upstream "nowhere"`,
		bad + ": 7 problems",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Log(errs)
	}

	// A valid route file that this configuration cannot serve: serve's own
	// check of the rules.
	writeRoutes(t, bad, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
routes:
  - {name: web, match: {prefix: /web}, to: legacy, auth: {policy: session}}
`)
	if code, _, errs := runCLI(t, "config", "validate", "-c", bad); code != 1 || !strings.Contains(errs, "route web: policy session needs the session layer") {
		t.Errorf("rules the configuration cannot serve: exit %d\n%s", code, errs)
	}

	// With the route store, nothing is connected: the output says what
	// was not checked.
	store := writeConfig(t, `store: {driver: postgres, dsn: env:FICUS_TEST_CV_WHSEC}
routes: {source: postgres}
`)
	code, out, errs = runCLI(t, "config", "validate", "-c", store)
	if code != 0 || !strings.Contains(out, "not checked: the rules of the route store") || !strings.Contains(out, "not checked: the database of store.dsn") {
		t.Errorf("route store: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "config", "validate", "-c", filepath.Join(dir, "nope.yaml")); code != 1 || !strings.Contains(errs, "nope.yaml") {
		t.Errorf("a missing file: exit %d %s", code, errs)
	}
}

func writeRoutes(t *testing.T, cfg, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "routes.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ficus --version prints what ficus version prints.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	code, flag, _ := runCLI(t, "--version")
	_, cmd, _ := runCLI(t, "version")
	if code != 0 || flag != cmd || !strings.HasPrefix(flag, "ficus ") {
		t.Fatalf("--version %q (exit %d), version %q", flag, code, cmd)
	}
}
