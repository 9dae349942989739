package strangler

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

// rawUpstream is an HTTP/1.1 upstream written by hand, for answers no
// server library would send. answer gets the request's number (from 1)
// and returns the bytes to write, and whether to close the connection
// after them.
type rawUpstream struct {
	addr       string
	conns      atomic.Int64 // accepted
	open       atomic.Int64 // not yet closed by either side
	peerClosed atomic.Int64 // closed by the peer between requests
	reqs       atomic.Int64
}

func newRawUpstream(t *testing.T, answer func(n int64, req *http.Request, c net.Conn) (raw string, closeAfter bool)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			u.open.Add(1)
			wg.Go(func() {
				defer u.open.Add(-1)
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a safety net
					req, err := http.ReadRequest(br)
					if err != nil {
						// The peer closed, or the test ended.
						if errors.Is(err, io.EOF) {
							u.peerClosed.Add(1)
						}
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					raw, closeAfter := answer(u.reqs.Add(1), req, c)
					if raw != "" {
						if _, err := io.WriteString(c, raw); err != nil {
							return
						}
					}
					if closeAfter {
						return
					}
				}
			})
		}
	})
	return u
}

func newFastForTest(addr string, maxIdle int, headerTimeout time.Duration) *fastTransport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return newFastTransport(&http.Transport{Proxy: nil, DialContext: d.DialContext, DisableCompression: true}, addr, d.DialContext, maxIdle, time.Minute, headerTimeout)
}

// fastGet sends one request through rt and reads the whole body.
func fastGet(t *testing.T, rt http.RoundTripper, method, u string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// Issue 15: bodies that end where their framing says, HEAD, 204 and 304
// answers leave the connection in the pool: one connection serves all.
func TestFastPathReusesConnections(t *testing.T) {
	t.Parallel()
	answers := map[string]string{
		"/len":     okAnswer,
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"/head":    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
		"/204":     "HTTP/1.1 204 No Content\r\n\r\n",
		"/304":     "HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n",
	}
	up := newRawUpstream(t, func(_ int64, r *http.Request, _ net.Conn) (string, bool) { return answers[r.URL.Path], false })
	ft := newFastForTest(up.addr, 4, time.Minute)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/len", "ok"}, {"GET", "/chunked", "ok"}, {"HEAD", "/head", ""}, {"GET", "/204", ""},
		{"GET", "/304", ""}, {"GET", "/len", "ok"}, {"OPTIONS", "/len", "ok"},
	} {
		resp, body, err := fastGet(t, ft, c.method, "http://"+up.addr+c.path)
		if err != nil || body != c.body {
			t.Fatalf("%s %s: %v %q, want %q", c.method, c.path, err, body, c.body)
		}
		if c.path == "/chunked" && resp.Trailer.Get("X-Trailer") != "1" {
			t.Errorf("trailer lost: %v", resp.Trailer)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// Issue 15: answers whose framing is doubtful are decided as
// http.Transport decides them (the same parser), and a connection that
// carried one, or bytes beyond an answer, is never used again: the next
// request gets its own answer, never the leftover.
func TestFastPathSmuggling(t *testing.T) {
	t.Parallel()
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
	for _, c := range []struct {
		name, first string
		later       string // written 100 ms after first, while the connection is idle
	}{
		{name: "two different lengths", first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 10\r\n\r\nok" + smuggled},
		{name: "a length that is no number", first: "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok" + smuggled},
		{name: "a negative length", first: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok" + smuggled},
		{name: "chunked and a length", first: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nok\r\n0\r\n\r\n" + smuggled},
		{name: "an unknown transfer coding", first: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + smuggled},
		{name: "bytes beyond the length", first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + smuggled},
		{name: "bytes beyond the length, later", first: okAnswer, later: smuggled},
		{name: "a second answer to one request, later", first: okAnswer, later: okAnswer},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			answer := func(n int64, _ *http.Request, conn net.Conn) (string, bool) {
				if n == 1 {
					if c.later != "" {
						go func() {
							time.Sleep(100 * time.Millisecond)
							io.WriteString(conn, c.later)
						}()
					}
					return c.first, false
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond", false
			}
			// What http.Transport makes of the first answer, from an
			// upstream of its own.
			slowUp := newRawUpstream(t, answer)
			slow := &http.Transport{DisableCompression: true}
			_, wantBody, wantErr := fastGet(t, slow, "GET", "http://"+slowUp.addr+"/")
			slow.CloseIdleConnections()

			up := newRawUpstream(t, answer)
			ft := newFastForTest(up.addr, 4, time.Minute)
			t.Cleanup(ft.CloseIdleConnections)
			_, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/")
			if (err == nil) != (wantErr == nil) || body != wantBody {
				t.Fatalf("fast path: %v %q; http.Transport: %v %q", err, body, wantErr, wantBody)
			}
			if c.later != "" {
				time.Sleep(300 * time.Millisecond) // the late bytes are there before the next request
			}
			_, body, err = fastGet(t, ft, "GET", "http://"+up.addr+"/")
			if err != nil || body != "second" {
				t.Fatalf("the next request got %v %q, want its own answer", err, body)
			}
		})
	}
}

// Issue 15: a body closed before its end closes its connection (its rest
// would be read as the next answer); the next request dials anew.
func TestFastPathBodyNotReadToTheEnd(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 256<<10)
	up := newRawUpstream(t, func(n int64, _ *http.Request, _ net.Conn) (string, bool) {
		if n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, false
		}
		return okAnswer, false
	})
	ft := newFastForTest(up.addr, 4, time.Minute)
	req, _ := http.NewRequest("GET", "http://"+up.addr+"/", nil)
	resp, err := ft.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err != nil || body != "ok" {
		t.Fatalf("%v %q", err, body)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// Issue 15: informational answers reach the request's client trace (the
// reverse proxy passes them on) and the final answer follows; a 101
// nobody asked for is an error.
func TestFastPathInformational(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, func(_ int64, r *http.Request, _ net.Conn) (string, bool) {
		if r.URL.Path == "/101" {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true
		}
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + okAnswer, false
	})
	ft := newFastForTest(up.addr, 4, time.Minute)
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, strconv.Itoa(code)+" "+h.Get("Link"))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+up.addr+"/", nil)
	resp, err := ft.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" || strings.Join(got, ",") != "103 </a.css>; rel=preload,100 " {
		t.Fatalf("%d %q, 1xx seen %q", resp.StatusCode, b, got)
	}
	if _, _, err := fastGet(t, ft, "GET", "http://"+up.addr+"/101"); err == nil {
		t.Fatal("an unasked 101 was taken for an answer")
	}
}

// Issue 15: a pooled connection that the upstream closed while it was
// idle, or closes as the request arrives, costs nothing: the request is
// sent on a new connection. A new connection that fails is not retried,
// and an answer cut off mid-body is an error for the reader.
func TestFastPathUpstreamCloses(t *testing.T) {
	t.Parallel()
	t.Run("while idle", func(t *testing.T) {
		t.Parallel()
		up := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) { return okAnswer, true })
		ft := newFastForTest(up.addr, 4, time.Minute)
		for i := range 3 {
			if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err != nil || body != "ok" {
				t.Fatalf("request %d: %v %q", i, err, body)
			}
			waittest.For(t, "the upstream to close", func() bool { return up.open.Load() == 0 })
		}
	})
	t.Run("as the request arrives", func(t *testing.T) {
		t.Parallel()
		var first sync.Map // connections that answered once
		up := newRawUpstream(t, func(_ int64, _ *http.Request, c net.Conn) (string, bool) {
			if _, again := first.LoadOrStore(c, true); again {
				return "", true // read the request, answer nothing, close
			}
			return okAnswer, false
		})
		ft := newFastForTest(up.addr, 4, time.Minute)
		for i := range 3 {
			if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err != nil || body != "ok" {
				t.Fatalf("request %d: %v %q", i, err, body)
			}
		}
		if up.conns.Load() != 3 {
			t.Fatalf("%d connections, want 3", up.conns.Load())
		}
	})
	t.Run("a new connection is not retried", func(t *testing.T) {
		t.Parallel()
		up := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) { return "", true })
		ft := newFastForTest(up.addr, 4, time.Minute)
		if _, _, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err == nil {
			t.Fatal("no answer, no error")
		}
		if n := up.reqs.Load(); n != 1 {
			t.Fatalf("the upstream saw %d requests, want 1", n)
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		t.Parallel()
		up := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) {
			return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", true
		})
		ft := newFastForTest(up.addr, 4, time.Minute)
		if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); !errors.Is(err, io.ErrUnexpectedEOF) || body != "half" {
			t.Fatalf("%v %q, want the unexpected EOF", err, body)
		}
	})
}

// Issue 15: every call has a bound: the response header timeout, and the
// caller's context, before the header and while the body is read.
func TestFastPathTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, func(_ int64, r *http.Request, c net.Conn) (string, bool) {
		if r.URL.Path == "/body" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
		}
		time.Sleep(3 * time.Second) // never answers in time
		return "", true
	})
	ft := newFastForTest(up.addr, 4, 100*time.Millisecond)
	_, _, err := fastGet(t, ft, "GET", "http://"+up.addr+"/")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || upstreamStatus(err) != http.StatusGatewayTimeout {
		t.Fatalf("header timeout: %v", err)
	}

	ft = newFastForTest(up.addr, 4, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+up.addr+"/", nil)
	if _, err := ft.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel before the header: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://"+up.addr+"/body", nil)
	resp, err := ft.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("cancel mid-body: the read did not end")
	}
	if n := len(ft.idle); n != 0 {
		t.Fatalf("%d connections pooled after a cancel", n)
	}
}

// Issue 15: a flood opens as many connections as it needs, and no more
// than max_idle_conns stay once it is over; CloseIdleConnections empties
// the pool.
func TestFastPathPoolBounds(t *testing.T) {
	t.Parallel()
	var gate sync.WaitGroup
	gate.Add(1)
	up := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) {
		gate.Wait()
		return okAnswer, false
	})
	ft := newFastForTest(up.addr, 3, time.Minute)
	const flood = 20
	var wg sync.WaitGroup
	errs := make(chan error, flood)
	for range flood {
		wg.Go(func() {
			if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err != nil || body != "ok" {
				errs <- errors.New("flood request: " + body)
			}
		})
	}
	waittest.For(t, "the flood to reach the upstream", func() bool { return up.reqs.Load() == flood })
	gate.Done()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(ft.idle); n != 3 {
		t.Fatalf("%d idle connections, want max_idle_conns (3)", n)
	}
	waittest.For(t, "the surplus connections to close", func() bool { return up.open.Load() == 3 })
	ft.CloseIdleConnections()
	waittest.For(t, "the pool to close", func() bool { return up.open.Load() == 0 })
}

// Issue 15: only bodiless reads to the plain-HTTP upstream take the fast
// path; the rest is http.Transport's.
func TestFastPathEligible(t *testing.T) {
	t.Parallel()
	ft := newFastForTest("127.0.0.1:1", 1, time.Minute)
	for _, c := range []struct {
		name string
		req  func() *http.Request
		want bool
	}{
		{"GET", func() *http.Request { r, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil); return r }, true},
		{"HEAD", func() *http.Request { r, _ := http.NewRequest("HEAD", "http://127.0.0.1:1/x", nil); return r }, true},
		{"POST", func() *http.Request { r, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", nil); return r }, false},
		{"GET with a body", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", strings.NewReader("b"))
			return r
		}, false},
		{"an upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil)
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			return r
		}, false},
		{"Expect", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil)
			r.Header.Set("Expect", "100-continue")
			return r
		}, false},
		{"https", func() *http.Request { r, _ := http.NewRequest("GET", "https://127.0.0.1:1/x", nil); return r }, false},
		{"another host", func() *http.Request { r, _ := http.NewRequest("GET", "http://127.0.0.1:2/x", nil); return r }, false},
	} {
		if got := ft.fastEligible(c.req()); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if ft := newFastForTest("example.com", 1, time.Minute); ft.addr != "example.com:80" {
		t.Errorf("default port: %q", ft.addr)
	}
}

// Issue 15: through the gateway, a doubtful answer on the fast path is a
// 502 that counts against the upstream's breaker, and the breaker opens
// as it does on http.Transport.
func TestFastPathGatewayBreaker(t *testing.T) {
	t.Parallel()
	bad := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false
	})
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}"}
  svc: {url: "http://`+bad.addr+`", breaker: {failures: 2, open_for: 1m}}
routes:
  - {name: svc, match: {prefix: /svc}, to: svc, fallback: {disabled: true}}
`)
	if fx.gw.table.Load().upstreams["svc"].fast == nil {
		t.Fatal("a plain-HTTP upstream has no fast path")
	}
	for i, want := range []int{502, 502, 503} {
		if resp, _ := fx.do(t, "GET", "/svc/x", nil); resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	if n := bad.reqs.Load(); n != 2 {
		t.Fatalf("the upstream saw %d requests, want 2 (then the breaker opened)", n)
	}
}

// Issue 15 (outside test): an upstream that sends an endless response
// header is cut off at the same limit as http.Transport's (its
// MaxResponseHeaderBytes, 10 MiB by default): the fast path read it all
// into memory (646 MB of RSS in 2 s from one request), and a header
// that does end, past the limit, was accepted.
func TestFastPathResponseHeaderLimit(t *testing.T) {
	t.Parallel()
	line := "X-Big: " + strings.Repeat("a", 8000) + "\r\n"
	up := newRawUpstream(t, func(n int64, r *http.Request, c net.Conn) (string, bool) {
		if r.URL.Path == "/ok" {
			return okAnswer, false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		for range (12 << 20) / len(line) { // 12 MiB of header lines
			if _, err := io.WriteString(c, line); err != nil {
				return "", true
			}
		}
		return "Content-Length: 2\r\n\r\nok", false
	})
	slow := &http.Transport{Proxy: nil, DisableCompression: true, MaxResponseHeaderBytes: 1 << 20}
	d := &net.Dialer{Timeout: 5 * time.Second}
	ft := newFastTransport(slow, up.addr, d.DialContext, 4, time.Minute, time.Minute)
	for _, rt := range []http.RoundTripper{slow, ft} {
		_, _, err := fastGet(t, rt, "GET", "http://"+up.addr+"/big")
		if err == nil || !strings.Contains(err.Error(), "exceeded") || upstreamStatus(err) != http.StatusBadGateway {
			t.Fatalf("%T: a header over the limit: %v, want refused", rt, err)
		}
	}
	// The default limit is http.Transport's: 10 MiB.
	ft = newFastForTest(up.addr, 4, time.Minute)
	if _, _, err := fastGet(t, ft, "GET", "http://"+up.addr+"/big"); err == nil || !strings.Contains(err.Error(), "exceeded 10485760 bytes") {
		t.Fatalf("a 12 MiB header: %v, want refused at 10 MiB", err)
	}
	// The limit is the header's: a pooled connection serves the next
	// answers whole.
	for range 2 {
		if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/ok"); err != nil || body != "ok" {
			t.Fatalf("after the limit: %v %q", err, body)
		}
	}
}

// Issue 15 (outside test): a header timeout on a pooled connection is the
// upstream's silence, not a connection it closed while idle: the request
// is not sent again. It was, on a new connection and then on every
// other pooled one, each after a whole response_header timeout: a hung
// upstream saw each request up to max_idle_conns+1 times and the client
// waited as many timeouts (3 requests and 6 s for a 2 s timeout on the
// binary).
func TestFastPathHeaderTimeoutNotRetried(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newRawUpstream(t, func(n int64, r *http.Request, c net.Conn) (string, bool) {
		if r.URL.Path == "/ok" {
			return okAnswer, false
		}
		<-release // hangs until the test ends
		return "", true
	})
	t.Cleanup(func() { close(release) }) // before the upstream's cleanup waits
	ft := newFastForTest(up.addr, 4, 100*time.Millisecond)
	fillPool(t, ft, "http://"+up.addr+"/ok", 3)
	_, _, err := fastGet(t, ft, "GET", "http://"+up.addr+"/hang")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a hung upstream: %v, want a timeout", err)
	}
	if n := up.reqs.Load(); n != 4 {
		t.Fatalf("the upstream saw %d requests, want 4 (3 answered, the hung one once)", n)
	}
}

// Issue 15 (outside test): a pooled connection idle longer than the
// upstream's idle timeout is closed then, as http.Transport closes its
// own, not kept until a request happens to take it: after a burst, up to
// max_idle_conns sockets stayed open on the upstream for good (a worker
// each on a thread-per-connection server). A request after that dials
// anew and gets its answer.
func TestFastPathIdleTimeoutCloses(t *testing.T) {
	t.Parallel()
	// An upstream that keeps a connection as long as its peer does (no
	// idle timeout of its own), and counts those the peer closed.
	up := newRawUpstream(t, func(int64, *http.Request, net.Conn) (string, bool) { return okAnswer, false })
	d := &net.Dialer{Timeout: 5 * time.Second}
	ft := newFastTransport(&http.Transport{Proxy: nil, DisableCompression: true}, up.addr, d.DialContext, 4, 50*time.Millisecond, time.Minute)
	fillPool(t, ft, "http://"+up.addr+"/", 3)
	waittest.For(t, "the idle connections to close", func() bool { return up.peerClosed.Load() == 3 })
	if _, body, err := fastGet(t, ft, "GET", "http://"+up.addr+"/"); err != nil || body != "ok" {
		t.Fatalf("after the idle timeout: %v %q", err, body)
	}
	if n := up.conns.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

// fillPool leaves n connections in ft's pool: n requests to url held open
// at once, then their bodies read and closed.
func fillPool(t *testing.T, ft *fastTransport, url string, n int) {
	t.Helper()
	var resps []*http.Response
	for range n {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := ft.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, resp := range resps {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if got := len(ft.idle); got != n {
		t.Fatalf("%d pooled connections, want %d", got, n)
	}
}
