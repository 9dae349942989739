package legacy

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// The password hash formats Postgres verifies.
const (
	// FormatBcrypt is bcrypt, $2a$, $2b$ or $2y$ (PHP's password_hash,
	// Rails' has_secure_password and Devise), also behind Spring
	// Security's {bcrypt} prefix. As everywhere, only the first 72 bytes
	// of a password count.
	FormatBcrypt = "bcrypt"
	// FormatDjangoPBKDF2 is Django's pbkdf2_sha256$ITERATIONS$SALT$HASH
	// (HASH the base64 of the derived key).
	FormatDjangoPBKDF2 = "django_pbkdf2_sha256"
)

// Formats lists the hash formats Postgres verifies.
var Formats = []string{FormatBcrypt, FormatDjangoPBKDF2}

// Work bounds for a stored hash: a legacy row asking for more is refused,
// so one login cannot cost minutes.
const (
	maxBcryptCost      = 16
	maxPBKDF2Iteration = 5_000_000
)

// errUnknownFormat is a stored hash in no accepted format.
var errUnknownFormat = errors.New("the stored password hash is in no accepted format")

// verifier checks passwords against stored hashes in the accepted formats.
type verifier struct {
	formats []string
	dummy   func() string // a hash in the first format, for unknown users
}

// newVerifier accepts the hash formats named (Formats).
func newVerifier(formats []string) (*verifier, error) {
	if len(formats) == 0 {
		return nil, fmt.Errorf("hash_formats: at least one is required (%s)", strings.Join(Formats, ", "))
	}
	for _, f := range formats {
		if !slices.Contains(Formats, f) {
			return nil, fmt.Errorf("hash_formats: %q is not a supported format (%s)", f, strings.Join(Formats, ", "))
		}
	}
	v := &verifier{formats: formats}
	v.dummy = sync.OnceValue(func() string { // made on first use: bcrypt takes a while, more so under -race
		if formats[0] == FormatBcrypt {
			h, _ := bcrypt.GenerateFromPassword([]byte("ficus-dummy-password"), bcrypt.DefaultCost)
			return string(h)
		}
		return djangoHash("ficus-dummy-password", "ficusdummysalt", 600_000)
	})
	return v, nil
}

// verify reports whether pw matches encoded, in constant time for the
// format; errUnknownFormat (wrapped, naming the scheme only) when encoded
// is in no accepted format or asks for more work than allowed.
func (v *verifier) verify(encoded, pw string) (bool, error) {
	if v.accepts(FormatBcrypt) {
		b := strings.TrimPrefix(encoded, "{bcrypt}")
		if len(b) > 4 && b[0] == '$' && b[1] == '2' && strings.ContainsRune("aby", rune(b[2])) && b[3] == '$' {
			cost, err := bcrypt.Cost([]byte(b))
			if err != nil {
				return false, fmt.Errorf("%w: bcrypt: %v", errUnknownFormat, err)
			}
			if cost > maxBcryptCost {
				return false, fmt.Errorf("%w: bcrypt cost %d is over %d", errUnknownFormat, cost, maxBcryptCost)
			}
			return bcrypt.CompareHashAndPassword([]byte(b), []byte(pw)) == nil, nil
		}
	}
	if v.accepts(FormatDjangoPBKDF2) && strings.HasPrefix(encoded, "pbkdf2_sha256$") {
		return verifyDjango(encoded, pw)
	}
	return false, fmt.Errorf("%w (%s; accepted: %s)", errUnknownFormat, scheme(encoded), strings.Join(v.formats, ", "))
}

func (v *verifier) accepts(f string) bool { return slices.Contains(v.formats, f) }

// burn verifies pw against the dummy hash: an unknown or disabled user
// costs what a known one does.
func (v *verifier) burn(pw string) { _, _ = v.verify(v.dummy(), pw) }

func verifyDjango(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return false, fmt.Errorf("%w: pbkdf2_sha256: not ALGORITHM$ITERATIONS$SALT$HASH", errUnknownFormat)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > maxPBKDF2Iteration {
		return false, fmt.Errorf("%w: pbkdf2_sha256: iterations must be 1 to %d", errUnknownFormat, maxPBKDF2Iteration)
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, fmt.Errorf("%w: pbkdf2_sha256: the hash is not base64 of 16 to 64 bytes", errUnknownFormat)
	}
	got, err := pbkdf2.Key(sha256.New, pw, []byte(parts[2]), iter, len(want))
	if err != nil {
		return false, fmt.Errorf("%w: pbkdf2_sha256: %v", errUnknownFormat, err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// djangoHash encodes pw as Django's PBKDF2-SHA256 hasher does.
func djangoHash(pw, salt string, iter int) string {
	k, _ := pbkdf2.Key(sha256.New, pw, []byte(salt), iter, sha256.Size)
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iter, salt, base64.StdEncoding.EncodeToString(k))
}

// scheme names a stored hash's format by its prefix, never more of it.
func scheme(encoded string) string {
	switch {
	case encoded == "":
		return "empty"
	case encoded[0] == '{':
		if i := strings.IndexByte(encoded, '}'); i > 0 && i < 20 {
			return "prefix " + strconv.Quote(encoded[:i+1])
		}
	case encoded[0] == '$':
		if i := strings.IndexByte(encoded[1:], '$'); i >= 0 && i < 20 {
			return "prefix " + strconv.Quote(encoded[:i+2])
		}
	default:
		if i := strings.IndexAny(encoded, "$:"); i > 0 && i < 20 {
			return "prefix " + strconv.Quote(encoded[:i+1])
		}
	}
	return "unrecognised prefix"
}
