package schemes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify/jwks/jwkstest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/go-jose/go-jose/v4"
)

// Issue 8, item 15: the JWKS of a jwt sender was fetched under the lock
// that known keys are read with, so a slow sender blocked every
// verification, and without the caller's context.
func TestASlowJWKSBlocksNoVerificationOfKnownKeys(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	url, asked, fetches := jwkstest.Hanging(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
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
	waittest.Returns(t, "a known kid while a refetch hangs", func() {
		if err := s.Verify(context.Background(), request("k1", key)); err != nil {
			t.Errorf("known kid: %v", err)
		}
	})
	// Another unknown kid joins the fetch in flight, and returns when its
	// caller gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	waittest.Returns(t, "an unknown kid whose caller gives up", func() {
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
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	url, _, _ := jwkstest.Hanging(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	keys := &JWKSKeys{URL: url, RefetchInterval: time.Nanosecond, Client: &http.Client{}, Timeout: 100 * time.Millisecond}
	if _, err := keys.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	waittest.Returns(t, "an unknown kid on a hanging JWKS", func() {
		if _, err := keys.Key(context.Background(), "k2"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the fetch's deadline", err)
		}
	})
}
