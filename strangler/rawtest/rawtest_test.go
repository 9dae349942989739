package rawtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/rawtest"
)

func TestGetSendsTheTargetAsWritten(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI+" "+r.Host+" "+r.Header.Get("X-A"))
	}))
	t.Cleanup(srv.Close)
	resp, body := rawtest.Get(t, strings.TrimPrefix(srv.URL, "http://"), "shop.example.com", "/x/..;/a%2e/b", "X-A: 1")
	if resp.StatusCode != 200 || string(body) != "/x/..;/a%2e/b shop.example.com 1" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestExchangeHalfClosed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	raw := "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"
	if resp, _ := rawtest.Exchange(t, strings.TrimPrefix(srv.URL, "http://"), raw, true); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body cut short: %d, want 400", resp.StatusCode)
	}
}
