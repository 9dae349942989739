// Package store defines what the identity provider keeps — clients, users,
// tokens, authorization codes, signing keys and the audit trail — and the
// sentinel errors every store returns. The contracts are declared beside
// their users in package idp (ClientStorage, TokenStorage, ..., composed
// as idp.Storage); the PostgreSQL store (idp/store/postgres) and the
// in-memory store (idp/store/memory) implement them all, and one
// conformance suite (idp/store/storetest) runs against both.
//
// Tokens and secrets are never stored: only their hashes.
package store

import (
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
	// PostLogoutRedirectURIs are where OpenID Connect RP-initiated logout
	// may send the browser back to (exact match).
	PostLogoutRedirectURIs []string
	// SubjectType is the OpenID Connect subject identifier type of the ID
	// tokens and userinfo the client receives: "public" (or "") the user's
	// id, "pairwise" a pseudonym per SectorIdentifier.
	SubjectType string
	// SectorIdentifier is the host pairwise subjects are computed for
	// (default: the host of the client's redirect URIs).
	SectorIdentifier string
	CreatedAt        time.Time
}

// Subject types of a client.
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

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
	// Auth is the OpenID Connect authentication behind a refresh family
	// of an openid login (the ID token re-issued on refresh repeats it);
	// nil otherwise.
	Auth *Authentication
}

// Authentication is how and when a user authenticated for an OpenID
// Connect login: the facts an ID token states.
type Authentication struct {
	// Time is when the user authenticated (auth_time).
	Time time.Time `json:"time"`
	// AMR are the authentication methods (amr), e.g. ["pwd"].
	AMR []string `json:"amr,omitempty"`
	// SessionID is the sid of the IDP browser session the login belongs
	// to ("" without one): never the session cookie or its hash.
	SessionID string `json:"sid,omitempty"`
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
	// Nonce is the OpenID Connect nonce of the authorization request,
	// repeated in the ID token ("" if none).
	Nonce string
	// Auth is the authentication behind the code (nil for a code issued
	// without one).
	Auth      *Authentication
	ExpiresAt time.Time
	UsedAt    time.Time
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

// Session is one browser session of the web session layer (idp/session).
// It never holds a cookie value: ID is the hash of the session cookie's
// value (idp/tokenhash).
type Session struct {
	// ID is the hash of the session cookie's value.
	ID string
	// VisitorID is the hash of the returning-visitor cookie's value, ""
	// if none.
	VisitorID string
	// Level is anonymous, returning or logged_on.
	Level string
	// UserID is the ficus user id: "" while anonymous; for returning, the
	// user last logged on with this visitor cookie ("" if none did).
	UserID         string
	CustomerNumber string
	// LoginAt is zero unless logged_on.
	LoginAt time.Time
	// AMR are the methods the user authenticated with at LoginAt (the
	// OpenID Connect amr claim), e.g. ["pwd"]; nil when unknown.
	AMR       []string
	CreatedAt time.Time
	LastSeen  time.Time
	// IdleExpires is when the session ends unless it is seen again.
	IdleExpires time.Time
	// Expires is the absolute end (logged_on: at most login + 4 h).
	Expires time.Time
	// Attrs are the session attributes the web app set.
	Attrs map[string]string
}

// Live reports whether the session may be used at now: before both its
// idle and its absolute end.
func (s *Session) Live(now time.Time) bool {
	return now.Before(s.IdleExpires) && now.Before(s.Expires)
}

// FederatedLink ties an account at an upstream OpenID Provider, known by
// its (Issuer, Subject), to a ficus user (idp/federation). A pair is
// linked to one user; a user has at most one link per issuer.
type FederatedLink struct {
	Issuer  string
	Subject string
	UserID  string
	// Provider is the configured name of the upstream the link came
	// through (for operators; the pair is what identifies the account).
	Provider string
	// Tokens are the upstream's tokens, sealed with the key-encryption key
	// (AES-256-GCM); nil unless the provider keeps them.
	Tokens    []byte
	CreatedAt time.Time
	LastLogin time.Time
}

// FederatedLogin is a login in progress at an upstream provider: created
// when the browser is sent there, consumed (once) when it comes back. It
// holds no secret: ID is the hash of the handle in the browser's cookie,
// from which the state, nonce and PKCE verifier are derived.
type FederatedLogin struct {
	// ID is the hash of the cookie's handle (idp/tokenhash).
	ID       string
	Provider string
	// Pending is what the login completes (an authorization request or a
	// web session login), encoded by idp/federation.
	Pending   []byte
	ExpiresAt time.Time
}
