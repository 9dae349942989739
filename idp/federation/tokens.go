package federation

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"

	"golang.org/x/oauth2"
)

// The upstream's tokens are kept only with keep_upstream_tokens: sealed
// with AES-256-GCM under the key-encryption key, bound to the account
// they belong to (issuer and subject as additional data).

type keptTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	Expiry       int64  `json:"expiry,omitempty"`
}

// seal returns the sealed tokens of id, or nil when u does not keep them.
func (f *Federation) seal(u *upstream, id *identity) ([]byte, error) {
	if !u.cfg.KeepUpstreamTokens || id.token == nil {
		return nil, nil
	}
	k := keptTokens{AccessToken: id.token.AccessToken, RefreshToken: id.token.RefreshToken, TokenType: id.token.TokenType}
	if !id.token.Expiry.IsZero() {
		k.Expiry = id.token.Expiry.Unix()
	}
	plain, _ := json.Marshal(k)
	gcm, err := f.gcm()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plain, tokensAD(id.issuer, id.subject)), nil
}

func (f *Federation) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(f.o.KEK)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func tokensAD(issuer, subject string) []byte {
	return []byte("ficus federation tokens\x00" + issuer + "\x00" + subject)
}

// ErrNoTokens means no upstream tokens are kept for the account.
var ErrNoTokens = errors.New("federation: no upstream tokens are kept for this account")

// UpstreamTokens returns the upstream's tokens kept for the account
// subject at the provider name, from its last login (keep_upstream_tokens);
// ErrNoTokens when none are kept.
func (f *Federation) UpstreamTokens(ctx context.Context, name, subject string) (*oauth2.Token, error) {
	u := f.byName[name]
	if u == nil {
		return nil, errors.New("federation: no such provider")
	}
	l, err := f.o.Store.GetFederatedLink(ctx, u.cfg.Issuer, subject)
	if err != nil {
		return nil, err
	}
	if len(l.Tokens) == 0 || len(f.o.KEK) != 32 {
		return nil, ErrNoTokens
	}
	gcm, err := f.gcm()
	if err != nil {
		return nil, err
	}
	if len(l.Tokens) < gcm.NonceSize() {
		return nil, errors.New("federation: kept tokens are damaged")
	}
	plain, err := gcm.Open(nil, l.Tokens[:gcm.NonceSize()], l.Tokens[gcm.NonceSize():], tokensAD(l.Issuer, l.Subject))
	if err != nil {
		return nil, errors.New("federation: kept tokens cannot be opened with this key")
	}
	var k keptTokens
	if err := json.Unmarshal(plain, &k); err != nil {
		return nil, err
	}
	t := &oauth2.Token{AccessToken: k.AccessToken, RefreshToken: k.RefreshToken, TokenType: k.TokenType}
	if k.Expiry != 0 {
		t.Expiry = timeUnix(k.Expiry)
	}
	return t, nil
}
