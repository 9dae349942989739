package verify

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
)

// ScopeRule requires scopes below a path prefix. The prefix is written and
// matched exactly like a route's match.prefix: segment boundaries, literal
// segments case-insensitively, {name} segments, ;parameters ignored.
type ScopeRule struct {
	Prefix string
	Scopes []string
}

// ParseScopeRule reads "PREFIX=scope1,scope2".
func ParseScopeRule(s string) (ScopeRule, error) {
	prefix, scopes, ok := strings.Cut(s, "=")
	if !ok {
		return ScopeRule{}, fmt.Errorf("scope rule %q: use /path/prefix=scope1,scope2", s)
	}
	if _, err := routes.CompilePrefixes([]string{prefix}); err != nil {
		return ScopeRule{}, fmt.Errorf("scope rule %q: %w", s, err)
	}
	r := ScopeRule{Prefix: prefix}
	for _, sc := range strings.Split(scopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			r.Scopes = append(r.Scopes, sc)
		}
	}
	return r, nil
}

// Sidecar is the zero-trust verifier beside a service: every request needs
// a valid JWT (and the scopes of the most specific rule whose prefix covers
// its path) before it is forwarded to the service. Bad tokens get 401 or
// 403, never a 500.
//
// The path is normalised and matched by package routes, exactly as the
// gateway does, and the service receives the normalised path: the one the
// rules were applied to. A path that the gateway would refuse gets 400.
// Two rules whose prefixes match the same paths are an error.
func Sidecar(v *Verifier, upstream *url.URL, rules []ScopeRule) (http.Handler, error) {
	return SidecarTLS(v, upstream, rules, nil)
}

// SidecarTLS is Sidecar calling an https service with tc: the CAs it
// trusts, the client certificate the sidecar presents (nil: the system's
// roots, none).
func SidecarTLS(v *Verifier, upstream *url.URL, rules []ScopeRule, tc *tls.Config) (http.Handler, error) {
	prefixes := make([]string, len(rules))
	for i, r := range rules {
		prefixes[i] = r.Prefix
	}
	ps, err := routes.CompilePrefixes(prefixes)
	if err != nil {
		return nil, fmt.Errorf("scope rules: %w", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			routes.StripH2CUpgrade(pr.Out.Header) // no tunnel past the scope rules
		},
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext, TLSHandshakeTimeout: 10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second, DisableCompression: true, TLSClientConfig: tc, ForceAttemptHTTP2: true},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := routes.NormalizePath(r.URL.EscapedPath())
		if err != nil {
			http.Error(w, "ficus sidecar: "+err.Error(), http.StatusBadRequest)
			return
		}
		var scopes []string
		if i := ps.Match(p); i >= 0 {
			scopes = rules[i].Scopes
		}
		c, status, challenge := v.Check(r, "", scopes)
		if c == nil {
			refuse(w, status, challenge)
			return
		}
		proxy.ServeHTTP(w, routes.WithPath(r, p))
	}), nil
}
