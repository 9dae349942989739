package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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
)

// testCert writes a self-signed certificate for dnsName (and nothing
// else: not 127.0.0.1) and its key, and returns a client that trusts it
// when it dials any address under that name.
func testCert(t *testing.T, dir, dnsName string) (certFile, keyFile string, client *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "front.crt"), filepath.Join(dir, "front.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: dnsName}}}
	return certFile, keyFile, client
}

// Issue 8, item 14: with listen.tls set, the calls ficus makes to its own
// front door (web-hook deliveries, synchronous deliveries and the
// adapter's token, the mobile adapter's token) used http:// and failed.
// Each of them is exercised here through serve, on a certificate that does
// not even name 127.0.0.1.
func TestInternalCallsWorkWithTLSOnTheFrontDoor(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	t.Setenv("FICUS_TEST_WHSEC", "whsec_tls_test")
	t.Setenv("FICUS_TEST_APP_KEY", "app-key-0123456789abcdef")
	dir := t.TempDir()
	certFile, keyFile, client := testCert(t, dir, "ficus.test")
	port := freePort(t)
	issuer := fmt.Sprintf("https://127.0.0.1:%d", port)

	var mu sync.Mutex
	got := map[string][]string{} // event id or path -> client ids seen
	var v *verify.Verifier       // created once the IDP is up
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := verify.ClaimsFrom(r.Context())
			key := r.Header.Get("Webhook-Event-Id")
			if key == "" {
				key = r.URL.Path
			}
			mu.Lock()
			got[key] = append(got[key], c.ClientID)
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "seen by the service")
		})).ServeHTTP(w, r)
	}))
	defer svc.Close()
	seen := func(key string) []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got[key]...) }
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: %q}
  svc: {url: %q, audience: svc}
routes:
  - {name: hooks, match: {prefix: /internal/payments}, to: svc, auth: {policy: oauth2}}
  - {name: app, match: {prefix: /m/catalog}, to: svc, auth: {policy: oauth2}}
`, svc.URL, svc.URL)), 0o600)
	base := fmt.Sprintf(`listen: {addr: "127.0.0.1:%d", ops_addr: "127.0.0.1:0", tls: {cert_file: %s, key_file: %s}}
store: {driver: postgres, dsn: env:FICUS_TEST_DSN}
routes: {file: %s}
idp: {issuer: %q}
`, port, certFile, keyFile, rf, issuer)
	cfgFile := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(cfgFile, []byte(base), 0o600)
	for _, c := range []struct{ id, env string }{{"stripe-adapter", "FICUS_TEST_ADAPTER_SECRET"}, {"shop-app", "FICUS_TEST_APP_SECRET"}} {
		_, out, errs := runCLI(t, "idp", "client", "create", c.id, "--grant", "client_credentials", "--config", cfgFile)
		m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatal(errs)
		}
		t.Setenv(c.env, m[1])
	}
	front, _, _ := testServer(t, base+`webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}]
      target: /internal/payments/stripe
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_ADAPTER_SECRET
    - name: stripe-sync
      path: /webhooks/stripe-sync
      sync: true
      schemes: [{type: stripe, secrets: [env:FICUS_TEST_WHSEC]}]
      target: /internal/payments/sync
      client_id: stripe-adapter
      client_secret: env:FICUS_TEST_ADAPTER_SECRET
mobile:
  paths: [/m]
  apps:
    - {name: shop, key: env:FICUS_TEST_APP_KEY, client_id: shop-app, client_secret: env:FICUS_TEST_APP_SECRET}
`)
	front = "https://" + strings.TrimPrefix(front, "http://")
	var err error
	v, err = verify.New(context.Background(), verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "svc", Client: client})
	if err != nil {
		t.Fatal(err)
	}
	send := func(path, payload string) (int, string) {
		t.Helper()
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: "whsec_tls_test"}).Header
		req, _ := http.NewRequest("POST", front+path, strings.NewReader(payload))
		req.Header.Set("Stripe-Signature", sig)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := send("/webhooks/stripe", `{"id":"evt_tls_1"}`); code != 200 {
		t.Fatalf("web-hook over TLS: %d", code)
	}
	if code, body := send("/webhooks/stripe-sync", `{"id":"evt_tls_sync"}`); code != http.StatusAccepted || body != "seen by the service" {
		t.Fatalf("synchronous web-hook over TLS: %d %q, want the service's answer", code, body)
	}
	waittest.For(t, "the delivery", func() bool { return len(seen("evt_tls_1")) == 1 })
	if c := seen("evt_tls_1"); c[0] != "stripe-adapter" {
		t.Fatalf("delivery seen as %v", c)
	}
	if c := seen("evt_tls_sync"); len(c) != 1 || c[0] != "stripe-adapter" {
		t.Fatalf("synchronous delivery seen as %v", c)
	}
	req, _ := http.NewRequest("GET", front+"/m/catalog/items", nil)
	req.Header.Set("X-App-Key", "app-key-0123456789abcdef")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("mobile app-key request over TLS: %d %s", resp.StatusCode, b)
	}
	if c := seen("/m/catalog/items"); len(c) != 1 || c[0] != "shop-app" {
		t.Fatalf("mobile request seen as %v", c)
	}
}
