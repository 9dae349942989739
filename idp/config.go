package idp

import (
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Config holds the provider's settings. Zero values take the defaults
// listed on each field.
type Config struct {
	// Issuer is the public base URL (iss of every JWT; endpoints hang off it).
	Issuer string
	// AccessTTL is the access-token lifetime. Default 2h.
	AccessTTL time.Duration
	// LoggedOnRefreshTTL: a logged-on refresh family lives this long from
	// login and is never extended. Default 4h.
	LoggedOnRefreshTTL time.Duration
	// ReturningRefreshTTL: a returning refresh token lives this long and is
	// extended on each use ... Default 168h (1 week).
	ReturningRefreshTTL time.Duration
	// ... up to ReturningRefreshCap from login. Default 2160h (90 days).
	ReturningRefreshCap time.Duration
	// JWTTTL bounds minted JWTs (never beyond the opaque token). Default 5m.
	JWTTTL time.Duration
	// CodeTTL is the authorization-code lifetime, at most 60s. Default 60s.
	CodeTTL time.Duration
	// MaxFamiliesPerUser is the per-user token limit: the oldest login
	// families beyond it are revoked. Default 10.
	MaxFamiliesPerUser int
	// RefreshReuseGrace: a refresh token presented again within this time of
	// its use (a client racing itself) is refused without revoking its
	// family; later reuse revokes the family. Default 2s.
	RefreshReuseGrace time.Duration
	// SecretGrace keeps a rotated-out client secret valid this long.
	// Default 24h.
	SecretGrace time.Duration
	// SecretCacheTTL: after a client secret verified (argon2id, slow by
	// design), its SHA-256 digest is trusted this long in memory so that
	// client-credentials traffic does not pay the slow hash on every
	// request. Default 5m.
	SecretCacheTTL time.Duration
	// TokenCacheTTL keeps looked-up live tokens in memory this long
	// (introspection, token exchange). Revocations through this process
	// take effect at once; others within the TTL. Default 1s; negative
	// disables the cache.
	TokenCacheTTL time.Duration
	// ClientCacheTTL keeps client records in memory this long. Deleting a
	// client or rotating its secret through this process takes effect at
	// once; through another, within the TTL. Default 5s; negative disables.
	ClientCacheTTL time.Duration
	// ClientRate / ClientBurst limit token-endpoint requests per client.
	// Default 200/s, burst 400. Negative ClientRate disables the limit.
	ClientRate  rate.Limit
	ClientBurst int
	// FailureRate / FailureBurst limit failed client authentications per
	// source address. Default 20 per minute, burst 20. Negative
	// FailureRate disables the limit.
	FailureRate  rate.Limit
	FailureBurst int
	// TrustedProxies are the peers whose X-Forwarded-For names the
	// client's address (for the per-address limits and the audit trail).
	// Empty: the socket peer is the client.
	TrustedProxies []netip.Prefix
	// LoginRate / LoginBurst limit password attempts per username and IP.
	// Default 10 per minute, burst 10.
	LoginRate  rate.Limit
	LoginBurst int
	// Hashing is the argon2id cost for new password and secret hashes.
	// Default DefaultHashParams.
	Hashing HashParams
	// HashMemory bounds, in bytes, the memory held by argon2id runs at
	// once (client secrets and passwords checked or hashed, including the
	// dummy check for unknown clients and users). Each run takes its
	// hash's memory cost from this budget; a hash larger than the budget
	// runs alone. Default 128 MiB: two runs at the default 64 MiB.
	HashMemory int64
	// HashWait is how long a check waits for room in HashMemory before it
	// is refused with 503 temporarily_unavailable and a Retry-After.
	// Default 2s.
	HashWait time.Duration
	// AllowPassword enables the password grant at all (still only for
	// first-party confidential clients). Default false.
	AllowPassword bool
	// IDTokenTTL is the lifetime of an OpenID Connect ID token. Default 1h.
	IDTokenTTL time.Duration
	// PairwiseSecret keys the pairwise subject identifiers of clients with
	// subject type pairwise (HMAC-SHA256 of the sector and the user id), at
	// least 32 bytes. Changing it changes every pairwise subject. Empty:
	// pairwise clients cannot be registered.
	PairwiseSecret []byte
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, 2*time.Hour)
	def(&c.LoggedOnRefreshTTL, 4*time.Hour)
	def(&c.ReturningRefreshTTL, 7*24*time.Hour)
	def(&c.ReturningRefreshCap, 90*24*time.Hour)
	def(&c.JWTTTL, 5*time.Minute)
	def(&c.CodeTTL, 60*time.Second)
	def(&c.IDTokenTTL, time.Hour)
	if c.CodeTTL > 60*time.Second {
		c.CodeTTL = 60 * time.Second
	}
	def(&c.RefreshReuseGrace, 2*time.Second)
	def(&c.SecretGrace, 24*time.Hour)
	def(&c.SecretCacheTTL, 5*time.Minute)
	def(&c.TokenCacheTTL, time.Second)
	def(&c.ClientCacheTTL, 5*time.Second)
	if c.Hashing.Time == 0 {
		c.Hashing = DefaultHashParams
	}
	if c.HashMemory <= 0 {
		c.HashMemory = 128 << 20
	}
	def(&c.HashWait, 2*time.Second)
	if c.MaxFamiliesPerUser == 0 {
		c.MaxFamiliesPerUser = 10
	}
	if c.ClientRate == 0 {
		c.ClientRate, c.ClientBurst = 200, 400
	}
	if c.FailureRate == 0 {
		c.FailureRate, c.FailureBurst = rate.Every(3*time.Second), 20
	}
	if c.LoginRate == 0 {
		c.LoginRate, c.LoginBurst = rate.Every(6*time.Second), 10
	}
}
