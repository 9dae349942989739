package idp

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms ficus can sign with.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// KeyStorage keeps the signing keys.
type KeyStorage interface {
	// PutKey stores a key, replacing the one with the same ID.
	PutKey(ctx context.Context, k *store.SigningKey) error
	// ListKeys returns every stored key.
	ListKeys(ctx context.Context) ([]*store.SigningKey, error)
}

// KeyManager holds the signing keys: it signs with the current key,
// publishes every key that may have signed a live JWT (and the next key,
// before it signs) as a JWKS, and verifies JWTs with algorithms pinned per
// key. It reloads keys from the store, so a rotation made by one instance
// (or the CLI) reaches all of them.
type KeyManager struct {
	st           KeyStorage
	alg          string
	kek          []byte
	publishDelay time.Duration
	retainFor    time.Duration
	now          func() time.Time

	mu   sync.RWMutex
	keys []*loadedKey
	jwks []byte
}

type loadedKey struct {
	meta   *store.SigningKey
	signer crypto.Signer
	method jwt.SigningMethod
	public any
}

// KeyOptions configure a KeyManager.
type KeyOptions struct {
	// Alg is used for new keys: EdDSA (default), RS256 or ES256.
	Alg string
	// KEK, if set (32 bytes), seals private keys with AES-256-GCM before
	// they are stored.
	KEK []byte
	// PublishDelay is how long a new key is published before it signs, so
	// that every JWKS cache has it. Default 5m.
	PublishDelay time.Duration
	// RetainFor keeps a retired key in the JWKS this long after it stopped
	// signing: at least the longest JWT lifetime. Default 1h.
	RetainFor time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewKeyManager loads the keys from st, generating the first key when
// there is none.
func NewKeyManager(ctx context.Context, st KeyStorage, o KeyOptions) (*KeyManager, error) {
	km := &KeyManager{st: st, alg: o.Alg, kek: o.KEK, publishDelay: o.PublishDelay, retainFor: o.RetainFor, now: o.Now}
	if km.alg == "" {
		km.alg = AlgEdDSA
	}
	switch km.alg {
	case AlgEdDSA, AlgRS256, AlgES256:
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q (EdDSA, RS256 or ES256)", km.alg)
	}
	if km.kek != nil && len(km.kek) != 32 {
		return nil, errors.New("the key-encryption key must be 32 bytes")
	}
	if km.publishDelay == 0 {
		km.publishDelay = 5 * time.Minute
	}
	if km.retainFor == 0 {
		km.retainFor = time.Hour
	}
	if km.now == nil {
		km.now = time.Now
	}
	if err := km.Reload(ctx); err != nil {
		return nil, err
	}
	km.mu.RLock()
	empty := len(km.keys) == 0
	km.mu.RUnlock()
	if empty {
		now := km.now()
		if _, err := km.addKey(ctx, now); err != nil {
			return nil, err
		}
	}
	return km, nil
}

// Reload reads the keys from the store.
func (km *KeyManager) Reload(ctx context.Context) error {
	metas, err := km.st.ListKeys(ctx)
	if err != nil {
		return err
	}
	var keys []*loadedKey
	for _, m := range metas {
		lk, err := km.load(m)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", m.ID, err)
		}
		keys = append(keys, lk)
	}
	km.mu.Lock()
	km.keys = keys
	km.jwks = nil
	km.mu.Unlock()
	return nil
}

func (km *KeyManager) load(m *store.SigningKey) (*loadedKey, error) {
	der := m.Private
	if m.Sealed {
		if km.kek == nil {
			return nil, errors.New("key is sealed and no key-encryption key is configured")
		}
		var err error
		if der, err = unseal(km.kek, der); err != nil {
			return nil, err
		}
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	lk := &loadedKey{meta: m}
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		lk.signer, lk.method, lk.public = k, jwt.SigningMethodEdDSA, k.Public()
	case *rsa.PrivateKey:
		lk.signer, lk.method, lk.public = k, jwt.SigningMethodRS256, &k.PublicKey
	case *ecdsa.PrivateKey:
		lk.signer, lk.method, lk.public = k, jwt.SigningMethodES256, &k.PublicKey
	default:
		return nil, fmt.Errorf("unsupported key type %T", priv)
	}
	if lk.method.Alg() != m.Alg {
		return nil, fmt.Errorf("key type does not match its algorithm %s", m.Alg)
	}
	return lk, nil
}

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

func (km *KeyManager) addKey(ctx context.Context, activeAt time.Time) (*store.SigningKey, error) {
	signer, err := generate(km.alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, err
	}
	now := km.now()
	pubDER, _ := x509.MarshalPKIXPublicKey(signer.Public())
	sum := sha256.Sum256(pubDER)
	m := &store.SigningKey{
		ID:        base64.RawURLEncoding.EncodeToString(sum[:12]),
		Alg:       km.alg,
		Private:   der,
		CreatedAt: now,
		ActiveAt:  activeAt,
	}
	if km.kek != nil {
		if m.Private, err = seal(km.kek, der); err != nil {
			return nil, err
		}
		m.Sealed = true
	}
	if err := km.st.PutKey(ctx, m); err != nil {
		return nil, err
	}
	return m, km.Reload(ctx)
}

// Rotate publishes a new key now, which starts signing after the publish
// delay; the current key signs until then and stays published until every
// JWT it signed has expired. No request fails across a rotation.
func (km *KeyManager) Rotate(ctx context.Context) (*store.SigningKey, error) {
	now := km.now()
	activeAt := now.Add(km.publishDelay)
	km.mu.RLock()
	var retire []*store.SigningKey
	for _, k := range km.keys {
		if k.meta.RetiredAt.IsZero() {
			m := *k.meta
			m.RetiredAt = activeAt
			m.ExpiresAt = activeAt.Add(km.retainFor)
			retire = append(retire, &m)
		}
	}
	km.mu.RUnlock()
	for _, m := range retire {
		if err := km.st.PutKey(ctx, m); err != nil {
			return nil, err
		}
	}
	return km.addKey(ctx, activeAt)
}

// current returns the key that signs at now: the newest active one.
func (km *KeyManager) current(now time.Time) *loadedKey {
	km.mu.RLock()
	defer km.mu.RUnlock()
	var cur *loadedKey
	for _, k := range km.keys {
		if !k.meta.ActiveAt.After(now) && (cur == nil || k.meta.ActiveAt.After(cur.meta.ActiveAt)) {
			cur = k
		}
	}
	return cur
}

// Keys lists the keys (public metadata only).
func (km *KeyManager) Keys() []store.SigningKey {
	km.mu.RLock()
	defer km.mu.RUnlock()
	out := make([]store.SigningKey, len(km.keys))
	for i, k := range km.keys {
		out[i] = *k.meta
		out[i].Private = nil
	}
	return out
}

// Sign signs claims with the current key, setting kid and typ.
func (km *KeyManager) Sign(claims jwt.Claims, typ string) (string, error) {
	k := km.current(km.now())
	if k == nil {
		return "", errors.New("no active signing key")
	}
	t := jwt.NewWithClaims(k.method, claims)
	t.Header["kid"] = k.meta.ID
	t.Header["typ"] = typ
	return t.SignedString(k.signer)
}

// SignWith signs the claims that build returns for the current key's
// algorithm (an ID token's at_hash depends on it), setting kid and typ.
func (km *KeyManager) SignWith(build func(alg string) jwt.Claims, typ string) (string, error) {
	k := km.current(km.now())
	if k == nil {
		return "", errors.New("no active signing key")
	}
	t := jwt.NewWithClaims(k.method, build(k.method.Alg()))
	t.Header["kid"] = k.meta.ID
	t.Header["typ"] = typ
	return t.SignedString(k.signer)
}

// JWK is one public key of the JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// JWKS returns the published key set as JSON: every key not yet expired,
// including the next key before it signs.
func (km *KeyManager) JWKS() []byte {
	now := km.now()
	km.mu.RLock()
	cached := km.jwks
	km.mu.RUnlock()
	if cached != nil {
		return cached
	}
	km.mu.Lock()
	defer km.mu.Unlock()
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	for _, k := range km.keys {
		if !k.meta.ExpiresAt.IsZero() && !now.Before(k.meta.ExpiresAt) {
			continue
		}
		set.Keys = append(set.Keys, toJWK(k))
	}
	b, _ := json.Marshal(set)
	km.jwks = b
	return b
}

func toJWK(k *loadedKey) JWK {
	j := JWK{Kid: k.meta.ID, Alg: k.meta.Alg, Use: "sig"}
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := k.public.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		j.Kty, j.Crv = "EC", "P-256"
		// The uncompressed point is 0x04 || x || y, 32 bytes each on P-256.
		if pt, err := p.ECDH(); err == nil {
			raw := pt.Bytes()
			j.X, j.Y = b64(raw[1:33]), b64(raw[33:65])
		}
	}
	return j
}

// Keyfunc resolves a JWT's kid to a published key, refusing a token whose
// alg is not that key's algorithm (no alg:none, no HS/RS confusion).
func (km *KeyManager) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	now := km.now()
	km.mu.RLock()
	defer km.mu.RUnlock()
	for _, k := range km.keys {
		if k.meta.ID != kid {
			continue
		}
		if !k.meta.ExpiresAt.IsZero() && !now.Before(k.meta.ExpiresAt) {
			return nil, errors.New("signing key expired")
		}
		if t.Method.Alg() != k.method.Alg() {
			return nil, fmt.Errorf("alg %s does not match the key's %s", t.Method.Alg(), k.method.Alg())
		}
		return k.public, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

// Algorithms lists the algorithms of the published keys.
func (km *KeyManager) Algorithms() []string {
	km.mu.RLock()
	defer km.mu.RUnlock()
	var out []string
	for _, k := range km.keys {
		if !slices.Contains(out, k.meta.Alg) {
			out = append(out, k.meta.Alg)
		}
	}
	if !slices.Contains(out, km.alg) {
		out = append(out, km.alg)
	}
	return out
}

func gcmFor(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// keyAD binds sealed keys to their purpose.
var keyAD = []byte("ficus signing key")

func seal(kek, plain []byte) ([]byte, error) {
	gcm, err := gcmFor(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, keyAD), nil
}

func unseal(kek, sealed []byte) ([]byte, error) {
	gcm, err := gcmFor(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], keyAD)
	if err != nil {
		return nil, errors.New("cannot unseal the signing key: wrong key-encryption key?")
	}
	return plain, nil
}
