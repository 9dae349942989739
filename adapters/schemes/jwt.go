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
	"golang.org/x/sync/singleflight"
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

// JWKSKeys fetches a sender's keys from a JWKS URL and caches them; an
// unknown kid causes a refetch at most once per RefetchInterval (default
// 1m), and known keys keep working when the sender is unreachable or slow:
// no lock is held across a fetch, concurrent callers share the fetch in
// flight, and each waits for it only as long as its own context allows.
// A successful fetch replaces the keys (a key the sender removed stops
// verifying). Safe for concurrent use; must not be copied.
type JWKSKeys struct {
	URL string
	// Client fetches the key set. Default: a client with a 5s timeout.
	Client *http.Client
	// Timeout bounds one fetch, whatever Client's own timeout. Default 5s.
	Timeout         time.Duration
	RefetchInterval time.Duration

	mu        sync.RWMutex // guards keys and lastFetch; never held across the network
	keys      map[string]*ecdsa.PublicKey
	lastFetch time.Time
	fetches   singleflight.Group
}

var defaultJWKSClient = &http.Client{Timeout: 5 * time.Second}

func (k *JWKSKeys) known(kid string) *ecdsa.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[kid]
}

// Key returns the key of kid, fetching the sender's key set when kid is
// unknown (rate limited). An error wrapping ErrUnavailable means that the
// key set could not be fetched (or ctx ended first).
func (k *JWKSKeys) Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if key := k.known(kid); key != nil {
		return key, nil
	}
	var err error
	select {
	case <-ctx.Done():
		err = fmt.Errorf("fetching the sender's keys: %w", ctx.Err())
	case r := <-k.fetches.DoChan("jwks", func() (any, error) { return nil, k.fetch() }):
		err = r.Err
	}
	if key := k.known(kid); key != nil {
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w", ErrUnavailable, kid, err)
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

// fetch loads the key set unless the last fetch is more recent than
// RefetchInterval. It runs apart from any one caller, bounded by Timeout.
func (k *JWKSKeys) fetch() error {
	interval := k.RefetchInterval
	if interval == 0 {
		interval = time.Minute
	}
	k.mu.Lock()
	if !k.lastFetch.IsZero() && time.Since(k.lastFetch) < interval {
		k.mu.Unlock()
		return nil
	}
	k.lastFetch = time.Now()
	k.mu.Unlock()
	client, timeout := k.Client, k.Timeout
	if client == nil {
		client = defaultJWKSClient
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the sender's keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the sender's keys: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("the sender's JWKS does not parse: %w", err)
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, j := range set.Keys {
		if pub, ok := j.Key.(*ecdsa.PublicKey); ok && j.KeyID != "" {
			keys[j.KeyID] = pub
		}
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}
