package schemes

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

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

func (s JWT) Verify(r *Request) error {
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
		return s.Keys.Key(context.Background(), kid)
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return r.Now }))
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

// JWKSKeys fetches a sender's keys from a JWKS URL and caches them; an
// unknown kid causes a refetch at most once per RefetchInterval (default
// 1m), and known keys keep working when the sender is unreachable.
type JWKSKeys struct {
	URL             string
	Client          *http.Client
	RefetchInterval time.Duration

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	lastFetch time.Time
}

func (k *JWKSKeys) Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	interval := k.RefetchInterval
	if interval == 0 {
		interval = time.Minute
	}
	if !k.lastFetch.IsZero() && time.Since(k.lastFetch) < interval {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	k.lastFetch = time.Now()
	client := k.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the sender's keys: %w", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("the sender's JWKS does not parse: %w", err)
	}
	if k.keys == nil {
		k.keys = map[string]*ecdsa.PublicKey{}
	}
	for _, j := range set.Keys {
		if pub, ok := j.Key.(*ecdsa.PublicKey); ok && j.KeyID != "" {
			k.keys[j.KeyID] = pub
		}
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}
