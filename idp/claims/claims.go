// Package claims holds the claims of a ficus access JWT (RFC 9068 plus the
// ficus claims): the IDP mints them, and the gateway's auth stage,
// strangler/verify and the sidecar verify them. It depends on golang-jwt
// only, so that a new service can import it without the IDP.
package claims

import (
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// AccessTokenType is the typ header of a ficus access JWT (RFC 9068 2.1).
const AccessTokenType = "at+jwt"

// SessionTokenType is the typ header of a web session's JPT (idp/session):
// a token for the gateway only, which nothing that takes access tokens
// accepts.
const SessionTokenType = "jpt+jwt"

// Access are the claims of a ficus access JWT. The zero value is an empty
// claim set.
type Access struct {
	jwt.RegisteredClaims
	// ClientID is the OAuth2 client the token was issued to.
	ClientID string `json:"client_id"`
	// Scope is space-separated; empty when the token carries none.
	Scope string `json:"scope,omitempty"`
	// Level is the user level: anonymous, returning or logged_on.
	Level string `json:"level,omitempty"`
	// CustomerNumber is the user's, for user tokens that have one.
	CustomerNumber string `json:"customer_number,omitempty"`
	// DeviceID is the device a client-credentials token was issued for.
	DeviceID string `json:"device_id,omitempty"`
}

// HasScope reports whether the token carries scope s.
func (a *Access) HasScope(s string) bool { return slices.Contains(strings.Fields(a.Scope), s) }

// Put writes the registered claims (iss, sub, aud, exp, iat, jti) and
// client_id, level and scope into m, over whatever m held under those
// names, so that a profile claim never overrides them. A single audience
// is written as a string; an empty Scope removes scope from m.
func (a *Access) Put(m jwt.MapClaims) {
	m["iss"] = a.Issuer
	m["sub"] = a.Subject
	if len(a.Audience) == 1 {
		m["aud"] = a.Audience[0]
	} else {
		m["aud"] = []string(a.Audience)
	}
	if a.ExpiresAt != nil {
		m["exp"] = a.ExpiresAt.Unix()
	}
	if a.IssuedAt != nil {
		m["iat"] = a.IssuedAt.Unix()
	}
	m["jti"] = a.ID
	m["client_id"] = a.ClientID
	m["level"] = a.Level
	if a.Scope != "" {
		m["scope"] = a.Scope
	} else {
		delete(m, "scope")
	}
}
