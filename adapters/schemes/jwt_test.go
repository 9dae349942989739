package schemes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signES256 makes a Plaid-style verification JWT with go-jose, a JOSE
// library independent of the verifier's.
func signES256(t *testing.T, key *ecdsa.PrivateKey, kid string, iat time.Time, body string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	s, err := jwt.Signed(signer).Claims(map[string]any{"iat": iat.Unix(), "request_body_sha256": hex.EncodeToString(sum[:])}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTScheme(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var fetches atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer jwks.Close()
	s := JWT{Keys: &JWKSKeys{URL: jwks.URL, RefetchInterval: time.Hour}}
	now := time.Now()
	body := `{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"it_1"}`
	tests := []struct {
		name string
		jwt  string
		body string
		want error
	}{
		{"valid", signES256(t, key, "k1", now.Add(-time.Minute), body), body, nil},
		{"tampered body", signES256(t, key, "k1", now, body), body + " ", ErrSignature},
		{"too old", signES256(t, key, "k1", now.Add(-6*time.Minute), body), body, ErrTimestamp},
		{"wrong key, right kid", signES256(t, other, "k1", now, body), body, ErrSignature},
		{"unknown kid", signES256(t, other, "k2", now, body), body, ErrSignature},
		{"missing", "", body, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(now.Unix(), tt.body)
			r.Now = now
			if tt.jwt != "" {
				r.Header.Set("Plaid-Verification", tt.jwt)
			}
			err := s.Verify(context.Background(), r)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (keys cached, unknown kids rate limited)", n)
	}
	// HS256 with the public key as secret: refused (ES256 only).
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	forged, err := jwt.Signed(hs).Claims(map[string]any{"iat": now.Unix(), "request_body_sha256": hex.EncodeToString(sum[:])}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	r := req(now.Unix(), body)
	r.Now = now
	r.Header.Set("Plaid-Verification", forged)
	if err := s.Verify(context.Background(), r); !errors.Is(err, ErrSignature) {
		t.Fatalf("HS256: %v", err)
	}
}
