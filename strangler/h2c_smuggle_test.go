package strangler

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An upstream that accepts `Upgrade: h2c` (as lenient servers do, with or
// without HTTP2-Settings in Connection) must never get one from ficus: a
// 101 would turn the client's connection into a raw tunnel to it, past
// every route, auth policy and rate limit after the first request (h2c
// smuggling). ficus offers no h2c upgrade itself, and passes none on.
func TestH2CUpgradeIsNotPassedOn(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan http.Header, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				seen <- req.Header
				if strings.EqualFold(req.Header.Get("Upgrade"), "h2c") {
					io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
					buf := make([]byte, 512)
					n, _ := c.Read(buf)
					io.WriteString(c, "TUNNELED:"+string(buf[:n]))
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			}(c)
		}
	}()
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://`+ln.Addr().String()+`"}
routes:
  - {name: public, match: {prefix: /public}, to: legacy}
`)
	for _, conn := range []string{"Upgrade, HTTP2-Settings", "Upgrade", "upgrade, http2-settings, keep-alive"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(fx.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /public/x HTTP/1.1\r\nHost: shop.example\r\nConnection: "+conn+"\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			io.WriteString(c, "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
			rest, _ := io.ReadAll(br)
			t.Errorf("Connection: %s: ficus switched protocols to h2c; what followed went to the upstream raw: %q", conn, rest)
		}
		c.Close()
		h := <-seen
		for _, k := range []string{"Upgrade", "Http2-Settings"} {
			if v := h.Get(k); v != "" {
				t.Errorf("Connection: %s: the upstream got %s: %s", conn, k, v)
			}
		}
		if v := h.Get("Connection"); strings.Contains(strings.ToLower(v), "upgrade") {
			t.Errorf("Connection: %s: the upstream got Connection: %s", conn, v)
		}
	}
}
