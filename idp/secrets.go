package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Token prefixes let secret scanners find leaked tokens.
const (
	AccessTokenPrefix  = "ficus_at_"
	RefreshTokenPrefix = "ficus_rt_"
	CodePrefix         = "ficus_ac_"
	ClientSecretPrefix = "ficus_cs_"
)

// opaqueLen is the length of newOpaque's random part: 32 bytes in
// unpadded base64url.
const opaqueLen = 43

// newOpaque returns prefix + 256 random bits, base64url.
func newOpaque(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashParams are argon2id cost parameters. The encoded hash records them,
// so changing them affects only new hashes.
type HashParams struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultHashParams follow RFC 9106's second recommended option, with
// 64 MiB of memory.
var DefaultHashParams = HashParams{Time: 2, MemoryKiB: 64 * 1024, Threads: 2}

const argonKeyLen = 32

// Hash returns an encoded argon2id hash of pw with these parameters.
func (hp HashParams) Hash(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	return hp.encode(salt[:], argon2.IDKey([]byte(pw), salt[:], hp.Time, hp.MemoryKiB, hp.Threads, argonKeyLen)), nil
}

// encode writes a hash in the PHC string format.
func (hp HashParams) encode(salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, hp.MemoryKiB, hp.Time, hp.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummy returns an encoded hash with these parameters that no password
// matches (random salt and key): checking against it costs what checking
// a real hash costs, and it is made without running argon2id.
func (hp HashParams) dummy() string {
	var salt [16]byte
	var key [argonKeyLen]byte
	_, _ = rand.Read(salt[:])
	_, _ = rand.Read(key[:])
	return hp.encode(salt[:], key[:])
}

// encodedHash is a parsed argon2id PHC string.
type encodedHash struct {
	params    HashParams
	salt, key []byte
}

// matches runs argon2id on pw and compares in constant time.
func (h encodedHash) matches(pw string) bool {
	got := argon2.IDKey([]byte(pw), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

func parseHash(encoded string) (encodedHash, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return encodedHash{}, false
	}
	var h encodedHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.params.MemoryKiB, &h.params.Time, &h.params.Threads); err != nil {
		return encodedHash{}, false
	}
	var err1, err2 error
	h.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	h.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(h.key) == 0 {
		return encodedHash{}, false
	}
	return h, true
}
