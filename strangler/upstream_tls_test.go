package strangler

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/ficus-gw/ficus/strangler/tlsconf/tlstest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// tlsService is an https new service on a private CA that requires a
// client certificate from that CA and offers HTTP/2; it answers with the
// protocol and the client certificate's common name it saw, and a
// trailer, and echoes a WebSocket message on /ws.
func tlsService(t *testing.T, ca *tlstest.CA) *httptest.Server {
	t.Helper()
	p := ca.Server(t, "", "svc", "svc.internal")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err == nil {
				_ = c.Write(r.Context(), typ, append([]byte(r.Proto+" "), msg...))
			}
			return
		}
		cn := "(none)"
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.Header().Set("Trailer", "X-Checksum")
		fmt.Fprintf(w, "%s %s", r.Proto, cn)
		w.Header().Set("X-Checksum", "done")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Cert}, ClientCAs: ca.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func tlsRules(monolith, svc, caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: %q}
  svc:
    url: %q
    breaker: {failures: 2}
    tls:
      ca_file: %s
      server_name: svc.internal
      cert_file: %s
      key_file: %s
routes:
  - {name: api, match: {prefix: /api}, to: svc}
  - {name: ws, match: {prefix: /ws}, to: svc}
`, monolith, svc, caFile, certFile, keyFile)
}

// Issue 14: an https upstream on a private CA, with the gateway's client
// certificate (mTLS), is called over HTTP/2 when it offers it; trailers
// pass; a WebSocket upgrade still goes over HTTP/1.1.
func TestHTTPSUpstreamWithAPrivateCAAndAClientCertificate(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "internal")
	svc := tlsService(t, ca)
	cp := ca.Client(t, "", "gateway", "ficus-gateway")
	fx := newTestGateway(t, tlsRules("{{.Monolith}}", svc.URL, ca.File, cp.CertFile, cp.KeyFile))

	resp, body := fx.do(t, "GET", "/api/x", nil)
	if resp.StatusCode != 200 || string(body) != "HTTP/2.0 ficus-gateway" {
		t.Fatalf("%d %q, want the service over HTTP/2 seeing the gateway's certificate", resp.StatusCode, body)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "done" {
		t.Fatalf("trailer %q", got)
	}

	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(fx.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(t.Context(), websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(t.Context())
	if err != nil || string(msg) != "HTTP/1.1 hello" {
		t.Fatalf("WebSocket through an https upstream: %q %v", msg, err)
	}
}

// Issue 14: an upstream whose certificate the gateway refuses (a CA it
// does not trust) is the upstream's fault: nothing was sent, so a GET
// falls back to the monolith, a POST gets 502, never 500, and its breaker
// counts the failures.
func TestUpstreamWithAnUntrustedCertificateIsRefused(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "internal"), tlstest.NewCA(t, "other")
	svc := tlsService(t, ca)
	cp := ca.Client(t, "", "gateway", "ficus-gateway")
	fx := newTestGateway(t, tlsRules("{{.Monolith}}", svc.URL, other.File, cp.CertFile, cp.KeyFile))

	resp, body := fx.do(t, "POST", "/api/x", strings.NewReader("{}"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST to an untrusted upstream: %d %s", resp.StatusCode, body)
	}
	resp, _ = fx.do(t, "GET", "/api/anything", nil)
	if resp.StatusCode != http.StatusNotFound || counterValue(t, fx.reg, "ficus_fallbacks_total", nil) != 1 {
		t.Fatalf("GET: %d, fallbacks %v; want the monolith's answer (go-httpbin's 404)", resp.StatusCode, counterValue(t, fx.reg, "ficus_fallbacks_total", nil))
	}
	if v := counterValue(t, fx.reg, "ficus_upstream_breaker_state", map[string]string{"upstream": "svc"}); v != 2 {
		t.Fatalf("breaker state %v after two refused handshakes, want 2 (open)", v)
	}
	resp, _ = fx.do(t, "POST", "/api/x", strings.NewReader("{}"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST with the breaker open: %d", resp.StatusCode)
	}
}

// Issue 14: a tls file that cannot be read refuses the rule set with the
// file:line of its key, and the rules before it keep serving; a new CA
// bundle in the same place is read on the next reload.
func TestUnreadableUpstreamTLSFilesKeepTheOldRules(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "internal")
	svc := tlsService(t, ca)
	cp := ca.Client(t, "", "gateway", "ficus-gateway")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "ca.pem")
	b, _ := os.ReadFile(ca.File)
	os.WriteFile(bundle, b, 0o600)
	rules := tlsRules("{{.Monolith}}", svc.URL, bundle, cp.CertFile, cp.KeyFile)
	fx := newTestGateway(t, rules)
	if resp, body := fx.do(t, "GET", "/api/x", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		name, rules, want string
	}{
		{"missing CA bundle", strings.Replace(rules, bundle, filepath.Join(dir, "gone.pem"), 1), "routes.yaml:9:16: upstreams.svc.tls.ca_file: open "},
		{"not a bundle", strings.Replace(rules, bundle, cp.KeyFile, 1), "routes.yaml:9:16: upstreams.svc.tls.ca_file: " + cp.KeyFile + ": no PEM certificate"},
		{"key of another certificate", strings.Replace(rules, "key_file: "+cp.KeyFile, "key_file: "+ca.Client(t, dir, "x", "x").KeyFile, 1), "routes.yaml:11:18: upstreams.svc.tls.cert_file: "},
	} {
		fx.write(t, tc.rules)
		err := fx.gw.Reload(fx.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if resp, body := fx.do(t, "GET", "/api/x", nil); resp.StatusCode != 200 || string(body) != "HTTP/2.0 ficus-gateway" {
			t.Errorf("%s: the old rules stopped serving: %d %s", tc.name, resp.StatusCode, body)
		}
	}

	// The bundle now trusts another CA only: the next reload reads it.
	other := tlstest.NewCA(t, "other")
	ob, _ := os.ReadFile(other.File)
	os.WriteFile(bundle, ob, 0o600)
	fx.write(t, rules)
	if err := fx.gw.Reload(fx.file); err != nil {
		t.Fatal(err)
	}
	if resp, _ := fx.do(t, "POST", "/api/x", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("after the bundle changed: %d, want 502", resp.StatusCode)
	}
}

// The client certificate is read again when its files change, without a
// reload of the rules.
func TestUpstreamClientCertificateIsRenewedWithoutAReload(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "internal")
	var mu sync.Mutex
	serials := map[string]bool{}
	p := ca.Server(t, "", "svc", "svc.internal")
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials[r.TLS.PeerCertificates[0].SerialNumber.String()] = true
		mu.Unlock()
		w.Header().Set("Connection", "close") // a new handshake each time
		io.WriteString(w, "ok")
	}))
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{p.Cert}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	svc.StartTLS()
	t.Cleanup(svc.Close)
	dir := t.TempDir()
	cp := ca.Client(t, dir, "gateway", "ficus-gateway")
	fx := newTestGateway(t, tlsRules("{{.Monolith}}", svc.URL, ca.File, cp.CertFile, cp.KeyFile))
	if resp, body := fx.do(t, "GET", "/api/x", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	next := ca.Client(t, dir, "gateway", "ficus-gateway")
	seen := func() bool {
		fx.do(t, "GET", "/api/x", nil)
		mu.Lock()
		defer mu.Unlock()
		return serials[next.Serial.String()]
	}
	waittest.For(t, "the renewed client certificate", seen)
}
