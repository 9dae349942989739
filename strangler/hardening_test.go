package strangler

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/rawtest"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// exchangeBound bounds every raw exchange and streaming wait below, so that
// a proxy that hangs fails the test instead of stalling it. It is a safety
// net, never the condition a test asserts.
const exchangeBound = rawtest.Bound

// chunkedBody encodes n bytes as chunks of 1 KiB.
func chunkedBody(n int) string {
	var b strings.Builder
	chunk := strings.Repeat("a", 1024)
	for ; n > 0; n -= 1024 {
		c := chunk[:min(n, 1024)]
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// Issue 8 item 1: client faults — a malformed chunked body, a chunked body
// over the limit, a client gone mid-body — are answered 400 / 413 / 499 and
// never count against an upstream, even one whose breaker is on; other
// paths keep answering.
func TestClientFaultsNeverOpenABreaker(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}", breaker: {disabled: false, failures: 2}}
  orders: {url: "{{.Orders}}", breaker: {failures: 2}}
routes:
  - {name: o, match: {prefix: /o}, to: orders}
`, func(o *Options) { o.MaxRequestBody = 1024 })
	addr := fx.srv.Listener.Addr().String()
	faults := []struct {
		name      string
		rest      string // headers after Host, and the body
		halfClose bool
		want      int
	}{
		{"malformed chunk size", "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", false, http.StatusBadRequest},
		{"chunk size overflow", "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n", false, http.StatusBadRequest},
		{"chunked body over the limit", "Transfer-Encoding: chunked\r\n\r\n" + chunkedBody(4096), false, http.StatusRequestEntityTooLarge},
		{"gone mid-body (length)", "Content-Length: 100\r\n\r\n0123456789", true, 499},
		{"gone mid-body (chunked)", "Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n", true, 499},
	}
	for _, path := range []string{"/post", "/o/upload"} {
		for _, f := range faults {
			t.Run(path+"/"+f.name, func(t *testing.T) {
				for i := 0; i < 4; i++ { // twice the breakers' failures
					raw := "POST " + path + " HTTP/1.1\r\nHost: shop.example\r\n" + f.rest
					if resp, _ := rawtest.Exchange(t, addr, raw, f.halfClose); resp.StatusCode != f.want {
						t.Fatalf("attempt %d: status %d, want %d", i, resp.StatusCode, f.want)
					}
				}
			})
		}
	}
	for _, up := range []string{"legacy", "orders"} {
		if v := counterValue(t, fx.reg, "ficus_upstream_breaker_state", map[string]string{"upstream": up}); v != 0 {
			t.Errorf("breaker of %s = %v after client faults, want 0 (closed)", up, v)
		}
	}
	if resp, b := fx.do(t, "GET", "/get", nil); resp.StatusCode != 200 {
		t.Errorf("monolith path after client faults: %d %s", resp.StatusCode, b)
	}
	if resp, b := fx.do(t, "GET", "/o/1", nil); resp.StatusCode != 200 {
		t.Errorf("new-service path after client faults: %d %s", resp.StatusCode, b)
	}
}

// Issue 8 item 1: a client that vanishes (connection closed) mid-body is
// not the upstream's fault either.
func TestClientGoneMidBodyIsNotAnUpstreamFailure(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, `version: 1
monolith: legacy
upstreams:
  legacy: {url: "{{.Monolith}}", breaker: {disabled: false, failures: 1}}
`)
	addr := fx.srv.Listener.Addr().String()
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "PUT /put HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
		conn.Close()
	}
	// Wait for ficus to finish the three requests, then look at the breaker.
	if !waittest.Until(exchangeBound, func() bool {
		return counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": unmatchedRoute}) >= 3
	}) {
		t.Fatal("the aborted requests were never accounted")
	}
	if v := counterValue(t, fx.reg, "ficus_upstream_breaker_state", map[string]string{"upstream": "legacy"}); v != 0 {
		t.Fatalf("breaker = %v after clients left mid-body, want 0", v)
	}
	if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": unmatchedRoute, "code": "5xx"}); v != 0 {
		t.Fatalf("%v requests counted as 5xx, want 0 (client gone)", v)
	}
	if resp, _ := fx.do(t, "GET", "/get", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// Issue 8 item 1: the monolith has nothing to fall back to, so a breaker on
// it can only turn some failing paths into every path failing. It has none
// unless the rule file turns one on.
func TestMonolithBreakerIsOffByDefault(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules)
	for i := 0; i < 2*DefaultBreakerFailures; i++ {
		resp, b := fx.do(t, "GET", "/status/503", nil)
		if resp.StatusCode != 503 || bytes.Contains(b, []byte("ficus")) {
			t.Fatalf("the monolith's own 503 expected: %d %s", resp.StatusCode, b)
		}
	}
	if resp, b := fx.do(t, "GET", "/get", nil); resp.StatusCode != 200 {
		t.Fatalf("one failing monolith path took the others down: %d %s", resp.StatusCode, b)
	}

	t.Run("turned on, upstream faults open it", func(t *testing.T) {
		fx.load(t, strings.Replace(baseRules, `legacy: {url: "{{.Monolith}}"}`,
			`legacy: {url: "{{.Monolith}}", breaker: {disabled: false, failures: 2, open_for: 1m}}`, 1))
		for i := 0; i < 2; i++ {
			fx.do(t, "GET", "/status/502", nil)
		}
		if resp, b := fx.do(t, "GET", "/get", nil); resp.StatusCode != 503 || !bytes.Contains(b, []byte("ficus")) {
			t.Fatalf("with the breaker on and open: %d %s", resp.StatusCode, b)
		}
	})
}

// tokenSwap stands for the auth stage: it admits any Bearer token and gives
// new upstreams "Bearer jwt-for-<audience>".
type tokenSwap struct{}

type swapGrant struct{}

func (swapGrant) Claim(string) string { return "" }

func (swapGrant) Credential(_ context.Context, audience string) (http.Header, error) {
	return http.Header{"Authorization": {"Bearer jwt-for-" + audience}}, nil
}

func (tokenSwap) Authorize(w http.ResponseWriter, r *http.Request, _ *routes.Route) (Grant, bool) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, "no token", http.StatusUnauthorized)
		return nil, false
	}
	return swapGrant{}, true
}

// Issue 8 items 2 and 4: a request that falls back is a second attempt
// built from the client's request, so the monolith receives exactly the
// client's Authorization (never the new service's JWT) and its body.
func TestFallbackSendsTheClientsRequest(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`  - {name: down-auth, match: {prefix: /anything/down}, to: down, auth: {policy: oauth2}, fallback: {non_idempotent: true}}
`, func(o *Options) { o.Auth = tokenSwap{} })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				tok := fmt.Sprintf("Bearer client-token-%d-%d", i, j)
				body := fmt.Sprintf("payload-%d-%d", i, j)
				req, _ := http.NewRequest("POST", fx.srv.URL+"/anything/down/x", strings.NewReader(body))
				req.Header.Set("Authorization", tok)
				req.Header.Set("Content-Type", "text/plain")
				resp, err := noRedirect.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var echo struct {
					Headers http.Header `json:"headers"`
					Data    string      `json:"data"`
				}
				_ = json.Unmarshal(b, &echo)
				if resp.StatusCode != 200 || strings.Join(echo.Headers["Authorization"], "|") != tok || echo.Data != body {
					errs <- fmt.Errorf("status %d, the monolith saw Authorization %q (client sent %q) and body %q (sent %q)",
						resp.StatusCode, echo.Headers["Authorization"], tok, echo.Data, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := counterValue(t, fx.reg, "ficus_fallbacks_total", map[string]string{"route": "down-auth"}); v != 32 {
		t.Errorf("fallbacks = %v, want 32", v)
	}
}

// Issue 8 items 3 and 4: the monolith answers a fallen-back request before
// reading its body, so the transport is still reading the client's body
// when the answer is done; nothing it reads may have been handed to
// another request (run with -race).
func TestFallbackBodyOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	answered := make(chan struct{}, 1)
	early := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex() // answer without draining the body first
		w.Header().Set("Content-Length", "2")
		w.Header().Set("Connection", "close") // the body is left unread: no reuse
		_, _ = io.WriteString(w, "ok")
		_ = rc.Flush()
		if r.Method == "PUT" {
			answered <- struct{}{}
		}
	}))
	fx := newTestGateway(t, strings.Replace(baseRules, `legacy: {url: "{{.Monolith}}"}`, `legacy: {url: "`+early.URL+`"}`, 1)+
		`  - {name: down-early, match: {prefix: /early}, to: down, fallback: {non_idempotent: true}}
`)
	for i := 0; i < 3; i++ {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), exchangeBound)
		defer cancel()
		context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
		req, _ := http.NewRequestWithContext(ctx, "PUT", fx.srv.URL+"/early", pr)
		done := make(chan error, 1)
		go func() {
			resp, err := noRedirect.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					err = fmt.Errorf("status %d %q", resp.StatusCode, b)
				}
			}
			done <- err
		}()
		if _, err := io.WriteString(pw, "first part of the body"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-answered: // while the transport waits for the rest of the body
		case <-ctx.Done():
			t.Fatalf("request %d: the monolith never answered", i)
		}
		fx.do(t, "GET", "/other", nil) // another request meanwhile
		_, _ = io.WriteString(pw, "the rest, read after the monolith answered")
		pw.Close()
		if err := <-done; err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// Issue 8 item 6: hop-by-hop removal never removes what ficus sets, and the
// request id comes back on every answer.
func TestRequestIDSurvivesHopByHopAndIsReturned(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`  - {name: pay, match: {prefix: /pay}, to: payments}
  - {name: guarded, match: {prefix: /guarded}, to: legacy, auth: {policy: oauth2}}
`)

	t.Run("Connection: X-Request-Id", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/headers", nil, "X-Request-Id", "abc-123", "Connection", "X-Request-Id, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto")
		h := httpbinHeaders(t, b)
		if h.Get("X-Request-Id") != "abc-123" {
			t.Errorf("upstream X-Request-Id = %q, want the client's abc-123", h.Get("X-Request-Id"))
		}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if h.Get(k) == "" {
				t.Errorf("%s, set by ficus, was removed as hop-by-hop", k)
			}
		}
		if resp.Header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("answer X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
		}
	})
	t.Run("generated id, returned", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/headers", nil, "X-Request-Id", "not valid!")
		sent := httpbinHeaders(t, b).Get("X-Request-Id")
		if !validRequestID(sent) || sent == "not valid!" {
			t.Fatalf("upstream X-Request-Id = %q", sent)
		}
		if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != sent {
			t.Fatalf("answer X-Request-Id = %q, want [%q]", got, sent)
		}
	})
	t.Run("the upstream's own id does not replace ficus's", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/response-headers?X-Request-Id=from-upstream", nil, "X-Request-Id", "req-7")
		if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "req-7" {
			t.Fatalf("answer X-Request-Id = %q, want [req-7]", got)
		}
	})
	t.Run("answers ficus writes itself", func(t *testing.T) {
		for _, c := range []struct {
			path string
			want int
		}{{"/guarded/x", 401}, {"/a%2fb", 400}} {
			resp, _ := fx.do(t, "GET", c.path, nil, "X-Request-Id", "req-8")
			if resp.StatusCode != c.want || resp.Header.Get("X-Request-Id") != "req-8" {
				t.Errorf("%s: status %d, X-Request-Id %q", c.path, resp.StatusCode, resp.Header.Get("X-Request-Id"))
			}
		}
	})
	t.Run("new service", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/pay/x", nil, "Connection", "X-Request-Id", "X-Request-Id", "req-9")
		s := decodeSeen(t, b)
		if s.Header.Get("X-Request-Id") != "req-9" || resp.Header.Get("X-Request-Id") != "req-9" {
			t.Fatalf("service saw %q, answer has %q", s.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
		}
	})
}

// forgeable are forwarding headers that ficus does not set and that some
// frameworks trust for the client address, scheme, port or path.
var forgeable = []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Real-Ip", "X-Original-Url", "X-Rewrite-Url", "Forwarded", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Client-Ip", "True-Client-Ip",
	// Found by the issue-8 attack run: frameworks read these too (Rails and
	// CodeIgniter the client address from Client-IP; gunicorn's default
	// secure_scheme_headers X-Forwarded-Protocol; CodeIgniter's is_https
	// Front-End-Https).
	"Client-Ip", "X-Forwarded-Protocol", "Front-End-Https"}

// Issue 8 item 7: at the edge, clients' copies of the other forwarding
// headers are removed; behind a trusted proxy they are kept, except the
// path overrides (X-Original-URL, X-Rewrite-URL), which would let an
// upstream serve a path other than the one ficus matched.
func TestEdgeStripsForgeableForwardingHeaders(t *testing.T) {
	t.Parallel()
	var hdr []string
	for _, k := range forgeable {
		hdr = append(hdr, k, "forged")
	}
	t.Run("edge", func(t *testing.T) {
		fx := newTestGateway(t, baseRules)
		_, b := fx.do(t, "GET", "/headers", nil, hdr...)
		h := httpbinHeaders(t, b)
		for _, k := range forgeable {
			if v := h.Get(k); v != "" {
				t.Errorf("%s: %q reached the upstream", k, v)
			}
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		fx := newTestGateway(t, baseRules, func(o *Options) {
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		_, b := fx.do(t, "GET", "/headers", nil, hdr...)
		h := httpbinHeaders(t, b)
		for _, k := range forgeable {
			override := k == "X-Original-Url" || k == "X-Rewrite-Url"
			if got := h.Get(k); override && got != "" || !override && k != "Forwarded" && got != "forged" {
				t.Errorf("%s = %q from a trusted proxy", k, got)
			}
		}
	})
}

// stallingUpstream answers with headers and the first bytes, then stalls
// until the test ends.
func stallingUpstream(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "1000")
		case "/silent": // headers, and then nothing at all
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			<-stop
			return
		}
		_, _ = io.WriteString(w, "first bytes")
		http.NewResponseController(w).Flush()
		<-stop
	}))
	t.Cleanup(func() { close(stop) }) // runs before the server closes
	return srv.URL
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// Issue 8 item 8: an upstream that sends headers and then stalls does not
// hold the client forever: after timeouts.body_idle the client's response
// ends as incomplete (no terminating chunk, fewer bytes than announced).
func TestStalledUpstreamBodyEndsTheResponse(t *testing.T) {
	t.Parallel()
	up := stallingUpstream(t)
	fx := newTestGateway(t, strings.Replace(baseRules, `legacy: {url: "{{.Monolith}}"}`,
		`legacy: {url: "`+up+`", timeouts: {body_idle: 200ms}}`, 1))
	for _, path := range []string{"/length", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), exchangeBound)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read %q, error %v; want the response cut off (unexpected EOF)", b, err)
			}
			if string(b) != "first bytes" {
				t.Fatalf("got %q before the cut", b)
			}
		})
	}
	t.Run("/silent", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), exchangeBound)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+"/silent", nil)
		resp, err := noRedirect.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v; want the exchange cut off", err)
		}
	})
}

// Issue 8 item 9: what the monolith produces slowly reaches the client as
// it is produced — with a Content-Length (progress output), chunked, and
// as headers before a late body (long polling). The upstream cannot finish
// until the client has seen the first bytes, so a proxy that buffers fails.
func TestSlowResponsesStreamAsProduced(t *testing.T) {
	t.Parallel()
	type step struct{ seen chan struct{} }
	var mu sync.Mutex
	steps := map[string]*step{}
	stepOf := func(id string) *step {
		mu.Lock()
		defer mu.Unlock()
		if steps[id] == nil {
			steps[id] = &step{seen: make(chan struct{})}
		}
		return steps[id]
	}
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := stepOf(r.URL.Query().Get("id"))
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/progress": // 3 lines of 10 bytes, announced
			w.Header().Set("Content-Length", "30")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "step %03d\r\n", i)
				_ = rc.Flush()
				if i == 0 {
					<-s.seen
				}
			}
		case "/chunked":
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "step %03d\r\n", i)
				_ = rc.Flush()
				if i == 0 {
					<-s.seen
				}
			}
		case "/longpoll": // headers at once (no length: a stream), the answer later
			w.WriteHeader(200)
			_ = rc.Flush()
			<-s.seen
			_, _ = io.WriteString(w, "event")
		}
	}))
	fx := newTestGateway(t, strings.Replace(baseRules, `legacy: {url: "{{.Monolith}}"}`, `legacy: {url: "`+up.URL+`"}`, 1))
	for i, path := range []string{"/progress", "/chunked", "/longpoll"} {
		t.Run(path, func(t *testing.T) {
			id := strconv.Itoa(i)
			s := stepOf(id)
			release := sync.OnceFunc(func() { close(s.seen) })
			defer release() // a failing test must not leave the upstream waiting
			ctx, cancel := context.WithTimeout(context.Background(), exchangeBound)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+path+"?id="+id, nil)
			resp, err := noRedirect.Do(req) // returns once the headers are here
			if err != nil {
				t.Fatalf("headers held back: %v", err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if path != "/longpoll" {
				line, err := br.ReadString('\n')
				if err != nil || line != "step 000\r\n" {
					t.Fatalf("first line %q, %v: held back", line, err)
				}
			}
			release() // now the upstream may finish
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if path == "/longpoll" && string(rest) != "event" || path != "/longpoll" && string(rest) != "step 001\r\nstep 002\r\n" {
				t.Fatalf("rest %q", rest)
			}
		})
	}
}
