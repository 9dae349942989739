package idp

import (
	"context"
	"errors"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/google/uuid"
)

// UserStorage keeps the end users.
type UserStorage interface {
	// CreateUser stores a new user; store.ErrExists if the username is
	// taken.
	CreateUser(ctx context.Context, u *store.User) error
	// GetUser and GetUserByName return a user; store.ErrNotFound if there
	// is none.
	GetUser(ctx context.Context, id string) (*store.User, error)
	GetUserByName(ctx context.Context, username string) (*store.User, error)
	// SetUserPassword and SetUserEnabled change a user; store.ErrNotFound
	// if there is none.
	SetUserPassword(ctx context.Context, id, hash string) error
	SetUserEnabled(ctx context.Context, id string, enabled bool) error
}

// UserByName returns a user by username; store.ErrNotFound if there is
// none.
func (p *Provider) UserByName(ctx context.Context, username string) (*store.User, error) {
	return p.st.GetUserByName(ctx, username)
}

// checkUser verifies a user's credentials in the same time whether or not
// the user exists in ficus. A username that is not a ficus user is
// checked by the legacy system when one is configured (migrateUser), and
// only then; ip is the caller's address (its limit of failed legacy
// checks).
func (p *Provider) checkUser(ctx context.Context, username, pw, ip string) (*store.User, error) {
	u, err := p.checkFicusUser(ctx, username, pw)
	if errors.Is(err, store.ErrNotFound) {
		if p.legacy != nil {
			return p.migrateUser(ctx, username, pw, ip)
		}
		if _, err := p.verifyHash(ctx, p.dummyHash, pw); err != nil {
			return nil, err
		}
		return nil, ErrInvalidGrant.WithDescription("invalid username or password")
	}
	return u, err
}

// checkFicusUser verifies the credentials of a ficus user; store.ErrNotFound
// (no hash checked) when there is none.
func (p *Provider) checkFicusUser(ctx context.Context, username, pw string) (*store.User, error) {
	u, err := p.st.GetUserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	// A user without a usable password hash (one created by a federated
	// login has none) costs the same argon2id run as a wrong password, so
	// the time taken does not tell such users apart.
	enc, usable := u.PasswordHash, true
	if _, ok := parseHash(enc); !ok {
		enc, usable = p.dummyHash, false
	}
	match, err := p.verifyHash(ctx, enc, pw)
	if err != nil {
		return nil, err
	}
	if !match || !usable || !u.Enabled {
		return nil, ErrInvalidGrant.WithDescription("invalid username or password")
	}
	return u, nil
}

// Logout revokes every token of a user.
func (p *Provider) Logout(ctx context.Context, userID string) error {
	return p.revokeUser(ctx, userID, "logout")
}

func (p *Provider) revokeUser(ctx context.Context, userID, why string) error {
	hashes, err := p.st.RevokeUser(ctx, userID, p.now())
	if err != nil {
		return err
	}
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "tokens_revoked", UserID: userID, Outcome: "ok", Reason: why})
	p.revoked(hashes)
	return nil
}

// SetPassword changes a user's password and revokes all their tokens.
func (p *Provider) SetPassword(ctx context.Context, userID, password string) error {
	h, err := p.hash(ctx, password)
	if err != nil {
		return err
	}
	if err := p.st.SetUserPassword(ctx, userID, h); err != nil {
		return err
	}
	return errors.Join(p.revokeUser(ctx, userID, "password changed"), p.userRevoked(ctx, userID, "password changed"))
}

// SetUserEnabled enables or disables a user; disabling revokes all their
// tokens.
func (p *Provider) SetUserEnabled(ctx context.Context, userID string, enabled bool) error {
	if err := p.st.SetUserEnabled(ctx, userID, enabled); err != nil {
		return err
	}
	if enabled {
		return nil
	}
	return errors.Join(p.revokeUser(ctx, userID, "user disabled"), p.userRevoked(ctx, userID, "user disabled"))
}

// maxUsername is the longest username, in bytes.
const maxUsername = 256

// NewUser describes a user to create.
type NewUser struct {
	Username, Password, CustomerNumber string
	Claims                             map[string]any
}

// CreateUser stores a user with an argon2id password hash and returns its id.
func (p *Provider) CreateUser(ctx context.Context, n NewUser) (string, error) {
	if n.Username == "" || len(n.Username) > maxUsername {
		return "", errors.New("a username of 1 to 256 characters is required")
	}
	if len(n.Password) < 8 {
		return "", errors.New("the password must have at least 8 characters")
	}
	h, err := p.hash(ctx, n.Password)
	if err != nil {
		return "", err
	}
	u := &store.User{ID: uuid.NewString(), Username: n.Username, PasswordHash: h, CustomerNumber: n.CustomerNumber,
		Claims: n.Claims, Enabled: true, CreatedAt: p.now()}
	if err := p.st.CreateUser(ctx, u); err != nil {
		return "", err
	}
	return u.ID, nil
}
