package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
)

func TestSidecarCommand(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	keys, _ := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	p, _ := idp.New(idp.Options{Config: idp.Config{Issuer: "https://login.example"}, Store: st, Keys: keys})
	defer p.Close()
	jwks := httptest.NewServer(p.Handler())
	defer jwks.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "service") }))
	defer svc.Close()

	port := freePort(t)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	var out lockedBuffer
	go func() {
		done <- run(cctx, []string{"sidecar", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--upstream", svc.URL,
			"--jwks", jwks.URL + "/.well-known/jwks.json", "--issuer", "https://login.example", "--audience", "svc",
			"--scope", "/admin=admin"}, strings.NewReader(""), &out, &out)
	}()
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, front+"/")
	now := time.Now()
	tok, _, err := p.MintJWT(ctx, &store.Token{ClientID: "c", Scope: "read", Level: "anonymous", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, tok string
		want      int
	}{{"/x", tok, 200}, {"/x", "", 401}, {"/x", tok + "x", 401}, {"/admin/x", tok, 403}} {
		req, _ := http.NewRequest("GET", front+tc.path, nil)
		if tc.tok != "" {
			req.Header.Set("Authorization", "Bearer "+tc.tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("sidecar exited %d: %s", code, out.String())
	}
	if code, _, errs := runCLI(t, "sidecar", "--upstream", svc.URL); code == 0 || !strings.Contains(errs, "required") {
		t.Fatalf("missing flags: %d %s", code, errs)
	}
}
