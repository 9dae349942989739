package session

import (
	"crypto/rand"
	"encoding/base64"
)

// cookieBytes is the randomness of a cookie value: 256 bits.
const cookieBytes = 32

// cookieLen is the length of a cookie value: base64url, unpadded.
var cookieLen = base64.RawURLEncoding.EncodedLen(cookieBytes)

// newCookie returns a fresh cookie value: 256 random bits, base64url.
func newCookie() string {
	b := make([]byte, cookieBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormed reports whether v can be a cookie value ficus made: anything
// else is refused before it is hashed or looked up.
func wellFormed(v string) bool {
	if len(v) != cookieLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
