package idp

import (
	"context"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/google/uuid"
)

// LegacyUsers checks a password against the legacy system (the monolith)
// for a user who is not a ficus user yet: lazy credential migration. On
// success the IDP creates the ficus user with its own argon2id hash of the
// password just verified, so users move with no password reset.
// Implementations (idp/legacy) must be safe for concurrent use, honour
// ctx, and never log the password.
type LegacyUsers interface {
	// CheckLegacy returns the legacy system's user when username and
	// password are right there; an error wrapping ErrLegacyDenied when
	// they are not (unknown user, wrong password, disabled account);
	// any other error when the legacy system could not answer, which the
	// IDP turns into 503, never into "wrong password".
	CheckLegacy(ctx context.Context, username, password string) (*LegacyUser, error)
}

// ErrLegacyDenied means the legacy system refused the credentials.
var ErrLegacyDenied = errors.New("the legacy system refused the credentials")

// LegacyUser is a user as the legacy system knows it.
type LegacyUser struct {
	// ID is the legacy system's user id; kept as the claim
	// LegacyIDClaim when not empty.
	ID string
	// Username is the legacy system's spelling of the username (say,
	// lower-cased); empty: the one the user typed. The ficus user is
	// created under it.
	Username string
	// CustomerNumber becomes the ficus user's customer number.
	CustomerNumber string
	// Claims are profile claims (name, email, ...) copied into JWTs.
	Claims map[string]any
}

// LegacyIDClaim is the profile claim that holds a migrated user's id in
// the legacy system, so new services can find the monolith's records.
const LegacyIDClaim = "legacy_user_id"

// errLegacyBusy means no legacy check slot came free within HashWait.
var errLegacyBusy = errors.New("idp: every legacy check slot stayed busy")

// migrateUser handles a login of a username that is not a ficus user
// when a legacy system is configured: within the per-address limit of
// failed legacy checks and the bound on concurrent ones, it asks the
// legacy system and, on success, creates the ficus user. A failure costs
// the same argon2id run as a known user's wrong password (the dummy
// check), on top of the legacy round trip.
func (p *Provider) migrateUser(ctx context.Context, username, pw, ip string) (*store.User, error) {
	invalid := ErrInvalidGrant.WithDescription("invalid username or password")
	if len(username) > maxUsername {
		if _, err := p.verifyHash(ctx, p.dummyHash, pw); err != nil {
			return nil, err
		}
		return nil, invalid
	}
	now := p.now()
	addr := "legacy:" + addrKey(ip)
	refused := func(wait int) error {
		return ErrSlowDown.WithDescription("too many failed logins from this address; try again later").WithRetryAfter(wait)
	}
	if blocked, wait := p.legacyLimit.blocked(addr, now); blocked {
		return nil, refused(wait)
	}
	done, ok, wait := p.legacyLimit.admit(addr, now)
	if !ok {
		return nil, refused(wait)
	}
	lu, err := p.checkLegacy(ctx, username, pw)
	done()
	switch {
	case errors.Is(err, ErrLegacyDenied):
		p.legacyLimit.charge(addr, now)
		if _, err := p.verifyHash(ctx, p.dummyHash, pw); err != nil {
			return nil, err
		}
		return nil, invalid
	case errors.Is(err, errLegacyBusy):
		return nil, ErrUnavailable.WithDescription("too many logins in progress; retry later").WithCause(err).
			WithRetryAfter(max(int(p.cfg.HashWait.Round(time.Second)/time.Second), 1))
	case err != nil:
		p.legacyLog.Do(func() {
			p.log.Warn("idp: logins of users not yet migrated fail: the legacy system cannot check them (logged at most every 10s)",
				"error", err.Error())
		})
		return nil, ErrUnavailable.WithDescription("the login service is unavailable; retry later").WithCause(err)
	}

	name := username
	if lu.Username != "" && len(lu.Username) <= maxUsername {
		name = lu.Username
	}
	h, err := p.hash(ctx, pw)
	if err != nil {
		return nil, p.busy()
	}
	claims := make(map[string]any, len(lu.Claims)+1)
	for k, v := range lu.Claims {
		claims[k] = v
	}
	if lu.ID != "" {
		claims[LegacyIDClaim] = lu.ID
	}
	u := &store.User{ID: uuid.NewString(), Username: name, PasswordHash: h, CustomerNumber: lu.CustomerNumber,
		Claims: claims, Enabled: true, CreatedAt: now}
	switch err := p.st.CreateUser(ctx, u); {
	case errors.Is(err, store.ErrExists):
		// A concurrent first login created it, or the legacy system's
		// spelling of the name is a ficus user already: that user's own
		// hash decides, as on any later login.
		u, err := p.checkFicusUser(ctx, name, pw)
		if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			return nil, invalid
		}
		return u, err
	case err != nil:
		return nil, ErrUnavailable.WithCause(err)
	}
	p.audit.add(ctx, store.AuditEvent{At: now, Event: "user_migrated", UserID: u.ID, Outcome: "ok",
		Reason: "first login checked by the legacy system", RemoteIP: ip})
	return u, nil
}

// checkLegacy asks the legacy system within the bound on concurrent
// checks; errLegacyBusy when no slot came free within HashWait.
func (p *Provider) checkLegacy(ctx context.Context, username, pw string) (*LegacyUser, error) {
	if !p.legacySem.TryAcquire(1) {
		wctx, cancel := context.WithTimeout(ctx, p.cfg.HashWait)
		err := p.legacySem.Acquire(wctx, 1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errLegacyBusy
		}
	}
	defer p.legacySem.Release(1)
	lu, err := p.legacy.CheckLegacy(ctx, username, pw)
	if err == nil && lu == nil {
		err = errors.New("idp: the legacy checker returned no user and no error")
	}
	return lu, err
}
