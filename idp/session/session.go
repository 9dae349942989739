// Package session is the web session layer's core: browser sessions held
// by random cookies (only their hashes are stored), their levels
// (anonymous, returning, logged_on) and lifetimes, login and logout
// through the identity provider, revocation on every instance, and the
// JPT — the short, JWT-shaped token a web app receives for its session.
//
// The gateway stage, the cookies on responses and the login/logout
// endpoints live in strangler/session, on top of this package.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/idp/store"
)

// Levels of a session: the same strings as idp/store.
const (
	LevelAnonymous = store.LevelAnonymous
	LevelReturning = store.LevelReturning
	LevelLoggedOn  = store.LevelLoggedOn
)

// Session is one browser session (see store.Session). It never holds a
// cookie value: ID is the hash of the session cookie's value.
type Session = store.Session

// Users is what the session layer needs from the identity provider;
// *idp.Provider satisfies it.
type Users interface {
	// CheckPassword checks a user's credentials (with the provider's login
	// rate limits, lazy migration and audit) and returns the user.
	CheckPassword(ctx context.Context, username, password, remoteIP string) (*store.User, error)
	// GetUser returns the user with this id.
	GetUser(ctx context.Context, id string) (*store.User, error)
	// Audit adds an event to the audit trail.
	Audit(ctx context.Context, e store.AuditEvent)
}

var _ Users = (*idp.Provider)(nil)

// Options configure a Manager. Zero durations take the defaults.
type Options struct {
	// Store keeps sessions and visitors: idp/store/memory and
	// idp/store/postgres implement it.
	Store Storage
	// Users is the identity provider.
	Users Users
	// Keys sign JPTs: a key manager of their own, over its own key
	// storage, never published in the JWKS.
	Keys *idp.KeyManager
	// Issuer is the iss of JPTs.
	Issuer string
	// Audience is the aud of JPTs. Default "ficus-gateway".
	Audience string
	// JPTTTL is a JPT's lifetime. Default 5m.
	JPTTTL time.Duration
	// LoggedOnMax ends a logged-on session this long after login, active
	// or not. Default 4h.
	LoggedOnMax time.Duration
	// Idle ends a session not seen for this long. Default 30m.
	Idle time.Duration
	// AnonymousTTL is the absolute lifetime of a session that is not
	// logged on. Default 24h.
	AnonymousTTL time.Duration
	// VisitorTTL is the lifetime of a returning-visitor cookie, extended on
	// each visit. Default 7 days.
	VisitorTTL time.Duration
	// CacheTTL bounds how long a looked-up session is kept in process.
	// Default 5s; revocation notices clear entries on every instance.
	CacheTTL time.Duration
	// Notices carry session ends to other instances (the same channel as
	// token revocation). Nil when alone.
	Notices revocation.Notices
	// Logger receives failures. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Errors of the session layer.
var (
	// ErrNoSession: the cookie names no live session (unknown, expired or
	// ended).
	ErrNoSession = errors.New("no such session")
	// ErrLoginFailed wraps the identity provider's error for refused
	// credentials.
	ErrLoginFailed = errors.New("login failed")
	// ErrRateLimited: too many login attempts; see RateLimitError for
	// when to retry.
	ErrRateLimited = errors.New("too many login attempts")
	// ErrInvalidJPT: a JPT that is malformed, forged, expired, or not
	// for this gateway.
	ErrInvalidJPT = errors.New("invalid JPT")
)

// RateLimitError refuses a login attempt over the rate limits;
// errors.Is(err, ErrRateLimited) holds for it.
type RateLimitError struct {
	// RetryAfter is how long to wait before trying again.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s: retry after %s", ErrRateLimited, e.RetryAfter)
}

// Is matches ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Storage keeps sessions and visitors. idp/store/memory and
// idp/store/postgres implement it; idp/store/storetest checks both.
type Storage interface {
	// CreateSession stores a new session (store.ErrExists if its ID is
	// taken).
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with this hash, or store.ErrNotFound.
	GetSession(ctx context.Context, hash string) (*Session, error)
	// ReplaceSession deletes the session oldHash and creates ns, at once
	// (store.ErrNotFound if oldHash is gone).
	ReplaceSession(ctx context.Context, oldHash string, ns *Session) error
	// TouchSession records that a session was seen.
	TouchSession(ctx context.Context, hash string, lastSeen, idleExpires time.Time) error
	// UpdateSessionAttrs replaces a session's attributes.
	UpdateSessionAttrs(ctx context.Context, hash string, attrs map[string]string) error
	// DeleteSession deletes a session (no error if it is gone).
	DeleteSession(ctx context.Context, hash string) error
	// DeleteUserSessions deletes every session of a user and returns their
	// hashes.
	DeleteUserSessions(ctx context.Context, userID string) ([]string, error)
	// PutVisitor stores or replaces a returning visitor.
	PutVisitor(ctx context.Context, hash, userID string, expires time.Time) error
	// GetVisitor returns the user of a live visitor ("" if not yet known by
	// a login), or store.ErrNotFound.
	GetVisitor(ctx context.Context, hash string, now time.Time) (userID string, err error)
	// DeleteExpiredSessions deletes up to limit sessions (and visitors)
	// expired at now, and returns how many it deleted.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
}
