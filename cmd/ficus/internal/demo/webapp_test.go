package demo

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The web app refuses what does not come through a session route, and
// reads page views from attributes defensively.
func TestWebAppRefuses(t *testing.T) {
	t.Parallel()
	app := WebApp("http://127.0.0.1:1")
	tests := []struct {
		name       string
		method     string
		level      string
		wantStatus int
	}{
		{"no session headers", http.MethodGet, "", http.StatusServiceUnavailable},
		{"a POST", http.MethodPost, "anonymous", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, WebAppPath, nil)
			if tt.level != "" {
				req.Header.Set(hdrLevel, tt.level)
			}
			rec := httptest.NewRecorder()
			app.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || rec.Header().Get(hdrUpdate) != "" {
				t.Fatalf("got %d (update %q), want %d", rec.Code, rec.Header().Get(hdrUpdate), tt.wantStatus)
			}
		})
	}
	for attrs, want := range map[string]int{"": 0, "garbage": 0, `{"visits":"7"}`: 7, `{"visits":"-3"}`: 0, `{"visits":"x"}`: 0} {
		if got := visits(attrs); got != want {
			t.Errorf("visits(%q) = %d, want %d", attrs, got, want)
		}
	}
}
