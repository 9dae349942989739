package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/auth"
)

// issuerFunc is an Issuer whose look-ups all answer with err.
type issuerFunc struct{ err error }

func (f issuerFunc) Resolve(context.Context, string) (*auth.Principal, error) { return nil, f.err }
func (f issuerFunc) Anonymous(context.Context, string) (*auth.Principal, error) {
	return nil, f.err
}
func (f issuerFunc) VerifyJWT(context.Context, string, string) (*auth.Principal, error) {
	return nil, f.err
}
func (f issuerFunc) Mint(context.Context, *auth.Principal, string) (string, time.Time, error) {
	return "", time.Time{}, f.err
}

// The stage's refusals are OAuth2 JSON errors (RFC 6749 5.2 form), never
// cached, with the RFC 6750 challenge on 401.
func TestRefusalsAreOAuth2JSON(t *testing.T) {
	t.Parallel()
	route := &routes.Route{Auth: &routes.Auth{Policy: "oauth2"}}
	tests := []struct {
		name       string
		issuerErr  error
		authz      string
		wantStatus int
		wantBody   map[string]string
		wantHeader map[string]string
	}{
		{"no token", auth.ErrInvalidToken, "", 401,
			map[string]string{"error": "unauthorized", "error_description": "authentication required"},
			map[string]string{"WWW-Authenticate": `Bearer realm="ficus"`}},
		{"not bearer", auth.ErrInvalidToken, "Basic eDp5", 401,
			map[string]string{"error": "invalid_request", "error_description": "a Bearer token is required"},
			map[string]string{"WWW-Authenticate": `Bearer realm="ficus", error="invalid_request", error_description="a Bearer token is required"`}},
		{"inactive token", auth.ErrInvalidToken, "Bearer ficus_at_x", 401,
			map[string]string{"error": "invalid_token", "error_description": "the token is not active"},
			map[string]string{"WWW-Authenticate": `Bearer realm="ficus", error="invalid_token", error_description="the token is not active"`}},
		{"IDP down", errors.New("connection refused"), "Bearer ficus_at_x", 503,
			map[string]string{"error": "temporarily_unavailable", "error_description": "the identity provider cannot be reached"},
			map[string]string{"Retry-After": "1", "WWW-Authenticate": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := auth.New(auth.Options{Issuer: issuerFunc{tt.issuerErr}})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			if _, ok := st.Authorize(rec, r, route); ok {
				t.Fatal("admitted")
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body) != len(tt.wantBody) {
				t.Fatalf("body %v, want %v", body, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if body[k] != v {
					t.Fatalf("body %v, want %v", body, tt.wantBody)
				}
			}
			h := rec.Header()
			if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("Content-Type %q, Cache-Control %q", h.Get("Content-Type"), h.Get("Cache-Control"))
			}
			for k, v := range tt.wantHeader {
				if h.Get(k) != v {
					t.Fatalf("%s: %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
}

// A route whose policy (session, bridge) has no stage registered is
// refused, never read as oauth2: a valid bearer token does not pass it.
func TestPolicyWithoutStageFailsClosed(t *testing.T) {
	t.Parallel()
	st, err := auth.New(auth.Options{Issuer: issuerFunc{nil}})
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"bridge", "session"} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r.Header.Set("Authorization", "Bearer ficus_at_x")
		if _, ok := st.Authorize(rec, r, &routes.Route{Name: "r", Auth: &routes.Auth{Policy: policy}}); ok || rec.Code != http.StatusUnauthorized {
			t.Fatalf("policy %s: admitted %v, status %d", policy, ok, rec.Code)
		}
	}
}
