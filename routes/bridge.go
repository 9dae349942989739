package routes

import (
	"net/url"
	"strings"
	"time"
)

// Bounds of a bridge's durations.
const (
	// DefaultBridgeCacheTTL is a bridge's cache_ttl when unset.
	DefaultBridgeCacheTTL = 10 * time.Second
	// MaxBridgeCacheTTL bounds cache_ttl: a logout on the monolith must
	// reach new services soon.
	MaxBridgeCacheTTL = 5 * time.Minute
	// DefaultWhoamiTimeout is whoami.timeout when unset.
	DefaultWhoamiTimeout = 2 * time.Second
	maxWhoamiTimeout     = 30 * time.Second
)

// reservedClaims are the claims ficus sets itself in a bridged JWT; a
// mapped claim cannot take their names.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"client_id": true, "scope": true, "level": true, "customer_number": true, "device_id": true,
	"src": true, "typ": true, "cnf": true, "act": true, "may_act": true,
}

func (f *File) checkBridge(name string, b *Bridge) Errors {
	var errs Errors
	p := "bridges." + name
	add := func(field, format string, args ...any) { errs = append(errs, f.errAt(p+field, format, args...)) }
	b.name = name
	if b.Cookie != "" && !isToken(b.Cookie) {
		add(".cookie", "invalid cookie name %q", b.Cookie)
	}
	if time.Duration(b.CacheTTL) > MaxBridgeCacheTTL {
		add(".cache_ttl", "must be at most %s (a logout on the monolith reaches new services only when the cached answer expires)", MaxBridgeCacheTTL)
	}
	w := b.Whoami
	if time.Duration(w.Timeout) > maxWhoamiTimeout {
		add(".whoami.timeout", "must be at most %s", maxWhoamiTimeout)
	}
	upName := w.Upstream
	if upName == "" {
		upName = f.Monolith
	}
	up := f.Upstreams[upName]
	if up == nil && w.Upstream != "" {
		add(".whoami.upstream", "unknown upstream %q", w.Upstream)
	}
	if w.Path != "" {
		pu, err := url.Parse(w.Path)
		switch {
		case err != nil || !strings.HasPrefix(w.Path, "/") || strings.HasPrefix(w.Path, "//") || pu.Host != "" || pu.Fragment != "":
			add(".whoami.path", "%q must be a path starting with / (a query is allowed, no host or fragment)", w.Path)
		case up != nil:
			if base, err := url.Parse(up.URL); err == nil {
				b.whoamiURL = strings.TrimSuffix(base.String(), "/") + w.Path
			}
		}
	}
	m := b.Mapping
	checkPointer := func(field, ptr string) {
		if reason := checkJSONPointer(ptr); reason != "" {
			add(".mapping."+field, "%s", reason)
		}
	}
	if m.UserID != "" {
		checkPointer("user_id", m.UserID)
	}
	if m.CustomerNumber != "" {
		checkPointer("customer_number", m.CustomerNumber)
	}
	if m.LoggedOn != nil {
		checkPointer("logged_on", m.LoggedOn.Pointer)
	}
	for _, c := range sortedKeys(m.Claims) {
		switch {
		case !validName(c):
			add(".mapping.claims."+c, "%q is not a valid claim name (lower-case letters, digits, '.', '_', '-')", c)
		case reservedClaims[c]:
			add(".mapping.claims."+c, "claim %q is set by ficus and cannot be mapped", c)
		default:
			checkPointer("claims."+c, m.Claims[c])
		}
	}
	for _, sc := range strings.Fields(b.Scope) {
		if !isToken(sc) {
			add(".scope", "invalid scope %q", sc)
		}
	}
	for _, r := range b.SubjectPrefix {
		if r < 0x21 || r > 0x7e {
			add(".subject_prefix", "must be printable ASCII without spaces")
			break
		}
	}
	if b.LoginURL != "" {
		lu, err := url.Parse(b.LoginURL)
		switch {
		case err != nil:
			add(".login_url", "invalid URL: %v", err)
		case lu.Scheme == "" && lu.Host == "" && strings.HasPrefix(b.LoginURL, "/") && !strings.HasPrefix(b.LoginURL, "//"):
		case (lu.Scheme == "http" || lu.Scheme == "https") && lu.Host != "":
		default:
			add(".login_url", "%q must be a path starting with / or an http(s) URL", b.LoginURL)
		}
	}
	return errs
}

// checkRouteBridge checks what a route's auth says about bridges.
func (f *File) checkRouteBridge(p string, a *Auth) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, f.errAt(p+field, format, args...)) }
	a.bridge = nil
	if a.Policy != "bridge" {
		if a.Bridge != "" {
			add(".auth.bridge", "a bridge needs policy bridge (policy is %q)", a.Policy)
		}
		if a.RequireLogin {
			add(".auth.require_login", "require_login needs policy bridge")
		}
		return errs
	}
	switch {
	case a.Bridge == "":
		add(".auth", "policy bridge needs a bridge (one of the file's bridges)")
	case f.Bridges[a.Bridge] == nil:
		add(".auth.bridge", "unknown bridge %q", a.Bridge)
	default:
		a.bridge = f.Bridges[a.Bridge]
	}
	if len(a.ScopesAll)+len(a.ScopesAny)+len(a.Levels) > 0 {
		add(".auth", "scopes and levels do not apply to policy bridge (use require_login)")
	}
	if a.Client != "" {
		add(".auth.client", "policy bridge takes its client from the bridge")
	}
	return errs
}
