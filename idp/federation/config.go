package federation

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
)

// Config is idp.federation: the upstream OpenID Providers a user may sign
// in with.
type Config struct {
	// Providers are the upstreams, each a button on the login page, in
	// this order. Empty: no federated login.
	Providers []ProviderConfig `yaml:"providers"`
	// LoginTTL bounds a login at an upstream, from the button to the
	// callback. Default 10m.
	LoginTTL routes.Duration `yaml:"login_ttl"`
	// StartsPerMinute bounds the federated logins one client address may
	// start, each a row in the store until it is used or expires. Default
	// 30 (burst the same).
	StartsPerMinute float64 `yaml:"starts_per_minute"`
}

// ProviderConfig is one upstream OpenID Provider.
type ProviderConfig struct {
	// Name identifies the upstream in ficus: in its callback path
	// (/oauth2/federation/NAME/callback) and in the usernames of the users
	// it creates. Lower-case letters, digits and - (at most 32). Required.
	Name string `yaml:"name"`
	// DisplayName is the button's text after "Sign in with". Default Name.
	DisplayName string `yaml:"display_name"`
	// Issuer is the upstream's issuer URL, exactly as its discovery
	// document (ISSUER/.well-known/openid-configuration) states it.
	// Required; https (http only for a loopback host).
	Issuer string `yaml:"issuer"`
	// ClientID is ficus's client at the upstream. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is a secret reference (env:NAME or file:PATH) to the
	// client's secret. Empty: a public client (PKCE only).
	ClientSecret string `yaml:"client_secret"`
	// Scopes asked of the upstream. Default openid email profile; openid
	// is always asked.
	Scopes []string `yaml:"scopes"`
	// UserInfo also reads the upstream's userinfo endpoint with the
	// access token and adds its claims to the ID token's (the ID token's
	// win); for upstreams that keep profile claims out of the ID token.
	// Default false.
	UserInfo bool `yaml:"userinfo"`
	// Claims maps ficus profile claims to upstream claims; each is copied
	// onto the user at every login (and removed when the upstream no
	// longer sends it). Default {email: email, name: name}.
	Claims map[string]string `yaml:"claims"`
	// Roles maps a group or role claim to a level claim and scopes.
	Roles Roles `yaml:"roles"`
	// LinkByVerifiedEmail links an upstream account that is linked to no
	// user yet to the one existing user with the same e-mail, when the
	// upstream says the address is verified (email_verified true). See
	// docs/oidc.md for the whole rule. Default false.
	LinkByVerifiedEmail bool `yaml:"link_by_verified_email"`
	// CreateUsers creates a ficus user (username NAME:SUBJECT, no
	// password) for an upstream account that is linked to no user and
	// that no e-mail links. Default false: such a login is refused.
	CreateUsers bool `yaml:"create_users"`
	// KeepUpstreamTokens keeps the upstream's access and refresh tokens,
	// sealed with idp.key_encryption_key (required then), on the user's
	// link. Default false: they are dropped once the login is done.
	KeepUpstreamTokens bool `yaml:"keep_upstream_tokens"`
	// MaxInFlight bounds the callbacks of this upstream being completed at
	// once (code exchange, keys, userinfo); more wait for nothing and get
	// a 503 page. Default 32.
	MaxInFlight int `yaml:"max_in_flight"`
	// Timeout bounds each call to the upstream (discovery, keys, token,
	// userinfo). Default 10s.
	Timeout routes.Duration `yaml:"timeout"`
}

// Roles maps the values of a group or role claim to ficus.
type Roles struct {
	// Claim is the upstream claim holding the user's groups or roles: a
	// string, or a list of strings. Empty: no mapping.
	Claim string `yaml:"claim"`
	// LevelClaim is the ficus profile claim that receives the level of
	// the first entry of Map the user's groups match (removed when none
	// does). Default access_level.
	LevelClaim string `yaml:"level_claim"`
	// Map lists the groups that mean something in ficus, first match
	// first.
	Map []Role `yaml:"map"`
	// Required refuses a login whose groups match no entry of Map.
	Required bool `yaml:"required"`
}

// Role is what one upstream group means in ficus.
type Role struct {
	// Group is the claim's value (an Entra ID group object id, an Okta or
	// Keycloak group name, ...).
	Group string `yaml:"group"`
	// Level is the value of the level claim for members; empty: none.
	Level string `yaml:"level"`
	// Scopes members may be granted. A scope that any entry of Map lists
	// is granted to members of a listing entry only; other scopes are
	// granted as the client's registration allows.
	Scopes []string `yaml:"scopes"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// reservedClaims are the claims of a ficus JWT that a profile claim never
// sets (idp/claims).
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "level", "customer_number",
	"device_id", "sid", "cnf", "act", "azp", "auth_time", "nonce", "amr", "acr"}

const (
	defaultLoginTTL    = 10 * time.Minute
	defaultTimeout     = 10 * time.Second
	defaultMaxInFlight = 32
	defaultStarts      = 30
	defaultLevelClaim  = "access_level"
)

// Validate reports every problem of c, one per line, as
// "providers[i].field: reason".
func (c *Config) Validate() error {
	var errs []error
	add := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("providers[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	if c.LoginTTL < 0 || c.StartsPerMinute < 0 {
		errs = append(errs, errors.New("login_ttl and starts_per_minute must not be negative"))
	}
	seen := map[string]bool{}
	issuers := map[string]bool{}
	for i, p := range c.Providers {
		switch {
		case !nameRE.MatchString(p.Name):
			add(i, "name", "must be 1 to 32 lower-case letters, digits or - (got %q)", p.Name)
		case seen[p.Name]:
			add(i, "name", "%q names two providers", p.Name)
		}
		seen[p.Name] = true
		if why := issuerProblem(p.Issuer); why != "" {
			add(i, "issuer", "%s (got %q)", why, p.Issuer)
		} else if issuers[p.Issuer] {
			add(i, "issuer", "%s is the issuer of two providers (one link per account and issuer)", p.Issuer)
		}
		issuers[p.Issuer] = true
		if p.ClientID == "" {
			add(i, "client_id", "is required")
		}
		if p.ClientSecret != "" && !strings.HasPrefix(p.ClientSecret, "env:") && !strings.HasPrefix(p.ClientSecret, "file:") {
			add(i, "client_secret", "must be a secret reference, env:NAME or file:PATH")
		}
		for _, s := range p.Scopes {
			if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
				add(i, "scopes", "%q is not a scope", s)
			}
		}
		for ficus, up := range p.Claims {
			if slices.Contains(reservedClaims, ficus) {
				add(i, "claims", "%s is a claim ficus sets itself; map the upstream's %s to another name", ficus, up)
			}
			if ficus == "" || up == "" {
				add(i, "claims", "both names of a mapping are required")
			}
		}
		r := p.Roles
		if r.Claim == "" && (len(r.Map) > 0 || r.Required || r.LevelClaim != "") {
			add(i, "roles.claim", "is required with roles.map, roles.required or roles.level_claim")
		}
		if r.Claim != "" && len(r.Map) == 0 {
			add(i, "roles.map", "is required with roles.claim")
		}
		if slices.Contains(reservedClaims, r.LevelClaim) {
			add(i, "roles.level_claim", "%s is a claim ficus sets itself", r.LevelClaim)
		}
		if _, ok := p.Claims[r.levelClaim()]; ok && r.Claim != "" {
			add(i, "roles.level_claim", "%s is also mapped in claims", r.levelClaim())
		}
		for j, m := range r.Map {
			if m.Group == "" {
				add(i, fmt.Sprintf("roles.map[%d].group", j), "is required")
			}
		}
		if p.MaxInFlight < 0 || p.Timeout < 0 {
			add(i, "max_in_flight", "max_in_flight and timeout must not be negative")
		}
	}
	return errors.Join(errs...)
}

func (r Roles) levelClaim() string {
	if r.LevelClaim == "" {
		return defaultLevelClaim
	}
	return r.LevelClaim
}

// issuerProblem says why an issuer URL cannot be used, or "".
func issuerProblem(issuer string) string {
	u, err := urlParse(issuer)
	switch {
	case issuer == "":
		return "is required"
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "must be an absolute URL without query or fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	}
	return "must be https (http only on a loopback host, for tests)"
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func timeUnix(s int64) time.Time { return time.Unix(s, 0) }
