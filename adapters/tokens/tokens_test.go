package tokens_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenServer answers token requests with a fresh token each, or hangs
// while hang is set (until the test ends); asked receives each request.
type tokenServer struct {
	hang  atomic.Bool
	calls atomic.Int64
	asked chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newTokenServer(t *testing.T) (*tokenServer, string) {
	ts := &tokenServer{asked: make(chan struct{}, 100), done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.calls.Add(1)
		if ts.hang.Load() {
			ts.asked <- struct{}{}
			select {
			case <-ts.done:
			case <-r.Context().Done():
			}
			return
		}
		if id, secret, _ := r.BasicAuth(); id != "adapter" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + string(rune('0'+n)), "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { ts.once.Do(func() { close(ts.done) }) }) // runs first
	return ts, srv.URL
}

func TestTokensAreCachedAndShared(t *testing.T) {
	t.Parallel()
	srv, url := newTokenServer(t)
	cc := &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: "adapter", ClientSecret: "s3cret", TokenURL: url}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := cc.Token(context.Background()); err != nil || tok.AccessToken != "tok-1" {
				t.Errorf("Token = %v, %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("%d token requests for 20 callers, want 1", n)
	}
	bad := &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: "adapter", ClientSecret: "wrong", TokenURL: url}}
	if _, err := bad.Token(context.Background()); err == nil {
		t.Fatal("a refused client got a token")
	}
}

// Issue 8, item 15: token requests have a deadline of their own and
// return when their caller's context ends.
func TestATokenRequestEndsAtItsTimeoutOrItsCallersCancel(t *testing.T) {
	t.Parallel()
	srv, url := newTokenServer(t)
	srv.hang.Store(true)
	cc := &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: "adapter", ClientSecret: "s3cret", TokenURL: url},
		Client: &http.Client{}, Timeout: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-srv.asked; cancel() }()
	waittest.Returns(t, "a caller that gives up", func() {
		if _, err := cc.Token(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want the caller's cancellation", err)
		}
	})
	short := &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: "adapter", ClientSecret: "s3cret", TokenURL: url},
		Client: &http.Client{}, Timeout: 100 * time.Millisecond}
	waittest.Returns(t, "a token request on a hanging endpoint", func() {
		if _, err := short.Token(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the request's deadline", err)
		}
	})
}
