package ops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/ops"
)

// Issue 9: the admin API never sends a raw error; the cause is logged.
func TestWriteErrorSendsOnlyTheSafeMessage(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp 10.1.2.3:5432: password authentication failed for user ficus")
	for _, tc := range []struct {
		name       string
		given      error
		wantStatus int
		wantBody   string
		wantLog    string
	}{
		{"plain error", cause, 500, `{"error":"internal error"}`, "level=ERROR"},
		{"wrapped plain error", fmt.Errorf("listing: %w", cause), 500, `{"error":"internal error"}`, "level=ERROR"},
		{"admin error", &ops.Error{Status: 404, Message: "not found", Cause: cause}, 404, `{"error":"not found"}`, "level=DEBUG"},
		{"wrapped admin error", fmt.Errorf("x: %w", &ops.Error{Status: 400, Message: "older_than must be a duration", Cause: cause}), 400,
			`{"error":"older_than must be a duration"}`, "level=DEBUG"},
		{"no message", &ops.Error{Status: 503, Cause: cause}, 503, `{"error":"Service Unavailable"}`, "level=ERROR"},
		{"no status", &ops.Error{Message: "broken", Cause: cause}, 500, `{"error":"broken"}`, "level=ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rec := httptest.NewRecorder()
			ops.WriteError(rec, httptest.NewRequest("GET", "/admin/x", nil), log, tc.given)
			body := strings.TrimSpace(rec.Body.String())
			if rec.Code != tc.wantStatus || body != tc.wantBody || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s %q, want %d %s", rec.Code, rec.Header().Get("Content-Type"), body, tc.wantStatus, tc.wantBody)
			}
			if strings.Contains(body, "password") || strings.Contains(body, "10.1.2.3") {
				t.Fatalf("the cause was sent: %s", body)
			}
			if !strings.Contains(logs.String(), "password authentication failed") || !strings.Contains(logs.String(), tc.wantLog) {
				t.Fatalf("the cause was not logged at %s: %s", tc.wantLog, logs.String())
			}
		})
	}
	rec := httptest.NewRecorder()
	ops.WriteError(rec, httptest.NewRequest("GET", "/", nil), nil, cause) // nil logger: nothing logged, nothing sent
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "password") {
		t.Fatalf("nil logger: %d %s", rec.Code, rec.Body.String())
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	var zero ops.Readiness
	if !zero.Ready() {
		t.Fatal("the zero Readiness is not ready")
	}
	down := errors.New("down")
	var storeErr error
	var gotDeadline bool
	r := &ops.Readiness{Checks: []func(context.Context) error{func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		gotDeadline = ok && time.Until(d) <= 50*time.Millisecond
		return storeErr
	}}, CheckTimeout: 50 * time.Millisecond}
	if !r.Ready() || !gotDeadline {
		t.Fatalf("ready with a passing check: %v, deadline within CheckTimeout: %v", r.Ready(), gotDeadline)
	}
	storeErr = down
	if r.Ready() {
		t.Fatal("ready with a failing check")
	}
	storeErr = nil
	r.Drain()
	if r.Ready() {
		t.Fatal("ready while draining")
	}
}
