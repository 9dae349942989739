// Package rawtest sends hand-made HTTP/1.1 requests over a plain TCP
// connection, byte for byte, for tests whose point is a request no client
// library would send: a path spelled with dot segments, ;parameters or
// escapes, a body cut short, a client that stops sending.
//
// It serves the tests of the gateway, the sidecar and the adapters, so it
// belongs to none of them; it sits beside strangler/pgtest for the reason
// given in strangler/pgmigrate.
package rawtest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Bound is the deadline of one exchange: a server that hangs fails the
// test instead of stalling it. It is a safety net, never what a test
// asserts.
const Bound = 15 * time.Second

// Exchange writes raw to addr and returns the answer, its body read into
// body. With halfClose the client stops sending after raw (a client gone
// mid-body that still reads the answer).
func Exchange(t testing.TB, addr, raw string, halfClose bool) (resp *http.Response, body []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(Bound))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", raw, err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// Get sends "GET target HTTP/1.1" with target exactly as written, a Host
// header, the given header lines ("Name: value") and Connection: close.
func Get(t testing.TB, addr, host, target string, header ...string) (resp *http.Response, body []byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return Exchange(t, addr, b.String(), false)
}
