package strangler

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const monolithOnly = baseRules + `  - {name: orders, match: {prefix: /api/orders}, to: orders}
`

// Everything on monolith routes passes through unchanged; only the
// forwarding headers and X-Request-Id are added.
func TestMonolithPassThrough(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, monolithOnly)

	t.Run("only forwarding headers are added", func(t *testing.T) {
		hdr := []string{"Authorization", "Basic dXNlcjpwYXNz", "Cookie", "session=abc; theme=dark", "X-Custom", "kept", "User-Agent", "legacy-client/1.0"}
		_, direct := doURL(t, "GET", fx.monolith.URL+"/headers", nil, hdr...)
		_, via := fx.do(t, "GET", "/headers", nil, hdr...)
		dh, vh := httpbinHeaders(t, direct), httpbinHeaders(t, via)
		for k, v := range dh {
			if k == "Host" {
				continue
			}
			if strings.Join(vh[k], ",") != strings.Join(v, ",") {
				t.Errorf("header %s: direct %q, via ficus %q", k, v, vh[k])
			}
		}
		for k := range vh {
			if _, ok := dh[k]; !ok && !map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "X-Request-Id": true}[k] {
				t.Errorf("ficus added header %s: %q", k, vh[k])
			}
		}
		if got := vh.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := vh.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q", got)
		}
		if got, want := vh.Get("X-Forwarded-Host"), strings.TrimPrefix(fx.srv.URL, "http://"); got != want {
			t.Errorf("X-Forwarded-Host = %q, want %q", got, want)
		}
		if !validRequestID(vh.Get("X-Request-Id")) {
			t.Errorf("X-Request-Id = %q", vh.Get("X-Request-Id"))
		}
	})

	t.Run("client forwarding headers replaced, request id kept", func(t *testing.T) {
		_, b := fx.do(t, "GET", "/headers", nil, "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example", "X-Request-Id", "abc-123", "X-Ficus-User", "admin")
		h := httpbinHeaders(t, b)
		if h.Get("X-Forwarded-For") != "127.0.0.1" || strings.Contains(h.Get("X-Forwarded-Host"), "evil") {
			t.Errorf("spoofed forwarding headers passed: %v", h)
		}
		if h.Get("X-Request-Id") != "abc-123" {
			t.Errorf("X-Request-Id = %q, want the client's", h.Get("X-Request-Id"))
		}
		if h.Get("X-Ficus-User") != "" {
			t.Error("client copy of an X-Ficus-* header reached the upstream")
		}
	})

	t.Run("hop-by-hop headers are dropped", func(t *testing.T) {
		_, b := fx.do(t, "GET", "/headers", nil, "Connection", "X-Secret-Hop", "X-Secret-Hop", "1", "Proxy-Authorization", "Basic eA==", "Keep-Alive", "timeout=5")
		h := httpbinHeaders(t, b)
		for _, k := range []string{"X-Secret-Hop", "Proxy-Authorization", "Keep-Alive"} {
			if h.Get(k) != "" {
				t.Errorf("hop-by-hop %s forwarded", k)
			}
		}
	})

	t.Run("host is preserved for the monolith", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/absolute-redirect/1", nil, "Host", "shop.example.com")
		if loc := resp.Header.Get("Location"); loc != "http://shop.example.com/get" {
			t.Errorf("Location = %q, want the public host", loc)
		}
	})

	t.Run("redirects and Location untouched", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/redirect-to?url=/somewhere%3Fx%3D1&status_code=307", nil)
		if resp.StatusCode != 307 || resp.Header.Get("Location") != "/somewhere?x=1" {
			t.Errorf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("Set-Cookie and Cookie", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/cookies/set?flavour=oat&n=1", nil)
		got := resp.Header.Values("Set-Cookie")
		sort.Strings(got)
		if len(got) != 2 || got[0] != "flavour=oat; Path=/; HttpOnly" || got[1] != "n=1; Path=/; HttpOnly" {
			t.Errorf("Set-Cookie = %q", got)
		}
		_, b := fx.do(t, "GET", "/cookies", nil, "Cookie", "a=1; b=2")
		if !strings.Contains(string(b), `"a": "1"`) && !strings.Contains(string(b), `"a":"1"`) {
			t.Errorf("cookies not seen: %s", b)
		}
	})

	t.Run("Authorization untouched", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/bearer", nil, "Authorization", "Bearer legacy-opaque-token")
		if resp.StatusCode != 200 || !strings.Contains(string(b), "legacy-opaque-token") {
			t.Errorf("bearer: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("gzip passes compressed, nothing added", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/gzip", nil, "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding = %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !json.Valid(plain) {
			t.Fatalf("not gzip of JSON: %q", plain)
		}
		_, hb := fx.do(t, "GET", "/headers", nil)
		if httpbinHeaders(t, hb).Get("Accept-Encoding") != "" {
			t.Error("ficus added Accept-Encoding")
		}
	})

	t.Run("chunked stream", func(t *testing.T) {
		resp, b := fx.do(t, "GET", "/stream/5", nil)
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("TransferEncoding = %v", resp.TransferEncoding)
		}
		if n := bytes.Count(b, []byte("\n")); n != 5 {
			t.Errorf("lines = %d, want 5", n)
		}
	})

	t.Run("server-sent events stream as they come", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// 2 events over 10s: the first arrives at once only if ficus
		// flushes instead of buffering the stream.
		req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+"/sse?count=2&duration=10s", nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("Content-Type = %q", ct)
		}
		first := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			first <- line
		}()
		select {
		case line := <-first:
			if !strings.HasPrefix(line, "id:") && !strings.HasPrefix(line, "event:") && !strings.HasPrefix(line, "data:") {
				t.Fatalf("first line %q", line)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("first event held back: the stream is buffered")
		}
	})

	t.Run("large upload streams intact", func(t *testing.T) {
		const size = 64 << 20
		h := sha256.New()
		body := io.TeeReader(io.LimitReader(rand.Reader, size), h)
		resp, b := fx.do(t, "POST", "/api/orders/upload", body, "Content-Type", "application/octet-stream")
		s := decodeSeen(t, b)
		if resp.StatusCode != 200 || s.BodySize != size || s.BodySHA != hex.EncodeToString(h.Sum(nil)) {
			t.Fatalf("upload: %d, size %d, sha %s", resp.StatusCode, s.BodySize, s.BodySHA)
		}
		resp, _ = fx.do(t, "POST", "/upload", io.LimitReader(rand.Reader, size))
		if resp.StatusCode != 200 {
			t.Fatalf("monolith upload: %d", resp.StatusCode)
		}
	})

	t.Run("Expect 100-continue", func(t *testing.T) {
		got100 := false
		trace := &httptrace.ClientTrace{Got100Continue: func() { got100 = true }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", fx.srv.URL+"/post", strings.NewReader("hello=world"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Expect", "100-continue")
		c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !got100 {
			t.Error("no 100 Continue reached the client")
		}
		if resp.StatusCode != 200 || !strings.Contains(string(b), "world") {
			t.Errorf("post: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("websocket upgrade", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(fx.srv.URL, "http")+"/websocket/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("ping through ficus")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "ping through ficus" {
			t.Fatalf("echo = %q, %v", msg, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("unmatched goes to the monolith, counted", func(t *testing.T) {
		resp, _ := fx.do(t, "GET", "/status/418", nil)
		if resp.StatusCode != 418 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
		if v := counterValue(t, fx.reg, "ficus_requests_total", map[string]string{"route": unmatchedRoute, "side": "legacy", "code": "4xx"}); v < 1 {
			t.Errorf("ficus_requests_total 4xx = %v", v)
		}
	})
}

func TestNewServiceRewrites(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+`  - name: shop
    match: {prefix: /shop}
    to: orders
    rewrite: {strip_prefix: /shop, add_prefix: /v2}
`)
	internal := strings.TrimPrefix(fx.orders.URL, "http://")
	q := url.Values{
		"location":  {"http://" + internal + "/v2/cart?x=1"},
		"setcookie": {"sid=1; Domain=" + strings.Split(internal, ":")[0] + "; Path=/v2; HttpOnly", "other=2; Domain=partner.example; Path=/elsewhere"},
	}
	resp, b := fx.do(t, "GET", "/shop/items/7?"+q.Encode(), nil, "Host", "shop.example.com")
	s := decodeSeen(t, b)
	if s.Path != "/v2/items/7" {
		t.Errorf("upstream path = %q, want /v2/items/7", s.Path)
	}
	if s.Host != internal {
		t.Errorf("upstream Host = %q, want its own %q (preserve_host is off for new upstreams)", s.Host, internal)
	}
	if loc := resp.Header.Get("Location"); loc != "http://shop.example.com/shop/cart?x=1" {
		t.Errorf("Location = %q", loc)
	}
	cookies := resp.Header.Values("Set-Cookie")
	if len(cookies) != 2 || cookies[0] != "sid=1; Path=/shop; HttpOnly" || !strings.Contains(cookies[1], "Domain=partner.example") {
		t.Errorf("Set-Cookie = %q", cookies)
	}
}
