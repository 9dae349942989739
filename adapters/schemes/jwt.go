package schemes

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify/jwks"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// KeySource returns a sender's ES256 verification key by kid.
type KeySource interface {
	Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error)
}

// JWT verifies a signed JWT in a header (Plaid-Verification style): ES256
// only, the key found by kid, the JWT no older than MaxAge, and its
// BodyHashClaim equal to the hex SHA-256 of the raw body.
type JWT struct {
	Header        string        // default Plaid-Verification
	BodyHashClaim string        // default request_body_sha256
	MaxAge        time.Duration // default 5m
	Keys          KeySource
}

func (s JWT) Verify(ctx context.Context, r *Request) error {
	header := s.Header
	if header == "" {
		header = "Plaid-Verification"
	}
	claim := s.BodyHashClaim
	if claim == "" {
		claim = "request_body_sha256"
	}
	raw := r.Header.Get(header)
	if raw == "" {
		return fail(ErrMissing, "no %s header", header)
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return s.Keys.Key(ctx, kid)
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return r.Now }))
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%s: %w", header, err)
	}
	if err != nil {
		return fail(ErrSignature, "%s: %v", header, err)
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return fail(ErrMalformed, "%s has no iat", header)
	}
	if r.Now.Sub(iat.Time) > tolerance(s.MaxAge) {
		return fail(ErrTimestamp, "%s issued at %s", header, iat.Time.UTC().Format(time.RFC3339))
	}
	want, _ := claims[claim].(string)
	got := sha256.Sum256(r.Body)
	if !equal([]byte(hex.EncodeToString(got[:])), []byte(want)) {
		return fail(ErrSignature, "%s does not match the body", claim)
	}
	return nil
}

// JWKSKeys is a KeySource on a sender's JWKS at URL: its ECDSA keys,
// cached by package jwks. An unknown kid causes a refetch at most once per
// RefetchInterval (default 1m), and known keys keep working when the sender
// is unreachable or slow: no lock is held across a fetch, concurrent
// callers share the fetch in flight, and each waits for it only as long as
// its own context allows. A successful fetch replaces the keys (a key the
// sender removed stops verifying). Set the fields before first use. Safe
// for concurrent use; must not be copied.
type JWKSKeys struct {
	URL string
	// Client fetches the key set. Default http.DefaultClient; a fetch is
	// bounded by Timeout anyway.
	Client *http.Client
	// Timeout bounds one fetch, whatever Client's own timeout. Default 5s.
	Timeout time.Duration
	// RefetchInterval is the least time between two fetches caused by
	// unknown kids. Default 1m.
	RefetchInterval time.Duration

	once sync.Once
	set  *jwks.Set
}

// Key returns the key of kid, fetching the sender's key set when kid is
// unknown (rate limited). An error wrapping ErrUnavailable means that the
// key set could not be fetched (or ctx ended first).
func (k *JWKSKeys) Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	k.once.Do(func() {
		interval := k.RefetchInterval
		if interval == 0 {
			interval = time.Minute
		}
		k.set = &jwks.Set{URL: k.URL, Client: k.Client, Timeout: k.Timeout, RefetchInterval: interval, Accept: ecdsaKey}
	})
	key, err := k.set.Key(ctx, kid)
	if errors.Is(err, jwks.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	return key.Public.(*ecdsa.PublicKey), nil
}

// ecdsaKey keeps a sender's ECDSA keys; the algorithm is pinned by the
// verification (ES256 only), not by the key set.
func ecdsaKey(j jose.JSONWebKey) (jwks.Key, bool) {
	pub, ok := j.Key.(*ecdsa.PublicKey)
	return jwks.Key{Public: pub, Alg: j.Algorithm}, ok
}
