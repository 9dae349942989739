package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/demo"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// pgConfig writes a process config on a fresh PostgreSQL database.
func pgConfig(t *testing.T, upstream string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
store: {driver: postgres, dsn: %s}
routes: {file: %s}
%s`, pgDSN(t), routeFile(t, upstream), extra)), 0o600)
	return p
}

// pgDSN creates a fresh PostgreSQL database and returns a file:PATH
// reference to its URL: unlike env:NAME (t.Setenv), it lets tests run in
// parallel.
func pgDSN(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(p, []byte(pgtest.NewDatabase(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file:" + p
}

func TestIDPCommands(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, "http://127.0.0.1:1", "idp: {allow_password: true, issuer: \"http://ficus.test\"}\n")
	must := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runCLIInput(t, stdin, append(args, "--config", cfg)...)
		if code != 0 {
			t.Fatalf("ficus %v: %s", args, errs)
		}
		return out
	}
	if out := must("", "migrate"); !strings.Contains(out, "migrations applied") {
		t.Fatal(out)
	}
	out := must("", "idp", "client", "create", "billing", "--grant", "client_credentials", "--scope", "invoices.read", "--name", "Billing", "--access-ttl", "10m")
	secret := regexp.MustCompile(`client_secret: (ficus_cs_\S+)`).FindStringSubmatch(out)
	if secret == nil {
		t.Fatalf("no secret printed: %s", out)
	}
	if out := must("", "idp", "client", "list"); !strings.Contains(out, "billing") || strings.Contains(out, secret[1]) {
		t.Fatalf("list: %s", out)
	}
	data, _ := os.ReadFile(cfg)
	front, _, _ := testServer(t, string(data))
	tok, err := (&clientcredentials.Config{ClientID: "billing", ClientSecret: secret[1], TokenURL: front + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(tok.Expiry); left > 10*time.Minute || left < 9*time.Minute {
		t.Fatalf("per-client access TTL not applied: %v", left)
	}
	out = must("", "idp", "client", "rotate-secret", "billing")
	if !strings.Contains(out, "client_secret: ficus_cs_") || strings.Contains(out, secret[1]) {
		t.Fatalf("rotate: %s", out)
	}
	if code, _, errs := runCLI(t, "idp", "client", "create", "billing", "--grant", "client_credentials", "--config", cfg); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate client: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "idp", "client", "create", "x", "--grant", "magic", "--config", cfg); code == 0 || !strings.Contains(errs, "unknown grant") {
		t.Fatalf("bad grant: %s", errs)
	}
	if out := must("s3cret-password\n", "idp", "user", "create", "bob", "--password-stdin", "--customer-number", "C-9", "--claim", "name=Bob"); !strings.Contains(out, "user_id:") || strings.Contains(out, "s3cret") {
		t.Fatalf("user create: %s", out)
	}
	if out := must("another-password\n", "idp", "user", "set-password", "bob", "--password-stdin"); !strings.Contains(out, "revoked") {
		t.Fatal(out)
	}
	if out := must("", "idp", "user", "disable", "bob"); !strings.Contains(out, "disabled") {
		t.Fatal(out)
	}
	if out := must("", "idp", "keys", "list"); !strings.Contains(out, "EdDSA") || !strings.Contains(out, "signing") {
		t.Fatalf("keys list: %s", out)
	}
	if out := must("", "idp", "keys", "rotate"); !strings.Contains(out, "published") {
		t.Fatal(out)
	}
	if out := must("", "idp", "keys", "list"); !strings.Contains(out, "next (published)") {
		t.Fatalf("after rotate: %s", out)
	}
	if out := must("", "idp", "client", "delete", "billing"); !strings.Contains(out, "deleted") {
		t.Fatal(out)
	}

	mem := filepath.Join(t.TempDir(), "mem.yaml")
	os.WriteFile(mem, []byte("routes: {file: "+routeFile(t, "http://127.0.0.1:1")+"}\n"), 0o600)
	if code, _, errs := runCLI(t, "idp", "client", "list", "--config", mem); code == 0 || !strings.Contains(errs, "needs store.driver: postgres") {
		t.Fatalf("memory store: %s", errs)
	}
}

// A client created with the CLI gets tokens from `ficus serve` through the
// front door, with a standard OAuth2 client.
func TestServeIDPOnFrontDoor(t *testing.T) {
	t.Parallel()
	up := slowUpstream(t)
	cfg := pgConfig(t, up.URL, "idp: {issuer: \"http://ficus.test\"}\n")
	code, out, errs := runCLI(t, "idp", "client", "create", "svc", "--grant", "client_credentials", "--scope", "a", "--config", cfg)
	if code != 0 {
		t.Fatal(errs)
	}
	secret := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)[1]
	data, _ := os.ReadFile(cfg)
	front, ops, _ := testServer(t, string(data))
	tok, err := (&clientcredentials.Config{ClientID: "svc", ClientSecret: secret, TokenURL: front + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ficus_at_") {
		t.Fatalf("token %q", tok.AccessToken)
	}
	// Issue 9: the IDP gets the path the front door decided on.
	if _, err := (&clientcredentials.Config{ClientID: "svc", ClientSecret: secret, TokenURL: front + "/oauth2/./token"}).Token(context.Background()); err != nil {
		t.Fatalf("/oauth2/./token: %v", err)
	}
	if code, body := get(t, front+"/.well-known/jwks.json"); code != 200 || !strings.Contains(body, `"kty":"OKP"`) {
		t.Fatalf("jwks: %d %s", code, body)
	}
	if code, body := get(t, front+"/anything/else"); code != 200 || body != "done /anything/else" {
		t.Fatalf("gateway behind the front door: %d %q", code, body)
	}
	// Each token was its own commit on PostgreSQL (one request at a time),
	// observed before it was answered.
	_, metrics := get(t, ops+"/metrics")
	for _, want := range []string{`ficus_store_group_commit_items_count{kind="tokens"} 2`, `ficus_store_group_commit_items_sum{kind="tokens"} 2`,
		`ficus_store_group_commit_seconds_count{kind="tokens"} 2`, `ficus_store_group_commit_wait_seconds_count{kind="tokens"} 2`,
		`ficus_store_group_commit_failed_total{kind="tokens"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestDemoCredentialsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{addr: "127.0.0.1:0", opsAddr: "127.0.0.1:0", dir: dir, credsFile: creds},
			serverIO{stdout: io.Discard, stderr: io.Discard, started: func(a, _ string) { started <- a }})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-started:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not start")
	}
	var c demo.Credentials
	waittest.For(t, "the credentials file", func() bool {
		b, err := os.ReadFile(creds)
		return err == nil && json.Unmarshal(b, &c) == nil
	})
	if c.ClientID == "" || c.ClientSecret == "" || c.Username == "" || c.Password == "" || !strings.HasSuffix(c.TokenURL, "/oauth2/token") {
		t.Fatalf("credentials: %+v", c)
	}
	conf := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL}}
	// The demo binds --addr before it derives its issuer, so the issuer
	// and the token URL in the file are right even with port 0.
	tok, err := conf.PasswordCredentialsToken(context.Background(), c.Username, c.Password)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for the demo user")
	}
}
