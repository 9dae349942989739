package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify/jwks"
	"github.com/ficus-gw/ficus/strangler/verify/jwks/jwkstest"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/go-jose/go-jose/v4"
)

// keyServer serves whatever key set it holds, or 503 while it holds none,
// and counts the fetches.
type keyServer struct {
	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetches atomic.Int64
	url     string
}

func newKeyServer(t *testing.T, keys ...jose.JSONWebKey) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.serve(keys...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		set := ks.set
		ks.mu.Unlock()
		if set == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	ks.url = srv.URL
	return ks
}

// serve replaces the key set; no keys at all means the server fails.
func (ks *keyServer) serve(keys ...jose.JSONWebKey) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.set = nil
	if keys != nil {
		ks.set = &jose.JSONWebKeySet{Keys: keys}
	}
}

func edKey(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: "EdDSA", Use: "sig"}
}

func TestKeysAreCachedAndUnknownKidsCostOneFetch(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, edKey(t, "k1"))
	s := &jwks.Set{URL: ks.url, RefetchInterval: time.Hour}
	ctx := context.Background()
	for range 3 {
		if k, err := s.Key(ctx, "k1"); err != nil || k.Alg != "EdDSA" {
			t.Fatalf("k1: %+v, %v", k, err)
		}
	}
	for i := range 50 {
		if _, err := s.Key(ctx, "nope-"+string(rune('a'+i%26))); !errors.Is(err, jwks.ErrUnknownKey) {
			t.Fatalf("unknown kid: %v, want ErrUnknownKey", err)
		}
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (keys cached, unknown kids rate limited)", n)
	}
}

func TestKnownKeysSurviveAFailedFetchAndAGoodOneReplacesThem(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	later := func() { mu.Lock(); now = now.Add(time.Minute); mu.Unlock() }
	ks := newKeyServer(t, edKey(t, "k1"))
	s := &jwks.Set{URL: ks.url, RefetchInterval: time.Second, Now: clock}
	ctx := context.Background()
	if _, err := s.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	ks.serve() // the owner is down
	later()
	if _, err := s.Key(ctx, "k2"); !errors.Is(err, jwks.ErrUnavailable) {
		t.Fatalf("unknown kid, owner down: %v, want ErrUnavailable", err)
	}
	if _, err := s.Key(ctx, "k1"); err != nil {
		t.Fatalf("known kid after a failed fetch: %v", err)
	}
	ks.serve(edKey(t, "k2")) // a rotation that removed k1
	later()
	if _, err := s.Key(ctx, "k2"); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	if _, err := s.Key(ctx, "k1"); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("a removed key: %v, want ErrUnknownKey", err)
	}
	if err := s.Fetch(ctx); err != nil {
		t.Fatalf("a forced fetch: %v", err)
	}
	if n := ks.fetches.Load(); n != 4 {
		t.Fatalf("%d fetches, want 4 (the forced one ignores the rate limit)", n)
	}
}

// Issue 8, item 15: a fetch held the lock that known keys are read with.
func TestASlowFetchBlocksNoKnownKey(t *testing.T) {
	t.Parallel()
	url, asked, fetches := jwkstest.Hanging(t, edKey(t, "k1"))
	s := &jwks.Set{URL: url, RefetchInterval: time.Nanosecond}
	if _, err := s.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	go s.Key(context.Background(), "k2") // a refetch that hangs
	<-asked
	waittest.Returns(t, "a known kid while a refetch hangs", func() {
		if _, err := s.Key(context.Background(), "k1"); err != nil {
			t.Errorf("known kid: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	waittest.Returns(t, "an unknown kid whose caller gives up", func() {
		_, err := s.Key(ctx, "k3")
		if !errors.Is(err, jwks.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want ErrUnavailable carrying the context's error", err)
		}
	})
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (callers share the fetch in flight)", n)
	}
}

func TestAFetchEndsAtItsTimeout(t *testing.T) {
	t.Parallel()
	url, _, _ := jwkstest.Hanging(t, edKey(t, "k1"))
	s := &jwks.Set{URL: url, RefetchInterval: time.Nanosecond, Timeout: 100 * time.Millisecond, Client: &http.Client{}}
	if err := s.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	waittest.Returns(t, "a forced fetch on a hanging key set", func() {
		if err := s.Fetch(context.Background()); !errors.Is(err, jwks.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the fetch's deadline", err)
		}
	})
}

func TestSigningKeysPinsEachKeyToOneAlgorithm(t *testing.T) {
	t.Parallel()
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name  string
		algs  []string
		given jose.JSONWebKey
		want  string // the pinned algorithm; empty: not kept
	}{
		{"stated", nil, jose.JSONWebKey{Key: ec.Public(), Algorithm: "ES256", Use: "sig"}, "ES256"},
		{"inferred EdDSA", nil, jose.JSONWebKey{Key: ed}, "EdDSA"},
		{"inferred ES256", nil, jose.JSONWebKey{Key: ec.Public()}, "ES256"},
		{"inferred RS256", nil, jose.JSONWebKey{Key: rs.Public()}, "RS256"},
		{"allowed", []string{"EdDSA", "RS256"}, jose.JSONWebKey{Key: rs.Public()}, "RS256"},
		{"not allowed", []string{"EdDSA"}, jose.JSONWebKey{Key: rs.Public()}, ""},
		{"encryption key", nil, jose.JSONWebKey{Key: rs.Public(), Use: "enc"}, ""},
		{"private key", nil, jose.JSONWebKey{Key: ec}, ""},
		{"symmetric key", nil, jose.JSONWebKey{Key: []byte("0123456789abcdef"), Algorithm: "HS256"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := jwks.SigningKeys(tt.algs...)(tt.given)
			if ok != (tt.want != "") || k.Alg != tt.want {
				t.Fatalf("got %q, %v; want %q", k.Alg, ok, tt.want)
			}
		})
	}
}

func TestKeysWithoutAKidAreNeverKept(t *testing.T) {
	t.Parallel()
	k := edKey(t, "")
	ks := newKeyServer(t, k)
	s := &jwks.Set{URL: ks.url, Accept: func(jose.JSONWebKey) (jwks.Key, bool) { return jwks.Key{Public: k.Key}, true }}
	if _, err := s.Key(context.Background(), ""); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("empty kid: %v, want ErrUnknownKey", err)
	}
}
