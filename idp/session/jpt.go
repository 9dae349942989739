package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp/claims"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// JPTType is the typ header of a JPT. Nothing that accepts access JWTs
// (typ at+jwt) accepts it, and its keys are never in the JWKS.
const JPTType = claims.SessionTokenType

// maxJPTLen bounds the JPT an anonymous caller can make ficus parse.
const maxJPTLen = 16 << 10

// unknownKeyReloadEvery bounds the key reloads a JPT signed by an unknown key can
// cause (a key another instance made at the same start, not yet loaded).
const unknownKeyReloadEvery = 10 * time.Second

// Claims are the claims of a JPT: the registered ones (sub is the user
// id, or the session's anonymous subject) and the session's context.
type Claims struct {
	jwt.RegisteredClaims
	// SID is the session's hash ID (Session.ID), never the cookie.
	SID string `json:"sid"`
	// Level is anonymous, returning or logged_on.
	Level          string `json:"level"`
	CustomerNumber string `json:"customer_number,omitempty"`
	// LoginTime is the login's time (seconds since the epoch), for
	// logged-on sessions.
	LoginTime int64             `json:"login_time,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}

// issuedJPT is a JPT kept for reuse.
type issuedJPT struct {
	jpt string
	exp time.Time
}

// Subject returns the sub of the JPTs of s: its user, or for a session
// nobody is known by, an anonymous subject derived from its hash ID.
func Subject(s *Session) string {
	if s.UserID != "" {
		return s.UserID
	}
	return "anon:" + s.ID[:min(len(s.ID), 32)]
}

// JPT returns a JPT for s, signed with the JPT keys, for Audience: it
// lives JPTTTL at most (never past the session's end) and is handed out
// again until 30 seconds before it expires, unless the session changed.
func (m *Manager) JPT(ctx context.Context, s *Session) (jpt string, exp time.Time, err error) {
	now := m.now()
	if c, ok := m.jpts.GetIfPresent(s.ID); ok && now.Before(c.exp.Add(-jptReuseMargin)) {
		return c.jpt, c.exp, nil
	}
	end := m.end(s)
	if !now.Before(end) {
		return "", time.Time{}, ErrNoSession
	}
	// A JPT is not extended by activity: it ends at the latest end the
	// session could reach, its absolute end.
	exp = minTime(now.Add(m.o.JPTTTL), m.absoluteEnd(s)).Truncate(time.Second)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: m.o.Issuer, Subject: Subject(s), Audience: jwt.ClaimStrings{m.o.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: uuid.NewString()},
		SID: s.ID, Level: s.Level, CustomerNumber: s.CustomerNumber, Attrs: s.Attrs,
	}
	if !s.LoginAt.IsZero() {
		c.LoginTime = s.LoginAt.Unix()
	}
	epoch := m.epoch.Load()
	if jpt, err = m.o.Keys.Sign(c, JPTType); err != nil {
		return "", time.Time{}, fmt.Errorf("session: signing a JPT: %w", err)
	}
	if m.epoch.Load() == epoch {
		m.jpts.Set(s.ID, issuedJPT{jpt: jpt, exp: exp})
	}
	return jpt, exp, nil
}

// VerifyJPT checks a JPT — a JPT key's signature with that key's algorithm
// only (no none, no HMAC), typ jpt+jwt, iss, aud and exp — and returns its
// session, which must still be live: the JPT of a session that ended is
// refused at once. Errors: ErrInvalidJPT, ErrNoSession, or a store
// failure.
func (m *Manager) VerifyJPT(ctx context.Context, jpt string) (*Session, error) {
	if len(jpt) > maxJPTLen {
		return nil, fmt.Errorf("%w: too long", ErrInvalidJPT)
	}
	var c Claims
	t, err := m.parse(ctx, jpt, &c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJPT, err)
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, JPTType) {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrInvalidJPT, typ, JPTType)
	}
	if c.SID == "" {
		return nil, fmt.Errorf("%w: no session", ErrInvalidJPT)
	}
	s, err := m.lookupHash(ctx, c.SID)
	if err != nil {
		return nil, err
	}
	if c.Subject != Subject(s) || c.Level != s.Level {
		// The session changed hands or level since (a new JPT says so).
		return nil, ErrNoSession
	}
	return s, nil
}

// parse parses and checks a JPT, reloading the keys (at most every
// unknownKeyReloadEvery) when its key is unknown: another instance may have made
// it moments ago.
func (m *Manager) parse(ctx context.Context, raw string, c *Claims) (*jwt.Token, error) {
	k := m.o.Keys
	opts := []jwt.ParserOption{jwt.WithValidMethods(k.Algorithms()), jwt.WithIssuer(m.o.Issuer), jwt.WithAudience(m.o.Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5 * time.Second), jwt.WithTimeFunc(m.now)}
	t, err := jwt.ParseWithClaims(raw, c, k.Keyfunc, opts...)
	if err == nil || !errors.Is(err, jwt.ErrTokenUnverifiable) || !m.knownKidMissing(raw) {
		return t, err
	}
	last := m.lastKeyReload.Load()
	now := time.Now().UnixNano()
	if now-last < int64(unknownKeyReloadEvery) || !m.lastKeyReload.CompareAndSwap(last, now) {
		return t, err
	}
	if rerr := k.Reload(ctx); rerr != nil {
		m.log.Warn("reloading the JPT keys", "error", rerr.Error())
		return t, err
	}
	*c = Claims{}
	return jwt.ParseWithClaims(raw, c, k.Keyfunc, opts...)
}

// knownKidMissing reports whether raw names a kid the key manager does not
// hold.
func (m *Manager) knownKidMissing(raw string) bool {
	t, _, err := jwt.NewParser().ParseUnverified(raw, &jwt.RegisteredClaims{})
	if err != nil {
		return false
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return false
	}
	for _, k := range m.o.Keys.Keys() {
		if k.ID == kid {
			return false
		}
	}
	return true
}
