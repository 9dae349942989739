package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/labstack/echo/v4"
	"github.com/maypok86/otter/v2"
	"golang.org/x/oauth2"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Storage is what federated logins keep: the links of upstream accounts
// to users, the logins in progress, and the users themselves.
// idp/store/memory and idp/store/postgres implement it.
type Storage interface {
	// GetFederatedLink returns the link of (issuer, subject);
	// store.ErrNotFound if there is none.
	GetFederatedLink(ctx context.Context, issuer, subject string) (*store.FederatedLink, error)
	// CreateFederatedLink stores a link; store.ErrExists when the pair is
	// linked already or the user has a link at that issuer,
	// store.ErrNotFound when the user does not exist.
	CreateFederatedLink(ctx context.Context, l *store.FederatedLink) error
	// TouchFederatedLink records a login through a link and replaces its
	// kept tokens (nil: none); store.ErrNotFound if there is no link.
	TouchFederatedLink(ctx context.Context, issuer, subject string, at time.Time, tokens []byte) error
	// UsersByEmail returns at most limit users whose email claim is email,
	// compared without case, oldest first.
	UsersByEmail(ctx context.Context, email string, limit int) ([]*store.User, error)
	// SetUserClaims replaces a user's profile claims; store.ErrNotFound if
	// there is no such user.
	SetUserClaims(ctx context.Context, id string, claims map[string]any) error
	// CreateFederatedLogin stores a login in progress; store.ErrExists if
	// its id is taken.
	CreateFederatedLogin(ctx context.Context, l *store.FederatedLogin) error
	// ConsumeFederatedLogin removes a login in progress and returns it:
	// store.ErrNotFound when there is none (never made, or used already),
	// store.ErrInactive (with the record) when it had expired at now.
	ConsumeFederatedLogin(ctx context.Context, id string, now time.Time) (*store.FederatedLogin, error)

	CreateUser(ctx context.Context, u *store.User) error
	GetUser(ctx context.Context, id string) (*store.User, error)
	SetUserEnabled(ctx context.Context, id string, enabled bool) error
}

// IDP is what federation needs of the identity provider (idp.Provider):
// to re-check and complete an authorization request and to audit.
type IDP interface {
	ValidateAuthorize(ctx context.Context, q map[string][]string) (*idp.AuthorizeRequest, error)
	CompleteLogin(c echo.Context, ar *idp.AuthorizeRequest, a idp.Authenticated) error
	Audit(ctx context.Context, e store.AuditEvent)
}

// SessionLogin logs a browser into a web session after a federated login
// (strangler/session.Stage): it answers the request itself, with the
// session cookie and a redirect to returnTo (checked there).
type SessionLogin interface {
	LoginFederated(w http.ResponseWriter, r *http.Request, u *store.User, amr []string, returnTo string)
}

// Options wire a Federation.
type Options struct {
	// Config lists the upstreams. Validated by New.
	Config Config
	// Secret resolves a client_secret reference. Required when a provider
	// has one.
	Secret func(ref string) (string, error)
	// Store keeps links, logins in progress and users. Required.
	Store Storage
	// IDP completes authorization requests and audits. Required.
	IDP IDP
	// BaseURL is ficus's public base URL, the IDP's issuer: the redirect
	// URI registered at an upstream is BaseURL/oauth2/federation/NAME/callback.
	// Required.
	BaseURL string
	// KEK (32 bytes) seals kept upstream tokens; required when a provider
	// keeps them.
	KEK []byte
	// ClientAddr returns a request's client address (the per-address
	// limit of starts). Default: the socket peer.
	ClientAddr func(r *http.Request) string
	// Transport carries the calls to upstreams. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives operational events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Federation is the federated login of one process. Safe for concurrent
// use.
type Federation struct {
	o         Options
	ups       []*upstream
	byName    map[string]*upstream
	ttl       time.Duration
	secure    bool
	log       *slog.Logger
	starts    *otter.Cache[string, *rate.Limiter]
	startRate rate.Limit
	startMax  int

	mu       sync.RWMutex
	sessions SessionLogin
}

// upstream is one configured provider and what discovery found.
type upstream struct {
	cfg      ProviderConfig
	secret   string
	redirect string
	client   *http.Client
	timeout  time.Duration
	inFlight *semaphore.Weighted
	now      func() time.Time

	// authURL is the discovered authorization endpoint, for the login
	// page's form-action (read without waiting for a discovery).
	authURL atomic.Pointer[string]

	mu        sync.Mutex // serialises discovery
	found     *discovered
	foundAt   time.Time
	failedAt  time.Time
	failure   error
	claimsMap map[string]string
}

// discovered is an upstream's discovery document, made usable.
type discovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// Upstream names and Buttons: the login page's view of a provider.

// Upstreams returns the providers in their configured order, for the
// login page's buttons.
func (f *Federation) Upstreams() []idp.Upstream {
	out := make([]idp.Upstream, 0, len(f.ups))
	for _, u := range f.ups {
		out = append(out, idp.Upstream{Name: u.cfg.Name, DisplayName: u.cfg.DisplayName, Origins: u.origins()})
	}
	return out
}

// New returns the federated login of o.Config; nil and no error when it
// has no providers. Nothing is fetched yet: each upstream's discovery
// document is read on its first login and cached.
func New(o Options) (*Federation, error) {
	if len(o.Config.Providers) == 0 {
		return nil, nil
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil || o.IDP == nil || o.BaseURL == "" {
		return nil, errors.New("federation: a store, the identity provider and the base URL are required")
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("federation: the base URL %q is not an absolute URL", o.BaseURL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClientAddr == nil {
		o.ClientAddr = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	f := &Federation{o: o, byName: map[string]*upstream{}, ttl: o.Config.LoginTTL.Std(defaultLoginTTL), secure: base.Scheme == "https", log: o.Logger}
	starts := o.Config.StartsPerMinute
	if starts == 0 {
		starts = defaultStarts
	}
	f.startRate, f.startMax = rate.Limit(starts/60), max(int(starts), 1)
	f.starts = otter.Must(&otter.Options[string, *rate.Limiter]{MaximumSize: 100_000,
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](2 * time.Minute)})
	for _, pc := range o.Config.Providers {
		u := &upstream{cfg: pc, now: o.Now, redirect: base.JoinPath("/oauth2/federation", pc.Name, "callback").String()}
		if u.cfg.DisplayName == "" {
			u.cfg.DisplayName = pc.Name
		}
		if pc.ClientSecret != "" {
			if o.Secret == nil {
				return nil, fmt.Errorf("federation: provider %s: no way to read its client_secret", pc.Name)
			}
			if u.secret, err = o.Secret(pc.ClientSecret); err != nil {
				return nil, fmt.Errorf("federation: provider %s: client_secret: %w", pc.Name, err)
			}
		}
		if pc.KeepUpstreamTokens && len(o.KEK) != 32 {
			return nil, fmt.Errorf("federation: provider %s: keep_upstream_tokens needs idp.key_encryption_key", pc.Name)
		}
		u.timeout = pc.Timeout.Std(defaultTimeout)
		// Every call to the upstream has a timeout, follows no redirect
		// (a token endpoint that redirects is misconfigured) and reads at
		// most 1 MiB.
		u.client = &http.Client{Timeout: u.timeout, Transport: limitBodies{o.Transport, 1 << 20},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		n := pc.MaxInFlight
		if n == 0 {
			n = defaultMaxInFlight
		}
		u.inFlight = semaphore.NewWeighted(int64(n))
		u.claimsMap = pc.Claims
		if len(u.claimsMap) == 0 {
			u.claimsMap = map[string]string{"email": "email", "name": "name"}
		}
		f.ups = append(f.ups, u)
		f.byName[pc.Name] = u
	}
	return f, nil
}

// SetSessions lets web session logins (strangler/session) go through the
// upstreams; call it before serving. Nil: callbacks of session logins
// are refused.
func (f *Federation) SetSessions(s SessionLogin) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = s
}

func (f *Federation) sessionLogin() SessionLogin {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.sessions
}

// RedirectURI returns the callback URL to register at the upstream name;
// "" for an unknown name.
func (f *Federation) RedirectURI(name string) string {
	if u := f.byName[name]; u != nil {
		return u.redirect
	}
	return ""
}

// Errors of discovery.
var errUpstreamDown = errors.New("the upstream provider cannot be reached")

const (
	// rediscoverAfter is how long a discovery document is used before it
	// is read again (the old one stays while the upstream cannot answer).
	rediscoverAfter = time.Hour
	// retryDiscoveryAfter is how long a failed discovery is answered from
	// memory, so that a down upstream is not asked by every login.
	retryDiscoveryAfter = 5 * time.Second
)

// discover returns the upstream's discovery document, cached; within the
// caller's ctx and the upstream's timeout.
func (u *upstream) discover(ctx context.Context, now time.Time) (*discovered, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.found != nil && now.Sub(u.foundAt) < rediscoverAfter {
		return u.found, nil
	}
	if u.failure != nil && now.Sub(u.failedAt) < retryDiscoveryAfter {
		if u.found != nil {
			return u.found, nil
		}
		return nil, u.failure
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, u.client), u.timeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, u.cfg.Issuer)
	if err != nil {
		u.failure, u.failedAt = fmt.Errorf("%w: discovery: %w", errUpstreamDown, err), now
		if u.found != nil {
			return u.found, nil
		}
		return nil, u.failure
	}
	scopes := []string{oidc.ScopeOpenID}
	want := u.cfg.Scopes
	if len(want) == 0 {
		want = []string{"email", "profile"}
	}
	for _, s := range want {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	d := &discovered{provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: u.cfg.ClientID, Now: u.now}),
		oauth:    oauth2.Config{ClientID: u.cfg.ClientID, ClientSecret: u.secret, Endpoint: p.Endpoint(), RedirectURL: u.redirect, Scopes: scopes}}
	u.found, u.foundAt, u.failure = d, now, nil
	authURL := d.oauth.Endpoint.AuthURL
	u.authURL.Store(&authURL)
	return d, nil
}

// limitBodies is a RoundTripper whose answers' bodies fail past n bytes.
type limitBodies struct {
	rt http.RoundTripper
	n  int64
}

func (l limitBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &limitedBody{rc: resp.Body, left: l.n}
	}
	return resp, err
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err != nil {
			return 0, err // the end (io.EOF), exactly at the bound
		}
		return 0, errors.New("federation: the upstream's answer is too large")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
