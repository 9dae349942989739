package idp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// ClientRegistry is what client administration changes.
type ClientRegistry interface {
	// CreateClient stores a new client; store.ErrExists if the id is taken.
	CreateClient(ctx context.Context, c *store.Client) error
	// ListClients returns every client.
	ListClients(ctx context.Context) ([]*store.Client, error)
	// DeleteClient removes a client; store.ErrNotFound if there is none.
	DeleteClient(ctx context.Context, id string) error
	// SetClientSecrets replaces a client's secret hashes; store.ErrNotFound
	// if there is no such client.
	SetClientSecrets(ctx context.Context, id string, secrets []store.Secret) error
}

// NewClient describes a client to create.
type NewClient struct {
	ID, Name     string
	Grants       []string
	Scopes       []string
	RedirectURIs []string
	Audiences    []string
	FirstParty   bool
	// Public clients have no secret and must use PKCE.
	Public bool
	// Secret, if set, is used instead of a generated one (demo seeding).
	Secret string
	// Lifetimes for this client; zero takes the provider's defaults.
	AccessTTL, LoggedOnRefreshTTL, ReturningRefreshTTL time.Duration
	// PostLogoutRedirectURIs are where OpenID Connect RP-initiated logout
	// may send the browser back to (exact match; absolute, no fragment).
	PostLogoutRedirectURIs []string
	// SubjectType is public (default) or pairwise: the sub of ID tokens
	// and userinfo is then a pseudonym per sector (see docs/oidc.md).
	SubjectType string
	// SectorIdentifier is the host pairwise subjects are computed for;
	// default the one host of RedirectURIs. Clients sharing it see the
	// same subjects.
	SectorIdentifier string
}

var knownGrants = []string{GrantClientCredentials, GrantPassword, GrantRefreshToken, GrantAuthorizationCode, GrantTokenExchange, PermissionIntrospect}

// CreateClient stores a client and returns its secret, shown once: only
// its argon2id hash is kept.
func (p *Provider) CreateClient(ctx context.Context, n NewClient) (string, error) {
	if !nameOK(n.ID) {
		return "", fmt.Errorf("client id %q: use letters, digits, '.', '_', '-' (at most 64)", n.ID)
	}
	for _, g := range n.Grants {
		if !slices.Contains(knownGrants, g) {
			return "", fmt.Errorf("unknown grant %q (known: %v)", g, knownGrants)
		}
	}
	for _, r := range n.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" {
			return "", fmt.Errorf("redirect URI %q must be absolute, without a fragment", r)
		}
	}
	for _, r := range n.PostLogoutRedirectURIs {
		u, err := url.Parse(r)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" {
			return "", fmt.Errorf("post-logout redirect URI %q must be absolute, without a fragment", r)
		}
	}
	if len(n.PostLogoutRedirectURIs) > 0 && !slices.Contains(n.Grants, GrantAuthorizationCode) {
		return "", errors.New("post-logout redirect URIs are for clients that sign users in (authorization_code)")
	}
	if err := p.checkPairwise(&n); err != nil {
		return "", err
	}
	if n.Public && !slices.Contains(n.Grants, GrantAuthorizationCode) {
		return "", errors.New("a public client must use authorization_code (with PKCE)")
	}
	c := &store.Client{ID: n.ID, Name: n.Name, Grants: n.Grants, Scopes: n.Scopes, RedirectURIs: n.RedirectURIs,
		Audiences: n.Audiences, FirstParty: n.FirstParty, CreatedAt: p.now(),
		AccessTTL: n.AccessTTL, LoggedOnRefreshTTL: n.LoggedOnRefreshTTL, ReturningRefreshTTL: n.ReturningRefreshTTL,
		PostLogoutRedirectURIs: n.PostLogoutRedirectURIs, SubjectType: n.SubjectType, SectorIdentifier: n.SectorIdentifier}
	secret := ""
	if !n.Public {
		secret = n.Secret
		if secret == "" {
			secret = newOpaque(ClientSecretPrefix)
		}
		h, err := p.hash(ctx, secret)
		if err != nil {
			return "", err
		}
		c.Secrets = []store.Secret{{Hash: h}}
	}
	if err := p.st.CreateClient(ctx, c); err != nil {
		return "", err
	}
	return secret, nil
}

// RotateSecret gives a client a new secret; the current one stays valid
// for SecretGrace, so deployments can roll over without failures.
func (p *Provider) RotateSecret(ctx context.Context, id string) (string, error) {
	c, err := p.st.GetClient(ctx, id)
	if err != nil {
		return "", err
	}
	if c.Public() {
		return "", errors.New("a public client has no secret")
	}
	now := p.now()
	secret := newOpaque(ClientSecretPrefix)
	h, err := p.hash(ctx, secret)
	if err != nil {
		return "", err
	}
	secrets := []store.Secret{{Hash: h}}
	for _, s := range c.Secrets {
		if s.ExpiresAt.IsZero() {
			s.ExpiresAt = now.Add(p.cfg.SecretGrace)
		}
		if now.Before(s.ExpiresAt) {
			secrets = append(secrets, s)
		}
	}
	if err := p.st.SetClientSecrets(ctx, id, secrets); err != nil {
		return "", err
	}
	p.forgetClient(id)
	p.audit.add(ctx, store.AuditEvent{At: now, Event: "client_secret_rotated", ClientID: id, Outcome: "ok"})
	return secret, nil
}

// DeleteClient removes a client and revokes every token it was issued:
// they stop working like any revoked token (OnRevoke hears them).
func (p *Provider) DeleteClient(ctx context.Context, id string) error {
	if err := p.st.DeleteClient(ctx, id); err != nil {
		return err
	}
	p.forgetClient(id)
	hashes, err := p.st.RevokeClient(ctx, id, p.now())
	if err != nil {
		return fmt.Errorf("client %s deleted, but its tokens were not revoked: %w", id, err)
	}
	p.revoked(hashes)
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "client_deleted", ClientID: id, Outcome: "ok"})
	return nil
}

func nameOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ListClients returns every client (secret hashes included: never show
// them).
func (p *Provider) ListClients(ctx context.Context) ([]*store.Client, error) {
	return p.st.ListClients(ctx)
}
