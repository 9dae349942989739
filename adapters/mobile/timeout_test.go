package mobile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters/mobile"
)

// hangingIDP is a token endpoint that answers nothing until release is
// called (at the latest when the test ends); asked receives each token
// request.
func hangingIDP(t *testing.T) (url string, asked chan struct{}, release func()) {
	t.Helper()
	asked, done := make(chan struct{}, 100), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first
	return srv.URL, asked, release
}

func within10s(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10s", what)
	}
}

// Issue 8, item 15: the app's token was fetched with a background context
// and a client without a timeout, so a hanging IDP held every app-key
// request forever, even after its client had gone.
func TestAHangingIDPHoldsNoAppRequest(t *testing.T) {
	t.Parallel()
	tokenURL, asked, release := hangingIDP(t)
	secrets := map[string]string{"env:KEY": "app-key-0123456789abcdef", "env:SECRET": "s"}
	ad, err := mobile.New(mobile.Config{Paths: []string{"/m"}, Apps: []mobile.App{{Name: "shop", Key: "env:KEY", ClientID: "shop-app", ClientSecret: "env:SECRET"}}},
		func(ref string) (string, error) { return secrets[ref], nil }, tokenURL, http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		ad.ServeHTTP(w, r)
	}))
	defer front.Close()
	defer release() // before front.Close, which waits for the handler
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/m/items", nil)
	req.Header.Set("X-App-Key", "app-key-0123456789abcdef")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-asked
	cancel() // the app gives up
	within10s(t, "the adapter after its client went away", returned)
}
