// Package jwks is ficus's one cache of a remote JSON Web Key Set (RFC
// 7517): the IDP's keys, for the offline verifier (strangler/verify, and so
// the sidecar and a gateway in front of a remote IDP), and a web-hook
// sender's keys, for the adapters' jwt scheme.
//
// A Set fetches the key set on first use and again when asked for a kid it
// does not know, at most once per RefetchInterval, so a flood of made-up
// kids costs one fetch. No lock is held across a fetch: known keys keep
// resolving while a fetch is slow or failing, and keep resolving after a
// failed fetch. Callers that need a fetch at the same time share the one in
// flight (singleflight); it runs apart from any one caller, bounded by
// Timeout, and each caller waits for it only as long as its own context
// allows. A successful fetch replaces the keys, so a key the owner removed
// stops resolving.
//
// Why not a library: MicahParks/keyfunc (on jwkset) rate-limits unknown
// kids by making each caller wait for the limiter and then fetch under the
// caller's context, and fetches once per waiting caller; lestrrat-go/jwx's
// jwk.Cache refreshes on a schedule and leaves the unknown-kid refetch, its
// rate limit and the sharing of a fetch to the caller. Both would need the
// code below around them, and jwx brings a second JOSE stack besides the
// go-jose and golang-jwt that ficus already uses.
package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

var (
	// ErrUnavailable means the key set could not be fetched (or the
	// caller's context ended first) and the kid is not among the keys
	// already known: the token may be fine, it cannot be checked now.
	ErrUnavailable = errors.New("jwks: key set unavailable")
	// ErrUnknownKey means the key set, fetched or rate limited, has no
	// usable key with the kid.
	ErrUnknownKey = errors.New("jwks: unknown kid")
)

// Defaults of a Set's zero fields.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultRefetchInterval = 10 * time.Second
	// maxBody bounds a key set document.
	maxBody = 1 << 20
)

// Key is a verification key and the one algorithm it may be used with.
type Key struct {
	// Public is the public key: ed25519.PublicKey, *ecdsa.PublicKey or
	// *rsa.PublicKey.
	Public any
	// Alg is the JWS algorithm the key is pinned to; empty when the
	// Accept function pins none.
	Alg string
}

// Set is a remote key set, cached. Set URL before first use and do not
// change the fields afterwards. Safe for concurrent use; must not be
// copied.
type Set struct {
	// URL of the key set, e.g. https://login.example.com/.well-known/jwks.json.
	URL string
	// Client fetches the key set. Nil means http.DefaultClient; a fetch is
	// bounded by Timeout whatever the client's own timeout.
	Client *http.Client
	// Timeout bounds one fetch. Zero means DefaultTimeout.
	Timeout time.Duration
	// RefetchInterval is the least time between two fetches caused by
	// unknown kids. Zero means DefaultRefetchInterval.
	RefetchInterval time.Duration
	// Accept decides which keys of a fetched set are kept, and pins each
	// to an algorithm. Keys without a kid are never kept. Nil means
	// SigningKeys() (every public signing key whose algorithm is known).
	Accept func(jose.JSONWebKey) (Key, bool)
	// Now is the clock of the rate limit. Nil means time.Now.
	Now func() time.Time

	mu        sync.RWMutex // guards keys and lastFetch; never held across the network
	keys      map[string]Key
	lastFetch time.Time
	fetches   singleflight.Group
}

// SigningKeys returns an Accept function that keeps the public keys meant
// for signatures (use "sig" or no use) and pins each to its algorithm: the
// one the JWK states or, when it states none, EdDSA, ES256 or RS256 by the
// key's type. With algs, only keys pinned to one of algs are kept.
func SigningKeys(algs ...string) func(jose.JSONWebKey) (Key, bool) {
	return func(k jose.JSONWebKey) (Key, bool) {
		if !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			return Key{}, false
		}
		alg := k.Algorithm
		if alg == "" {
			switch k.Key.(type) {
			case ed25519.PublicKey:
				alg = "EdDSA"
			case *ecdsa.PublicKey:
				alg = "ES256"
			case *rsa.PublicKey:
				alg = "RS256"
			}
		}
		if alg == "" || (len(algs) > 0 && !slices.Contains(algs, alg)) {
			return Key{}, false
		}
		return Key{Public: k.Key, Alg: alg}, true
	}
}

// Key returns the key of kid. An unknown kid makes the set fetch the keys
// again, unless it did less than RefetchInterval ago. The error wraps
// ErrUnavailable when the kid is unknown and the fetch failed or ctx ended
// first, and ErrUnknownKey when the kid is simply not in the set.
func (s *Set) Key(ctx context.Context, kid string) (Key, error) {
	if k, ok := s.known(kid); ok {
		return k, nil
	}
	err := s.refresh(ctx, false)
	if k, ok := s.known(kid); ok {
		return k, nil
	}
	if err != nil {
		return Key{}, fmt.Errorf("%w: kid %q: %w", ErrUnavailable, kid, err)
	}
	return Key{}, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// Fetch fetches the key set now, whenever the last fetch was, and returns
// when it is done or ctx ends. On failure the keys already known stay; the
// error wraps ErrUnavailable.
func (s *Set) Fetch(ctx context.Context) error {
	if err := s.refresh(ctx, true); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func (s *Set) known(kid string) (Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return k, ok
}

// refresh fetches the key set, at most once per RefetchInterval unless
// forced; callers that ask while a fetch is in flight share it, each
// waiting only as long as its ctx lets it.
func (s *Set) refresh(ctx context.Context, force bool) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("fetching %s: %w", s.URL, ctx.Err())
	case r := <-s.fetches.DoChan("jwks", func() (any, error) { return nil, s.fetch(force) }):
		return r.Err
	}
}

// fetch loads the key set unless, not forced, the last fetch is more
// recent than RefetchInterval. It runs apart from any one caller, bounded
// by Timeout.
func (s *Set) fetch(force bool) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	interval := s.RefetchInterval
	if interval == 0 {
		interval = DefaultRefetchInterval
	}
	s.mu.Lock()
	t := now()
	if !force && !s.lastFetch.IsZero() && t.Sub(s.lastFetch) < interval {
		s.mu.Unlock()
		return nil
	}
	s.lastFetch = t
	s.mu.Unlock()

	keys, err := s.get()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return nil
}

// get downloads and decodes the key set, keeping the keys Accept keeps.
func (s *Set) get() (map[string]Key, error) {
	client, timeout, accept := s.Client, s.Timeout, s.Accept
	if client == nil {
		client = http.DefaultClient
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if accept == nil {
		accept = SigningKeys()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the key set: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("the key set does not parse: %w", err)
	}
	keys := make(map[string]Key, len(set.Keys))
	for _, j := range set.Keys {
		if j.KeyID == "" {
			continue
		}
		if k, ok := accept(j); ok {
			keys[j.KeyID] = k
		}
	}
	return keys, nil
}
