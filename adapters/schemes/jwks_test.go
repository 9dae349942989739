package schemes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// hangingJWKS serves the key set once, then hangs on every later fetch
// until the test ends; asked receives each hanging fetch.
func hangingJWKS(t *testing.T, keys ...jose.JSONWebKey) (url string, asked chan struct{}, fetches *atomic.Int64) {
	t.Helper()
	asked, fetches = make(chan struct{}, 100), &atomic.Int64{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) == 1 {
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
			return
		}
		asked <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv.URL, asked, fetches
}

// returns fails the test unless f returns within 10s (a hang, not a
// measurement: what it waits for must not depend on the hanging server).
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10s", what)
	}
}

// Issue 8, item 15: the JWKS of a jwt sender was fetched under the lock
// that known keys are read with, so a slow sender blocked every
// verification, and without the caller's context.
func TestASlowJWKSBlocksNoVerificationOfKnownKeys(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	url, asked, fetches := hangingJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	s := JWT{Keys: &JWKSKeys{URL: url, RefetchInterval: time.Nanosecond, Client: &http.Client{}}}
	now := time.Now()
	body := `{"n":1}`
	request := func(kid string, k *ecdsa.PrivateKey) *Request {
		r := req(now.Unix(), body)
		r.Now = now
		r.Header.Set("Plaid-Verification", signES256(t, k, kid, now, body))
		return r
	}
	if err := s.Verify(context.Background(), request("k1", key)); err != nil {
		t.Fatal(err)
	}
	// An unknown kid starts a refetch that hangs.
	go s.Verify(context.Background(), request("k2", other))
	<-asked
	returns(t, "a known kid while a refetch hangs", func() {
		if err := s.Verify(context.Background(), request("k1", key)); err != nil {
			t.Errorf("known kid: %v", err)
		}
	})
	// Another unknown kid joins the fetch in flight, and returns when its
	// caller gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	returns(t, "an unknown kid whose caller gives up", func() {
		if err := s.Verify(ctx, request("k3", other)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want ErrUnavailable carrying the context's error", err)
		}
	})
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (callers share the fetch in flight)", n)
	}
}

// Issue 8, item 15: a fetch ends at Timeout even when neither the caller
// nor the HTTP client sets a deadline.
func TestASenderJWKSFetchEndsAtItsTimeout(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	url, _, _ := hangingJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	keys := &JWKSKeys{URL: url, RefetchInterval: time.Nanosecond, Client: &http.Client{}, Timeout: 100 * time.Millisecond}
	if _, err := keys.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	returns(t, "an unknown kid on a hanging JWKS", func() {
		if _, err := keys.Key(context.Background(), "k2"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the fetch's deadline", err)
		}
	})
}
