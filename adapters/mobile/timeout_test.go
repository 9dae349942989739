package mobile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/strangler/waittest"
)

// Issue 8, item 15: the app's token was fetched with a background context
// and a client without a timeout, so a hanging IDP held every app-key
// request forever, even after its client had gone.
func TestAHangingIDPHoldsNoAppRequest(t *testing.T) {
	t.Parallel()
	tokenURL, asked, release := waittest.Hanging(t) // the token endpoint
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
	waittest.Recv(t, "the adapter to return after its client went away", returned)
}
