package verify_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/rawtest"
	"github.com/ficus-gw/ficus/strangler/verify"
)

// Issue 8, item 5: the sidecar judges a path exactly as the gateway does —
// the same normaliser, the same segment matching — and forwards the path it
// judged, so no spelling escapes a scope rule.
func TestSidecarScopeRulesSeeEverySpelling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.verifier(t, time.Hour)
	uris := make(chan string, 100)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.RequestURI
		io.WriteString(w, "service")
	}))
	t.Cleanup(svc.Close)
	u, _ := url.Parse(svc.URL)
	rule, err := verify.ParseScopeRule("/admin=orders.admin")
	if err != nil {
		t.Fatal(err)
	}
	h, err := verify.Sidecar(v, u, []verify.ScopeRule{rule})
	if err != nil {
		t.Fatal(err)
	}
	sc := httptest.NewServer(h)
	t.Cleanup(sc.Close)
	addr := strings.TrimPrefix(sc.URL, "http://")
	reader := "Bearer " + e.mint(t, "orders-svc", "orders.read", time.Hour)
	admin := "Bearer " + e.mint(t, "orders-svc", "orders.read orders.admin", time.Hour)

	for _, tt := range []struct {
		target, auth string
		want         int
		forwarded    string
	}{
		{"/admin;x=1/y", reader, 403, ""},
		{"/x/..;/admin/x", reader, 403, ""},
		{"/.;/admin/x", reader, 403, ""},
		{"/x/%2e%2e;/admin/x", reader, 403, ""},
		{"/x/..%3bjsessionid=x/admin/x", reader, 403, ""},
		{"/;x/admin/x", reader, 403, ""},
		{"/ADMIN/x", reader, 403, ""},
		{"/x/%2e%2e/admin", reader, 403, ""},
		{"/a%2Fb", reader, 400, ""},
		{"/x/..;/admin/x", admin, 200, "/admin/x"},
		{"/admin;jsessionid=1/y", admin, 200, "/admin;jsessionid=1/y"},
		{"/admin/..;/orders", reader, 200, "/orders"},
		{"/orders/./7", reader, 200, "/orders/7"},
	} {
		t.Run(tt.target, func(t *testing.T) {
			resp, _ := rawtest.Get(t, addr, "svc", tt.target, "Authorization: "+tt.auth) // as written: no client library cleans it
			code := resp.StatusCode
			// The service records the request before it answers, so
			// whatever it received is in the channel by now.
			forwarded := ""
			select {
			case forwarded = <-uris:
			default:
			}
			if code != tt.want || forwarded != tt.forwarded {
				t.Fatalf("GET %s: %d and the service received %q; want %d and %q", tt.target, code, forwarded, tt.want, tt.forwarded)
			}
		})
	}
}

func TestSidecarRefusesBadScopeRules(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"admin=x", "/a/../b=x", "/a//b=x", "/a%2Fb=x", "/a;b=x", "/a b=x", "=x", "/admin"} {
		if _, err := verify.ParseScopeRule(s); err == nil {
			t.Errorf("ParseScopeRule(%q) accepted", s)
		}
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	a, _ := verify.ParseScopeRule("/admin=a")
	b, _ := verify.ParseScopeRule("/Admin/=b")
	if _, err := verify.Sidecar(nil, u, []verify.ScopeRule{a, b}); err == nil || !strings.Contains(err.Error(), "/Admin") {
		t.Errorf("two rules for one prefix accepted (%v)", err)
	}
	if _, err := verify.Sidecar(nil, u, []verify.ScopeRule{{Prefix: "admin"}}); err == nil {
		t.Error("a relative prefix accepted")
	}
}

// A caller with a token good for one path must not open an h2c tunnel to
// the service (Upgrade: h2c answered 101 by a lenient server) and send
// what it likes through it, past the scope rules.
func TestSidecarPassesOnNoH2CUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.verifier(t, time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		got <- req.Header.Get("Upgrade")
		if req.Header.Get("Upgrade") != "" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			io.WriteString(c, "TUNNELED:"+string(buf[:n]))
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	rule, err := verify.ParseScopeRule("/admin=orders.admin")
	if err != nil {
		t.Fatal(err)
	}
	h, err := verify.Sidecar(v, u, []verify.ScopeRule{rule})
	if err != nil {
		t.Fatal(err)
	}
	sc := httptest.NewServer(h)
	t.Cleanup(sc.Close)
	c, err := net.Dial("tcp", strings.TrimPrefix(sc.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /orders HTTP/1.1\r\nHost: svc\r\nAuthorization: Bearer "+e.mint(t, "orders-svc", "orders.read", time.Hour)+
		"\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		io.WriteString(c, "GET /admin HTTP/1.1\r\nHost: svc\r\n\r\n")
		rest, _ := io.ReadAll(br)
		t.Errorf("the sidecar switched to h2c; the service got the rest raw: %q", rest)
	}
	if up := <-got; up != "" {
		t.Errorf("the service got Upgrade: %s", up)
	}
}
