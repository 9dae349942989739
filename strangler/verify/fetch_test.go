package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
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

func signEd(t *testing.T, key ed25519.PrivateKey, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"aud": "svc", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "jti": rand.Text()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 8, item 15: a JWKS refetch held a lock across the network, so
// verifications of another unknown kid waited for it, ignoring their own
// context; known keys must keep verifying meanwhile.
func TestASlowJWKSFetchBlocksNoVerification(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	url, asked, fetches := hangingJWKS(t, jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"})
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: url, Audience: "svc", RefetchInterval: time.Nanosecond, Client: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	go v.Verify(context.Background(), signEd(t, other, "k2")) // an unknown kid: a refetch that hangs
	<-asked
	returns(t, "a known kid while a refetch hangs", func() {
		if _, err := v.Verify(context.Background(), signEd(t, key, "k1")); err != nil {
			t.Errorf("known kid: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	returns(t, "an unknown kid whose caller gives up", func() {
		if _, err := v.Verify(ctx, signEd(t, other, "k3")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("unknown kid with a cancelled context: %v, want the context's error", err)
		}
	})
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (callers share the fetch in flight)", n)
	}
}

// Issue 8, item 15: a fetch ends at Options.Timeout even when neither the
// caller nor the HTTP client sets a deadline.
func TestAJWKSFetchEndsAtItsTimeout(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	url, _, _ := hangingJWKS(t, jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"})
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: url, Audience: "svc", RefetchInterval: time.Nanosecond,
		Client: &http.Client{}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	returns(t, "an unknown kid on a hanging JWKS", func() {
		if _, err := v.Verify(context.Background(), signEd(t, other, "k2")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the fetch's deadline", err)
		}
	})
}
