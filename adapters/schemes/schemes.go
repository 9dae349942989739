// Package schemes verifies web-hook senders by their own schemes: HMAC
// signatures in each provider's format (Stripe, Standard Webhooks / Svix,
// GitHub, Shopify, Square, GoCardless, Adyen, a generic scheme for banks),
// Ed25519 Standard Webhooks signatures, basic auth and IP allow-lists.
//
// Every scheme takes several secrets at once, so a sender can rotate, and
// compares in constant time. A Verify error wraps one of the reasons below,
// for metrics and for the sender's expected answer.
package schemes

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"time"
)

// Reasons a request is refused.
var (
	ErrMissing   = errors.New("signature missing")
	ErrSignature = errors.New("signature does not match")
	ErrTimestamp = errors.New("timestamp outside the tolerance")
	ErrMalformed = errors.New("signature malformed")
	ErrForbidden = errors.New("sender not allowed")
	// ErrUnavailable: the proof could not be checked now (the sender's
	// keys could not be fetched in time); the sender should retry.
	ErrUnavailable = errors.New("cannot verify now")
)

// Request is what a scheme verifies: the raw body exactly as received.
type Request struct {
	Header http.Header
	Body   []byte
	// RemoteAddr is the client address (after trusted-proxy handling).
	RemoteAddr netip.Addr
	// Now is the time of arrival.
	Now time.Time
}

// Scheme verifies one proof of origin. Verify may do network work (the
// jwt scheme fetches the sender's keys): it returns when ctx ends, and such
// work has a timeout of its own.
type Scheme interface {
	Verify(ctx context.Context, r *Request) error
}

func fail(reason error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", reason, fmt.Sprintf(format, args...))
}

func mac(newHash func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(msg)
	return m.Sum(nil)
}

func hmacSHA256(key, msg []byte) []byte { return mac(sha256.New, key, msg) }

// equal compares in constant time (for equal lengths).
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// within checks a sender timestamp against the tolerance, both ways (a
// clock skewed into the future is refused as well).
func within(ts, now time.Time, tol time.Duration) bool {
	d := now.Sub(ts)
	return d <= tol && d >= -tol
}
