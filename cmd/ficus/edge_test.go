package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/ficus-gw/ficus/strangler/tlsconf/tlstest"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// curl runs curl, which these tests need: a machine without it fails them.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not on PATH; the HTTP/2 tests need it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	return string(out), err
}

// protoService is an https service on ca that answers with the protocol
// it was called with and the common name of the client certificate it
// saw, which it requires.
func protoService(t *testing.T, ca *tlstest.CA) *httptest.Server {
	t.Helper()
	p := ca.Server(t, "", "svc", "svc.internal")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Cert}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// Issue 14: the front door speaks HTTP/2 by ALPN over TLS (Go's client and
// curl --http2) to an https upstream on a private CA with mTLS, refuses
// TLS 1.1, serves a renewed certificate to new connections without a
// restart (and keeps the old one when the new pair is broken), and the
// redirect listener sends plain HTTP to https.
func TestFrontDoorHTTP2TLSRotationAndRedirect(t *testing.T) {
	t.Parallel()
	ca, internal := tlstest.NewCA(t, "public"), tlstest.NewCA(t, "internal")
	svc := protoService(t, internal)
	gwCert := internal.Client(t, "", "gateway", "ficus-gateway")
	dir := t.TempDir()
	front := ca.Server(t, dir, "front", "front.test")
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  svc:
    url: %q
    tls: {ca_file: %s, server_name: svc.internal, cert_file: %s, key_file: %s}
routes:
  - {name: api, match: {prefix: /api}, to: svc}
`, svc.URL, internal.File, gwCert.CertFile, gwCert.KeyFile)), 0o600)
	port, redirectPort := freePort(t), freePort(t)
	_, ops, _ := testServer(t, fmt.Sprintf(`listen:
  addr: "127.0.0.1:%d"
  ops_addr: "127.0.0.1:0"
  redirect_http: "127.0.0.1:%d"
  tls: {cert_file: %s, key_file: %s, min_version: "1.2", cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]}
routes: {file: %s}
idp: {enabled: false}
`, port, redirectPort, front.CertFile, front.KeyFile, rf))
	base := fmt.Sprintf("https://front.test:%d", port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	tr := &http.Transport{TLSClientConfig: ca.ClientConfig("front.test", nil), ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || string(b) != "HTTP/2.0 ficus-gateway" {
		t.Fatalf("Go's client: %s %q; want HTTP/2.0 both ways, the gateway's client certificate", resp.Proto, b)
	}

	out, err := curl(t, "--http2", "--cacert", ca.File, "--resolve", fmt.Sprintf("front.test:%d:127.0.0.1", port),
		"-w", "\n%{http_version}", base+"/api/x")
	if err != nil || out != "HTTP/2.0 ficus-gateway\n2" {
		t.Fatalf("curl --http2: %v %q", err, out)
	}

	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c := ca.ClientConfig("front.test", nil)
		c.MinVersion, c.MaxVersion = v, v
		if conn, err := tls.Dial("tcp", addr, c); err == nil {
			conn.Close()
			t.Fatalf("a TLS %x client was served", v)
		}
	}

	serial := func() string {
		conn, err := tls.Dial("tcp", addr, ca.ClientConfig("front.test", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	expiry := func() string {
		_, m := get(t, ops+"/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, `ficus_tls_certificate_expiry_seconds{listener="front"}`) {
				return line
			}
		}
		t.Fatal("no ficus_tls_certificate_expiry_seconds for the front door")
		return ""
	}
	if got := serial(); got != front.Serial.String() {
		t.Fatalf("serial %s, want %s", got, front.Serial)
	}
	before := expiry()
	renewed := ca.ServerUntil(t, dir, "front", time.Now().Add(90*24*time.Hour), "front.test")
	waittest.For(t, "the renewed certificate on a new connection", func() bool { return serial() == renewed.Serial.String() })
	if after := expiry(); after == before {
		t.Fatalf("expiry metric still %s after the renewal", after)
	}
	// A key that does not match: the renewed certificate keeps serving.
	other := ca.Server(t, t.TempDir(), "other", "front.test")
	key, _ := os.ReadFile(other.KeyFile)
	os.WriteFile(front.KeyFile, key, 0o600)
	time.Sleep(3 * tlsconf.WatchDebounce) // the watcher's turn; what follows must hold whatever it did
	if got := serial(); got != renewed.Serial.String() {
		t.Fatalf("after a broken pair: serial %s, want %s", got, renewed.Serial)
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	for _, m := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(m, fmt.Sprintf("http://127.0.0.1:%d/a/b%%20c?d=e&f", redirectPort), strings.NewReader("x"))
		req.Host = "front.test"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://front.test:%d/a/b%%20c?d=e&f", port)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("%s on the redirect listener: %d %q, want 308 %q", m, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", redirectPort), nil)
	req.Host = "evil.test/@x"
	if resp, err := noFollow.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a bad Host: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// Issue 14: HTTP/2 without TLS (prior knowledge) only with listen.h2c.
func TestH2COnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "monolith") }))
	t.Cleanup(up.Close)
	rf := routeFile(t, up.URL)
	h2cClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2cClient.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	for _, on := range []bool{false, true} {
		front, _, _ := testServer(t, fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\", h2c: %v}\nroutes: {file: %s}\nidp: {enabled: false}\n", on, rf))
		out, err := curl(t, "--http2-prior-knowledge", "-w", "\n%{http_version}", front+"/x")
		resp, gerr := h2cClient.Get(front + "/x")
		if gerr == nil {
			resp.Body.Close()
		}
		if on {
			if err != nil || out != "monolith\n2" || gerr != nil || resp.Proto != "HTTP/2.0" {
				t.Fatalf("h2c on: curl %v %q; Go %v", err, out, gerr)
			}
			continue
		}
		if err == nil || gerr == nil {
			t.Fatalf("h2c off: prior-knowledge HTTP/2 served: curl %v %q; Go %v", err, out, gerr)
		}
		if code, body := get(t, front+"/x"); code != 200 || body != "monolith" {
			t.Fatalf("h2c off: HTTP/1.1 %d %q", code, body)
		}
	}
}

// Issue 14: the gateway calls a sidecar over mTLS: the sidecar serves
// HTTPS, requires a client certificate from the gateway's CA, and a
// caller without one is refused in the handshake.
func TestGatewayToSidecarOverMTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	keys, _ := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	p, _ := idp.New(idp.Options{Config: idp.Config{Issuer: "https://login.example"}, Store: st, Keys: keys})
	t.Cleanup(p.Close)
	// The JWKS is served over https on the private CA too.
	ca := tlstest.NewCA(t, "mesh")
	jp := ca.Server(t, "", "jwks", "127.0.0.1")
	jwks := httptest.NewUnstartedServer(p.Handler())
	jwks.TLS = &tls.Config{Certificates: []tls.Certificate{jp.Cert}}
	jwks.StartTLS()
	t.Cleanup(jwks.Close)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "service %s", r.Proto) }))
	t.Cleanup(svc.Close)

	sc := ca.Server(t, "", "sidecar", "sidecar.internal")
	gw := ca.Client(t, "", "gateway", "ficus-gateway")
	port := freePort(t)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	var out lockedBuffer
	go func() {
		done <- run(cctx, []string{"sidecar", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--upstream", svc.URL,
			"--jwks", jwks.URL + "/.well-known/jwks.json", "--jwks-ca", ca.File, "--issuer", "https://login.example", "--audience", "svc",
			"--tls-cert", sc.CertFile, "--tls-key", sc.KeyFile, "--client-ca", ca.File}, strings.NewReader(""), &out, &out)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waittest.For(t, "the sidecar to serve", func() bool { return strings.Contains(out.String(), "ficus sidecar on https://") })

	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  svc:
    url: "https://127.0.0.1:%d"
    tls: {ca_file: %s, server_name: sidecar.internal, cert_file: %s, key_file: %s}
routes:
  - {name: api, match: {prefix: /api}, to: svc}
`, port, ca.File, gw.CertFile, gw.KeyFile)), 0o600)
	front, _, _ := testServer(t, fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: %s}\nidp: {enabled: false}\n", rf))
	now := time.Now()
	tok, _, err := p.MintJWT(ctx, &store.Token{ClientID: "c", Scope: "read", Level: "anonymous", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if c := authGet(t, front+"/api/x", tok); c != 200 {
		t.Fatalf("through the gateway to the sidecar over mTLS: %d\n%s", c, out.String())
	}
	if c := authGet(t, front+"/api/x", tok+"x"); c != 401 {
		t.Fatalf("a bad JWT through mTLS: %d", c)
	}

	// Without a client certificate the sidecar refuses the connection.
	noCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig("sidecar.internal", nil)}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/x", port), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := noCert.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a caller without a client certificate got %d", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("without a client certificate: %v", err)
	}
	withCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig("sidecar.internal", &gw)}}
	resp, err := withCert.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with the gateway's certificate: %d", resp.StatusCode)
	}
}

// Issue 14: a gateway uses a remote IDP served over https on a private
// CA, trusting it through gateway.remote_idp.tls.ca_file (no
// SSL_CERT_FILE): introspection, token exchange and the JWKS all go over
// it. Without the bundle the IDP's certificate is refused.
func TestRemoteIDPOverHTTPSWithAPrivateCA(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", pgtest.NewDatabase(t))
	ca := tlstest.NewCA(t, "idp")
	dir := t.TempDir()
	idpCert := ca.Server(t, dir, "idp", "127.0.0.1")
	idpPort := freePort(t)
	issuer := fmt.Sprintf("https://127.0.0.1:%d", idpPort)
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig("", nil)}}

	var v *verify.Verifier // once the IDP is up
	got := make(chan string, 10)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, err := v.Verify(r.Context(), raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		select {
		case got <- c.ClientID:
		default:
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(svc.Close)
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(fmt.Sprintf("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"%[1]s\"}\n  svc: {url: \"%[1]s\", audience: svc}\nroutes:\n  - {name: api, match: {prefix: /api}, to: svc, auth: {policy: oauth2}}\n", svc.URL)), 0o600)
	idpCfg := fmt.Sprintf("listen: {addr: \"127.0.0.1:%d\", ops_addr: \"127.0.0.1:0\", tls: {cert_file: %s, key_file: %s}}\nstore: {driver: postgres, dsn: env:FICUS_TEST_DSN}\nroutes: {file: %s}\nidp: {issuer: %q}\n",
		idpPort, idpCert.CertFile, idpCert.KeyFile, rf, issuer)
	cfgFile := filepath.Join(dir, "idp.yaml")
	os.WriteFile(cfgFile, []byte(idpCfg), 0o600)
	secretOf := func(out string) string { return regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)[1] }
	_, out, errs := runCLI(t, "idp", "client", "create", "app", "--grant", "client_credentials", "--config", cfgFile)
	if out == "" {
		t.Fatal(errs)
	}
	appSecret := secretOf(out)
	_, out, errs = runCLI(t, "idp", "client", "create", "gateway", "--grant", "urn:ietf:params:oauth:grant-type:token-exchange",
		"--grant", "introspection", "--audience", "svc", "--config", cfgFile)
	if out == "" {
		t.Fatal(errs)
	}
	t.Setenv("FICUS_TEST_GW_SECRET", secretOf(out))
	testServer(t, idpCfg)
	var err error
	if v, err = verify.New(context.Background(), verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "svc", Client: trusting}); err != nil {
		t.Fatal(err)
	}
	gwCfg := func(tlsBlock string) string {
		return fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"127.0.0.1:0\"}\nroutes: {file: %s}\nidp: {enabled: false}\ngateway:\n  remote_idp: {issuer: %q, client_id: gateway, client_secret: env:FICUS_TEST_GW_SECRET%s}\n", rf, issuer, tlsBlock)
	}
	gwFront, _, _ := testServer(t, gwCfg(", tls: {ca_file: "+ca.File+"}"))
	tok, err := (&clientcredentials.Config{ClientID: "app", ClientSecret: appSecret, TokenURL: issuer + "/oauth2/token"}).
		Token(context.WithValue(context.Background(), oauth2.HTTPClient, trusting))
	if err != nil {
		t.Fatal(err)
	}
	if c := authGet(t, gwFront+"/api/x", tok.AccessToken); c != 200 {
		t.Fatalf("through the gateway with the remote IDP over https: %d", c)
	}
	if id := waittest.Recv(t, "the service's request", got); id != "app" {
		t.Fatalf("the service saw client %q", id)
	}
	// The same gateway without the bundle cannot reach the IDP: a token
	// is not trusted (the IDP's certificate is refused), never a 500.
	plain, _, _ := testServer(t, gwCfg(""))
	if c := authGet(t, plain+"/api/x", tok.AccessToken); c == 200 || c == 500 {
		t.Fatalf("without the CA bundle: %d", c)
	}
}

// Issue 14: the YAML examples of the TLS sections are accepted: process
// configurations by the loader, rule files by the rule parser.
func TestEdgeDocExamplesParse(t *testing.T) {
	t.Parallel()
	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	n := 0
	for _, page := range []string{"gateway.md", "sidecar.md"} {
		b, err := os.ReadFile(filepath.Join("../../docs", page))
		if err != nil {
			t.Fatal(err)
		}
		_, section, ok := strings.Cut(string(b), "TLS and HTTP/2\n")
		if !ok {
			t.Fatalf("%s has no section TLS and HTTP/2", page)
		}
		if page == "gateway.md" {
			// The remote IDP's example stands just before the section.
			_, section, _ = strings.Cut(string(b), "## A gateway with a remote IDP")
		}
		section, _, _ = strings.Cut(section, "\n# The request path")
		for i, m := range yamlBlock.FindAllStringSubmatch(section, -1) {
			n++
			p := filepath.Join(t.TempDir(), "example.yaml")
			os.WriteFile(p, []byte(m[1]), 0o600)
			if strings.HasPrefix(m[1], "version:") {
				if _, err := routes.ParseFile(p); err != nil {
					t.Errorf("%s rule file example %d: %v", page, i+1, err)
				}
			} else if _, _, err := config.Load(p, config.ForCheck); err != nil {
				t.Errorf("%s configuration example %d: %v", page, i+1, err)
			}
		}
	}
	if n < 3 {
		t.Fatalf("found %d examples", n)
	}
}
