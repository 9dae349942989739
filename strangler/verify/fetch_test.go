package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/ficus-gw/ficus/strangler/verify/jwks/jwkstest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

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
	t.Parallel()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	url, asked, fetches := jwkstest.Hanging(t, jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"})
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: url, Audience: "svc", RefetchInterval: time.Nanosecond, Client: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	go v.Verify(context.Background(), signEd(t, other, "k2")) // an unknown kid: a refetch that hangs
	<-asked
	waittest.Returns(t, "a known kid while a refetch hangs", func() {
		if _, err := v.Verify(context.Background(), signEd(t, key, "k1")); err != nil {
			t.Errorf("known kid: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	waittest.Returns(t, "an unknown kid whose caller gives up", func() {
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
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	url, _, _ := jwkstest.Hanging(t, jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"})
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: url, Audience: "svc", RefetchInterval: time.Nanosecond,
		Client: &http.Client{}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waittest.Returns(t, "an unknown kid on a hanging JWKS", func() {
		if _, err := v.Verify(context.Background(), signEd(t, other, "k2")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the fetch's deadline", err)
		}
	})
}
