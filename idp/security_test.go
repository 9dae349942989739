package idp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// exchange returns a JWT for orders-svc minted from a fresh login.
func (ti *testIDP) jwtFor(t *testing.T, aud string) string {
	t.Helper()
	l := ti.password(t, nil)
	code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {idp.GrantTokenExchange}, "subject_token": {l["access_token"].(string)},
		"subject_token_type": {idp.TokenTypeAccessToken}, "audience": {aud}}, "gateway")
	if code != 200 {
		t.Fatalf("exchange: %s", b)
	}
	return decode(t, b)["access_token"].(string)
}

func TestJWTVerificationRefusesForgeries(t *testing.T) {
	ti := newTestIDP(t, false)
	good := ti.jwtFor(t, "orders-svc")
	if _, err := ti.p.VerifyJWT(good, "orders-svc"); err != nil {
		t.Fatalf("genuine JWT refused: %v", err)
	}
	parts := strings.Split(good, ".")
	var header, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &header)
	json.Unmarshal(cb, &claims)
	kid := header["kid"].(string)
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	// The published public key, as bytes: the HS256 key-confusion attack.
	var jwks struct{ Keys []idp.JWK }
	json.Unmarshal(ti.p.Keys().JWKS(), &jwks)
	pub, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].X)
	hs := func(c map[string]any) string {
		s := b64(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}) + "." + b64(c)
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(s))
		return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	// A key of our own, signing with a kid ficus does not know.
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(c map[string]any, kid, typ string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(c))
		tok.Header["kid"], tok.Header["typ"] = kid, typ
		s, _ := tok.SignedString(rogue)
		return s
	}
	now := ti.clock.Now()
	tests := []struct{ name, token, aud string }{
		{"alg none", b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + parts[1] + ".", "orders-svc"},
		{"HS256 with the public key", hs(claims), "orders-svc"},
		{"tampered payload", parts[0] + "." + b64(with("scope", "admin")) + "." + parts[2], "orders-svc"},
		{"unknown kid", sign(claims, "rogue-kid", "at+jwt"), "orders-svc"},
		{"right kid, wrong key", sign(claims, kid, "at+jwt"), "orders-svc"},
		{"wrong audience", good, "billing-svc"},
		{"malformed", "not.a.jwt", "orders-svc"},
		{"empty", "", "orders-svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ti.p.VerifyJWT(tt.token, tt.aud); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		ti.clock.Add(6 * time.Minute)
		defer ti.clock.Add(-6 * time.Minute)
		if _, err := ti.p.VerifyJWT(good, "orders-svc"); err == nil {
			t.Fatal("expired JWT accepted")
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		ti.clock.Add(-time.Hour)
		defer ti.clock.Add(time.Hour)
		if _, err := ti.p.VerifyJWT(good, "orders-svc"); err == nil {
			t.Fatal("JWT issued in the future accepted")
		}
	})
	t.Run("wrong issuer", func(t *testing.T) {
		ks := oidc.NewRemoteKeySet(context.Background(), ti.url("/.well-known/jwks.json"))
		v := oidc.NewVerifier("https://other-issuer.example", ks, &oidc.Config{ClientID: "orders-svc", SupportedSigningAlgs: []string{oidc.EdDSA}, Now: ti.clock.Now})
		if _, err := v.Verify(context.Background(), good); err == nil {
			t.Fatal("wrong issuer accepted by the independent verifier")
		}
		other := newTestIDP(t, false)
		if _, err := other.p.VerifyJWT(good, "orders-svc"); err == nil {
			t.Fatal("another issuer's JWT accepted")
		}
	})
	_ = now
}

func TestKeyRotationKeepsOldKeyPublishedAndNextKeyEarly(t *testing.T) {
	ti := newTestIDP(t, false)
	before := ti.jwtFor(t, "orders-svc")
	next, err := ti.p.Keys().Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []idp.JWK }
	json.Unmarshal(ti.p.Keys().JWKS(), &set)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS during rotation has %d keys, want the old and the next", len(set.Keys))
	}
	// Until the publish delay passes, the old key still signs.
	if kidOf(ti.jwtFor(t, "orders-svc")) == next.ID {
		t.Fatal("the next key signed before its publish delay")
	}
	ti.clock.Add(time.Minute + time.Second)
	after := ti.jwtFor(t, "orders-svc")
	if kidOf(after) != next.ID {
		t.Fatal("the next key does not sign after the publish delay")
	}
	for _, tok := range []string{before, after} {
		if _, err := ti.p.VerifyJWT(tok, "orders-svc"); err != nil {
			t.Fatalf("verification across rotation: %v", err)
		}
	}
	ti.clock.Add(2 * time.Hour) // the old key leaves the JWKS once its JWTs have expired
	ti.p.Keys().Reload(context.Background())
	json.Unmarshal(ti.p.Keys().JWKS(), &set)
	if len(set.Keys) != 1 || set.Keys[0].Kid != next.ID {
		t.Fatalf("after retention, JWKS = %+v", set.Keys)
	}
}

func kidOf(tok string) string {
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	json.Unmarshal(hb, &h)
	return fmt.Sprint(h["kid"])
}

func TestKeyAlgorithmsAndSealing(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{idp.AlgEdDSA, idp.AlgRS256, idp.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			st := memory.New()
			kek := make([]byte, 32)
			rand.Read(kek)
			km, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Alg: alg, KEK: kek})
			if err != nil {
				t.Fatal(err)
			}
			keys, _ := st.ListKeys(ctx)
			if !keys[0].Sealed {
				t.Fatal("private key stored unsealed despite a key-encryption key")
			}
			if _, err := x509.ParsePKCS8PrivateKey(keys[0].Private); err == nil {
				t.Fatal("sealed key parses as a plain private key")
			}
			tok, err := km.Sign(jwt.MapClaims{"sub": "x"}, "at+jwt")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(tok, km.Keyfunc, jwt.WithValidMethods([]string{alg})); err != nil {
				t.Fatalf("%s round trip: %v", alg, err)
			}
			if _, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Alg: alg}); err == nil {
				t.Fatal("sealed keys loaded without the key-encryption key")
			}
		})
	}
	// An ES256 token presented for an EdDSA key (alg confusion) is refused.
	st := memory.New()
	km, _ := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "x"})
	forged.Header["kid"] = km.Keys()[0].ID
	s, _ := forged.SignedString(ec)
	if _, err := jwt.Parse(s, km.Keyfunc); err == nil {
		t.Fatal("alg confusion accepted")
	}
}

// Tokens, secrets and passwords are stored only as hashes and never appear
// in the logs.
func TestSecretsStoredHashedAndNeverLogged(t *testing.T) {
	forBoth(t, func(t *testing.T, pg bool) {
		ti := newTestIDP(t, pg)
		ctx := context.Background()
		l := ti.password(t, nil)
		cc, err := (&clientcredentials.Config{ClientID: "machine", ClientSecret: ti.secret["machine"], TokenURL: ti.url("/oauth2/token")}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {"a wrong password"}}, "web")
		ti.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l["refresh_token"].(string)}}, "web")
		ti.post(t, "/oauth2/revoke", url.Values{"token": {cc.AccessToken}}, "machine")
		ti.p.Close() // flush the audit trail

		secrets := []string{l["access_token"].(string), l["refresh_token"].(string), cc.AccessToken, ti.secret["machine"], ti.secret["web"], testPassword, "a wrong password"}
		for _, s := range secrets {
			if _, err := ti.st.GetToken(ctx, s); err != store.ErrNotFound {
				t.Errorf("a token is stored under its raw value")
			}
		}
		if tok, err := ti.st.GetToken(ctx, tokenhash.Sum(cc.AccessToken)); err != nil || tok.ClientID != "machine" {
			t.Fatalf("token not found by its hash: %v", err)
		}
		c, _ := ti.st.GetClient(ctx, "machine")
		u, _ := ti.st.GetUserByName(ctx, testUser)
		if !strings.HasPrefix(c.Secrets[0].Hash, "$argon2id$") || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Fatal("secret or password not stored as an argon2id hash")
		}
		var rows []store.AuditEvent
		switch st := ti.st.(type) {
		case *memory.Store:
			rows = st.AuditEvents()
		case interface {
			AuditEvents(context.Context, int) ([]store.AuditEvent, error)
		}:
			rows, _ = st.AuditEvents(ctx, 1000)
		}
		events := map[string]int{}
		for _, r := range rows {
			events[r.Event]++
		}
		if events["token_issued"] < 2 || events["auth_failed"] < 1 || events["token_refreshed"] < 1 || events["token_revoked"] < 1 {
			t.Fatalf("audit table rows: %v", events)
		}
		logs := ti.logs.String()
		if !strings.Contains(logs, `"event":"token_issued"`) || !strings.Contains(logs, `"event":"auth_failed"`) || !strings.Contains(logs, `"event":"token_revoked"`) {
			t.Fatalf("audit events missing from the log:\n%s", logs)
		}
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a secret appears in the logs")
			}
		}
		if strings.Contains(logs, idp.AccessTokenPrefix) || strings.Contains(logs, idp.RefreshTokenPrefix) || strings.Contains(logs, idp.ClientSecretPrefix) {
			t.Error("a token prefix appears in the logs")
		}
	})
}

// A revocation made by another instance (here: straight in the store) is
// seen once the token cache entry expires (TokenCacheTTL, 1s by default).
func TestTokenCacheBoundsStaleness(t *testing.T) {
	ti := newTestIDP(t, true)
	ctx := context.Background()
	tok, err := (&clientcredentials.Config{ClientID: "machine", ClientSecret: ti.secret["machine"], TokenURL: ti.url("/oauth2/token")}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ti.active(t, tok.AccessToken) {
		t.Fatal("not active")
	}
	if err := ti.st.RevokeToken(ctx, tokenhash.Sum(tok.AccessToken), ti.clock.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ti.p.Config().TokenCacheTTL + 200*time.Millisecond)
	if ti.active(t, tok.AccessToken) {
		t.Fatal("a token revoked elsewhere is still active after the cache TTL")
	}
}

func TestCleanupKeepsTheTokenTableBounded(t *testing.T) {
	ti := newTestIDP(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := ti.clock.Now()
	var batch []*store.Token
	for i := 0; i < 1200; i++ {
		batch = append(batch, &store.Token{Hash: fmt.Sprintf("expired-%d", i), Kind: store.KindAccess, ClientID: "machine",
			Level: store.LevelAnonymous, IssuedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-2 * time.Hour)})
	}
	if err := ti.st.InsertTokens(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	live := &store.Token{Hash: "live", Kind: store.KindAccess, ClientID: "machine", Level: store.LevelAnonymous, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := ti.st.InsertTokens(ctx, live); err != nil {
		t.Fatal(err)
	}
	go ti.p.RunCleanup(ctx, time.Hour, 500) // one round, several batches
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err1 := ti.st.GetToken(ctx, "expired-0")
		_, err2 := ti.st.GetToken(ctx, "expired-1199")
		if err1 == store.ErrNotFound && err2 == store.ErrNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired tokens not cleaned up in one round")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := ti.st.GetToken(ctx, "live"); err != nil {
		t.Fatal("cleanup deleted a live token")
	}
}
