package tlsconf_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/ficus-gw/ficus/strangler/tlsconf/tlstest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

func TestCipherSuitesByName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		given []string
		want  string // "" ok, else a substring of the error
	}{
		{"empty is Go's defaults", nil, ""},
		{"ECDHE AEAD suites", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}, ""},
		{"insecure", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA"}, "[1]: TLS_RSA_WITH_RC4_128_SHA is insecure"},
		{"no forward secrecy", []string{"TLS_RSA_WITH_AES_128_GCM_SHA256"}, "is insecure"},
		{"CBC", []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, "only ECDHE suites with AES-GCM or ChaCha20-Poly1305"},
		{"TLS 1.3 suite", []string{"TLS_AES_128_GCM_SHA256"}, "TLS 1.3 suite"},
		{"unknown", []string{"TLS_FROB"}, "no cipher suite Go knows; allowed: "},
		{"nothing HTTP/2 can use", []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}, "which HTTP/2 requires"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := tlsconf.CipherSuites(tc.given)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "" && len(ids) != len(tc.given):
				t.Fatalf("%d ids for %d names", len(ids), len(tc.given))
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, v := range []string{"1.0", "1.1", "1.4", "TLS1.2"} {
		if _, err := tlsconf.ParseVersion(v); err == nil {
			t.Errorf("version %s accepted", v)
		}
	}
	if err := (tlsconf.Policy{MinVersion: "1.1", CipherSuites: []string{"TLS_FROB"}}).Check(); err == nil ||
		!strings.Contains(err.Error(), "min_version: TLS 1.1 is not allowed") || !strings.Contains(err.Error(), "cipher_suites[0]: TLS_FROB") {
		t.Fatalf("policy check: %v", err)
	}
}

// serve starts an HTTPS server on kp under p and returns its URL.
func serve(t *testing.T, kp *tlsconf.Keypair, p tlsconf.Policy) string {
	t.Helper()
	tc, err := tlsconf.Server(kp, p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) }))
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// servedSerial is the serial of the certificate a new connection sees.
func servedSerial(t *testing.T, ca *tlstest.CA, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(addr, "https://"), ca.ClientConfig("front.test", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestKeypairReloadsAndKeepsTheOldPairWhenTheNewOneIsBroken(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "rotate")
	dir := t.TempDir()
	first := ca.Server(t, dir, "front", "front.test")
	var mu sync.Mutex
	var events []string
	kp, err := tlsconf.LoadKeypair(first.CertFile, first.KeyFile, func(changed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			events = append(events, "error")
		} else {
			events = append(events, "changed")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, kp, tlsconf.Policy{})
	if got := servedSerial(t, ca, url); got != first.Serial.String() {
		t.Fatalf("serial %s, want %s", got, first.Serial)
	}
	second := ca.Server(t, dir, "front", "front.test") // same files, new pair
	if changed, err := kp.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if got := servedSerial(t, ca, url); got != second.Serial.String() {
		t.Fatalf("after the reload: serial %s, want %s", got, second.Serial)
	}
	if !kp.Serves(first.Cert.Certificate[0]) || !kp.Serves(second.Cert.Certificate[0]) {
		t.Fatal("the previous and the current leaf are both the pair's")
	}
	// A key that does not match the certificate: the old pair stays.
	other := ca.Server(t, t.TempDir(), "other", "front.test")
	key, _ := os.ReadFile(other.KeyFile)
	os.WriteFile(second.KeyFile, key, 0o600)
	if changed, err := kp.Reload(); changed || err == nil {
		t.Fatalf("a broken pair: %v %v", changed, err)
	}
	if got := servedSerial(t, ca, url); got != second.Serial.String() {
		t.Fatalf("after a broken pair: serial %s, want %s", got, second.Serial)
	}
	if changed, err := kp.Reload(); changed || err == nil { // still broken, still reported
		t.Fatalf("the same broken pair: %v %v", changed, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ",") != "changed,error,error" {
		t.Fatalf("onReload heard %v", events)
	}
}

// A Kubernetes Secret volume: the files are symlinks through ..data, a
// symlink to a timestamped directory that the kubelet swaps atomically.
func TestWatchSeesASymlinkSwap(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "k8s")
	vol := t.TempDir()
	v1 := filepath.Join(vol, "..2026_01_01")
	os.Mkdir(v1, 0o700)
	first := ca.Server(t, v1, "tls", "front.test")
	os.Symlink("..2026_01_01", filepath.Join(vol, "..data"))
	os.Symlink("..data/tls.crt", filepath.Join(vol, "tls.crt"))
	os.Symlink("..data/tls.key", filepath.Join(vol, "tls.key"))
	kp, err := tlsconf.LoadKeypair(filepath.Join(vol, "tls.crt"), filepath.Join(vol, "tls.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kp.Watch(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	url := serve(t, kp, tlsconf.Policy{})
	if got := servedSerial(t, ca, url); got != first.Serial.String() {
		t.Fatalf("serial %s, want %s", got, first.Serial)
	}
	v2 := filepath.Join(vol, "..2026_02_01")
	os.Mkdir(v2, 0o700)
	second := ca.Server(t, v2, "tls", "front.test")
	os.Symlink("..2026_02_01", filepath.Join(vol, "..data_tmp"))
	os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data"))
	waittest.For(t, "the new certificate on a new connection", func() bool { return servedSerial(t, ca, url) == second.Serial.String() })
}

func TestServerRefusesOldVersionsAndOffersHTTP2(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "versions")
	p := ca.Server(t, "", "front", "front.test")
	kp, _ := tlsconf.LoadKeypair(p.CertFile, p.KeyFile, nil)
	url := serve(t, kp, tlsconf.Policy{})
	addr := strings.TrimPrefix(url, "https://")
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c := ca.ClientConfig("front.test", nil)
		c.MinVersion, c.MaxVersion = v, v
		if conn, err := tls.Dial("tcp", addr, c); err == nil {
			conn.Close()
			t.Errorf("a TLS %x client was served", v)
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS %x: %v", v, err)
		}
	}
	c := ca.ClientConfig("front.test", nil)
	c.NextProtos = []string{"h2", "http/1.1"}
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if st := conn.ConnectionState(); st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12 {
		t.Fatalf("ALPN %q, version %x", st.NegotiatedProtocol, st.Version)
	}
	// By default a TLS 1.2 client offering only CBC suites (in Go's own
	// defaults) is refused: the default is the allowed list.
	c = ca.ClientConfig("front.test", nil)
	c.MaxVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}
	if conn, err := tls.Dial("tcp", addr, c); err == nil {
		conn.Close()
		t.Error("a TLS 1.2 client offering only CBC suites was served by default")
	}
	c.CipherSuites = append(c.CipherSuites, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305)
	if conn, err := tls.Dial("tcp", addr, c); err != nil {
		t.Errorf("a TLS 1.2 client offering ChaCha20-Poly1305 too: %v", err)
	} else {
		conn.Close()
	}
	// TLS 1.3 only: a TLS 1.2 client is refused.
	url13 := serve(t, kp, tlsconf.Policy{MinVersion: "1.3"})
	c = ca.ClientConfig("front.test", nil)
	c.MaxVersion = tls.VersionTLS12
	if conn, err := tls.Dial("tcp", strings.TrimPrefix(url13, "https://"), c); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.2 client was served under min_version 1.3")
	}
}

func TestClientTrustsItsCABundleAndPresentsItsCertificate(t *testing.T) {
	t.Parallel()
	ca, wrong := tlstest.NewCA(t, "private"), tlstest.NewCA(t, "wrong")
	sp := ca.Server(t, "", "svc", "svc.internal")
	var seen sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			seen.Store(r.TLS.PeerCertificates[0].SerialNumber.String(), true)
		}
		w.Write([]byte(r.Proto))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{sp.Cert}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cp := ca.Client(t, dir, "gw", "gateway")

	hc, err := tlsconf.Client{CAFile: ca.File, ServerName: "svc.internal", CertFile: cp.CertFile, KeyFile: cp.KeyFile}.HTTPClient(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Fatalf("proto %s, want HTTP/2.0 by ALPN", resp.Proto)
	}
	if _, ok := seen.Load(cp.Serial.String()); !ok {
		t.Fatal("the client certificate was not presented")
	}
	// Renewed client certificate: presented on a new connection.
	next := ca.Client(t, dir, "gw", "gateway")
	hc.CloseIdleConnections()
	waittest.For(t, "the renewed client certificate", func() bool {
		hc.CloseIdleConnections()
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, ok := seen.Load(next.Serial.String())
		return ok
	})

	for _, tc := range []struct {
		name string
		c    tlsconf.Client
		want string
	}{
		{"wrong CA", tlsconf.Client{CAFile: wrong.File, ServerName: "svc.internal", CertFile: cp.CertFile, KeyFile: cp.KeyFile}, "certificate signed by unknown authority"},
		{"wrong name", tlsconf.Client{CAFile: ca.File, ServerName: "other.internal", CertFile: cp.CertFile, KeyFile: cp.KeyFile}, "other.internal"},
		// TLS 1.3 refuses a missing client certificate after the
		// handshake: the error is the alert's or, when HTTP/2 was
		// negotiated, the HTTP/2 client's (Go 1.26); either way, refused.
		{"no client certificate", tlsconf.Client{CAFile: ca.File, ServerName: "svc.internal"}, ""},
	} {
		hc, err := tc.c.HTTPClient(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: served", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		c    tlsconf.Client
		want string
	}{
		{tlsconf.Client{CAFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{tlsconf.Client{CAFile: notPEM}, "no PEM certificate"},
		{tlsconf.Client{CertFile: cp.CertFile}, "go together"},
		{tlsconf.Client{CertFile: cp.CertFile, KeyFile: sp.KeyFile}, "private key does not match"},
		{tlsconf.Client{MinVersion: "1.0"}, "RFC 8996"},
	} {
		if _, err := tc.c.Config(nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
