package adapters_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/adapters"
)

// Issue 9: the admin API answers errors with a safe message; the cause
// (here the database's) is logged, never sent.
func TestAdminAPIErrorsSendNoRawError(t *testing.T) {
	t.Parallel()
	pool, st := newInbox(t)
	var logs bytes.Buffer // read once the server is closed
	mux := http.NewServeMux()
	adapters.AdminRoutes(mux, st, slog.New(slog.NewJSONHandler(&logs, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/admin/webhooks/stripe/nope", 404, `{"error":"not found"}`},
		{"POST", "/admin/webhooks/stripe/nope/replay", 404, `{"error":"not found"}`},
		{"POST", "/admin/webhooks/purge?older_than=10m", 400, `{"error":"older_than must be a duration of at least 1h"}`},
		{"POST", "/admin/webhooks/purge?older_than=soon", 400, `{"error":"older_than must be a duration of at least 1h"}`},
		{"GET", "/admin/webhooks", 200, `[]`},
	} {
		if code, body := do(tc.method, tc.path); code != tc.wantStatus || body != tc.wantBody {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, code, body, tc.wantStatus, tc.wantBody)
		}
	}
	pool.Close() // every query fails from now on
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/stripe/evt_1"} {
		code, body := do("GET", path)
		if code != 500 || body != `{"error":"internal error"}` {
			t.Errorf("GET %s on a closed pool: %d %s", path, code, body)
		}
	}
	if code, body := do("POST", "/admin/webhooks/purge?older_than=48h"); code != 500 || body != `{"error":"internal error"}` {
		t.Errorf("purge on a closed pool: %d %s", code, body)
	}
	srv.Close() // waits for the handlers: their log lines are written
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "closed pool") {
		t.Errorf("the cause is not logged:\n%s", logs.String())
	}
}
