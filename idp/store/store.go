// Package store defines what the identity provider keeps — clients, users,
// tokens, authorization codes, signing keys and the audit trail — and the
// Store contract that the PostgreSQL store (idp/store/postgres) and the
// in-memory store (idp/store/memory) both implement. One conformance suite
// (idp/store/storetest) runs against both.
//
// Tokens and secrets are never stored: only their hashes.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every Store returns for the same conditions.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrTokenUsed is returned by RotateRefresh for a refresh token that was
	// already exchanged; the token's record comes with it.
	ErrTokenUsed = errors.New("refresh token already used")
	// ErrInactive is returned for a token or code that is revoked, used or
	// expired.
	ErrInactive = errors.New("inactive")
)

// Token kinds.
const (
	KindAccess  = "access"
	KindRefresh = "refresh"
)

// User levels.
const (
	LevelAnonymous = "anonymous"
	LevelReturning = "returning"
	LevelLoggedOn  = "logged_on"
)

// Client is an OAuth2 client.
type Client struct {
	ID   string
	Name string
	// Secrets are the hashes of the valid secrets: the current one, and a
	// rotated-out one until its ExpiresAt. Empty for public clients.
	Secrets []Secret
	// Grants the client may use (grant_type values, plus "introspection"
	// for calling the introspection endpoint).
	Grants       []string
	Scopes       []string
	RedirectURIs []string
	// Audiences the client may ask JWTs for (token exchange).
	Audiences []string
	// FirstParty clients may use the password grant.
	FirstParty bool
	// Lifetimes; zero takes the provider's defaults.
	AccessTTL           time.Duration
	LoggedOnRefreshTTL  time.Duration
	ReturningRefreshTTL time.Duration
	CreatedAt           time.Time
}

// Public reports whether the client has no secret (PKCE only).
func (c *Client) Public() bool { return len(c.Secrets) == 0 }

// Secret is one hashed client secret.
type Secret struct {
	// Hash is an encoded argon2id hash.
	Hash string
	// ExpiresAt ends a rotated-out secret's grace period; zero for the
	// current secret.
	ExpiresAt time.Time
}

// User is an end user.
type User struct {
	ID             string
	Username       string
	PasswordHash   string
	CustomerNumber string
	// Claims are profile claims copied into JWTs (e.g. name, email).
	Claims    map[string]any
	Enabled   bool
	CreatedAt time.Time
}

// Token is an issued access or refresh token, known by its hash.
type Token struct {
	Hash     string
	Kind     string
	ClientID string
	// UserID is empty for application (client-credentials) tokens.
	UserID string
	Scope  string
	Level  string
	// FamilyID groups a login's refresh tokens and the access tokens they
	// produced; reuse of a refresh token revokes the family.
	FamilyID  string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AbsoluteExpiresAt caps a refresh family (login + 4 h for logged-on,
	// the returning cap otherwise).
	AbsoluteExpiresAt time.Time
	RevokedAt         time.Time
	// UsedAt is when a refresh token was exchanged.
	UsedAt time.Time
	// Extra holds claims of the grant (for example a device id).
	Extra map[string]string
}

// Active reports whether the token can be used at now.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && t.UsedAt.IsZero() && now.Before(t.ExpiresAt)
}

// AuthCode is an authorization code, known by its hash; single use.
type AuthCode struct {
	Hash                string
	ClientID            string
	UserID              string
	RedirectURI         string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	ExpiresAt           time.Time
	UsedAt              time.Time
}

// SigningKey is one JWT signing key.
type SigningKey struct {
	ID  string
	Alg string
	// Private is the PKCS#8 DER private key, sealed with the key-encryption
	// key when one is configured.
	Private []byte
	Sealed  bool
	// CreatedAt is when it was generated and published in the JWKS.
	CreatedAt time.Time
	// ActiveAt is when it starts signing (after caches have seen it).
	ActiveAt time.Time
	// RetiredAt is when a newer key took over signing (zero while current).
	RetiredAt time.Time
	// ExpiresAt is when it leaves the JWKS: every JWT it signed has expired.
	ExpiresAt time.Time
}

// AuditEvent is one row of the audit trail. It never holds a token or a
// secret.
type AuditEvent struct {
	At       time.Time
	Event    string // token_issued, token_refreshed, token_revoked, auth_failed, refresh_reuse, ...
	ClientID string
	UserID   string
	Grant    string
	Outcome  string // ok, denied, error
	Reason   string
	RemoteIP string
}

// Store is everything the identity provider keeps. Every method takes ctx
// first; implementations are safe for concurrent use.
type Store interface {
	CreateClient(ctx context.Context, c *Client) error // ErrExists
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]*Client, error)
	DeleteClient(ctx context.Context, id string) error
	SetClientSecrets(ctx context.Context, id string, secrets []Secret) error

	CreateUser(ctx context.Context, u *User) error // ErrExists (username)
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByName(ctx context.Context, username string) (*User, error)
	SetUserPassword(ctx context.Context, id, hash string) error
	SetUserEnabled(ctx context.Context, id string, enabled bool) error

	// InsertTokens stores tokens atomically (all or none).
	InsertTokens(ctx context.Context, ts ...*Token) error
	// GetToken returns a token by hash, active or not (ErrNotFound).
	GetToken(ctx context.Context, hash string) (*Token, error)
	// RotateRefresh exchanges the refresh token with hash atomically: it
	// marks it used and stores what issue returns, in one step, so that of
	// two concurrent calls exactly one succeeds. A token already used yields
	// ErrTokenUsed with its record; a revoked or expired one ErrInactive.
	// issue runs inside the atomic step: it must not call the store.
	RotateRefresh(ctx context.Context, hash string, now time.Time, issue func(old *Token) ([]*Token, error)) (*Token, error)
	// RevokeToken revokes one token; RevokeFamily, RevokeUser and
	// EvictOldest revoke groups. Each returns the hashes it revoked (for
	// cache invalidation), including already-expired ones only when still
	// stored.
	RevokeToken(ctx context.Context, hash string, now time.Time) error
	RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]string, error)
	RevokeUser(ctx context.Context, userID string, now time.Time) ([]string, error)
	// EvictOldest revokes a user's oldest live refresh families beyond keep.
	EvictOldest(ctx context.Context, userID string, keep int, now time.Time) ([]string, error)

	CreateCode(ctx context.Context, c *AuthCode) error
	// ConsumeCode marks a code used and returns it; a used or expired code
	// yields ErrInactive (with the record, so the caller can revoke what it
	// produced).
	ConsumeCode(ctx context.Context, hash string, now time.Time) (*AuthCode, error)

	PutKey(ctx context.Context, k *SigningKey) error
	ListKeys(ctx context.Context) ([]*SigningKey, error)

	Audit(ctx context.Context, events ...AuditEvent) error

	// DeleteExpired removes up to batch tokens and codes that expired before
	// before, returning how many went.
	DeleteExpired(ctx context.Context, before time.Time, batch int) (int, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}
