// Package jwkstest serves key sets that misbehave, for the tests of every
// package that fetches a JWKS through package jwks.
package jwkstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Hanging serves keys on the first fetch, then hangs on every later fetch
// until the test ends. It returns the key set's URL, a channel that
// receives once per hanging fetch, and the count of fetches.
func Hanging(t testing.TB, keys ...jose.JSONWebKey) (url string, asked <-chan struct{}, fetches *atomic.Int64) {
	t.Helper()
	ch, fetches := make(chan struct{}, 100), &atomic.Int64{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) == 1 {
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
			return
		}
		ch <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv.URL, ch, fetches
}
