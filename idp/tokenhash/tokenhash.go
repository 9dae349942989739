// Package tokenhash is the one way ficus turns an opaque token or code into
// the key it is stored, cached and revoked under. The IDP stores tokens by
// this hash and the gateway's auth stage caches exchanges by it, so that a
// revocation notice (which carries hashes) finds both: the two must stay
// byte-identical, which is why this package exists.
package tokenhash

import (
	"crypto/sha256"
	"encoding/hex"
)

// Sum returns the lower-case hex SHA-256 of the whole token. Tokens carry
// 256 random bits, so a fast hash is enough; a salt or a slow hash would
// add nothing but cost.
func Sum(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
