package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 10: ficus serve wires the legacy session bridge: it refuses a
// bridge whose client the IDP does not know, and once the client exists
// a moved path gets a JWT for the monolith's user, counted in /metrics.
func TestServeBridge(t *testing.T) {
	t.Parallel()
	mono := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("JSESSIONID"); r.URL.Path == "/whoami" && err == nil && c.Value == "GOOD" {
			io.WriteString(w, `{"user": {"id": "42"}}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(mono.Close)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The service reports the JWT's subject (the auth tests verify
		// signatures; here the wiring is under test).
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		parts := strings.Split(tok, ".")
		var claims struct {
			Sub string `json:"sub"`
			Src string `json:"src"`
		}
		if len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			json.Unmarshal(payload, &claims)
		}
		fmt.Fprintf(w, "%s %s cookie=%q", claims.Sub, claims.Src, r.Header.Get("Cookie"))
	}))
	t.Cleanup(svc.Close)

	dir := t.TempDir()
	rf := filepath.Join(dir, "routes.yaml")
	os.WriteFile(rf, []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "`+mono.URL+`"}
  orders: {url: "`+svc.URL+`"}
bridges:
  web: {cookie: JSESSIONID, whoami: {path: /whoami}, client: web-bridge, mapping: {user_id: /user/id}}
routes:
  - {name: moved, match: {prefix: /orders}, to: orders, auth: {policy: bridge, bridge: web}}
`), 0o600)
	cfg := filepath.Join(dir, "ficus.yaml")
	os.WriteFile(cfg, []byte(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
store: {driver: postgres, dsn: `+pgDSN(t)+`}
routes: {file: `+rf+`}
idp: {issuer: "http://ficus.test"}
`), 0o600)

	if errs := serveMustRefuse(t, cfg); !strings.Contains(errs, `bridge web: unknown client "web-bridge"`) {
		t.Fatalf("a bridge with an unknown client: %s", errs)
	}
	if code, _, errs := runCLI(t, "idp", "client", "create", "web-bridge", "--grant", "client_credentials", "--config", cfg); code != 0 {
		t.Fatal(errs)
	}
	data, _ := os.ReadFile(cfg)
	front, ops, _ := testServer(t, string(data))
	req, _ := http.NewRequest(http.MethodGet, front+"/orders/1", nil)
	req.Header.Set("Cookie", "JSESSIONID=GOOD; theme=dark")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `42 legacy-session cookie="theme=dark"`; string(body) != want {
		t.Fatalf("the service saw %q, want %q", body, want)
	}
	if code, body := get(t, front+"/orders/2"); code != 200 || body != `  cookie=""` {
		t.Fatalf("without a session: %d %q", code, body)
	}
	if _, metrics := get(t, ops+"/metrics"); !strings.Contains(metrics, `ficus_bridge_whoami_total{bridge="web",outcome="ok"} 1`) {
		t.Fatalf("metrics lack the who-am-I call:\n%s", metrics)
	}
}
