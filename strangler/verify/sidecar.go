package verify

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
)

// ScopeRule requires scopes for a path prefix (segment boundaries).
type ScopeRule struct {
	Prefix string
	Scopes []string
}

// ParseScopeRule reads "PREFIX=scope1,scope2".
func ParseScopeRule(s string) (ScopeRule, error) {
	prefix, scopes, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(prefix, "/") {
		return ScopeRule{}, fmt.Errorf("scope rule %q: use /path/prefix=scope1,scope2", s)
	}
	r := ScopeRule{Prefix: strings.TrimSuffix(prefix, "/")}
	for _, sc := range strings.Split(scopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			r.Scopes = append(r.Scopes, sc)
		}
	}
	return r, nil
}

// Sidecar is the zero-trust verifier beside a service: every request needs
// a valid JWT (and the scopes of the longest matching rule) before it is
// forwarded to the service. Bad tokens get 401 or 403, never a 500.
func Sidecar(v *Verifier, upstream *url.URL, rules []ScopeRule) http.Handler {
	sorted := append([]ScopeRule(nil), rules...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i].Prefix) > len(sorted[j].Prefix) })
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upstream); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second, DisableCompression: true},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := routes.NormalizePath(r.URL.EscapedPath())
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		var scopes []string
		lp := strings.ToLower(p)
		for _, rule := range sorted {
			pre := strings.ToLower(rule.Prefix)
			if lp == pre || strings.HasPrefix(lp, pre+"/") || pre == "" {
				scopes = rule.Scopes
				break
			}
		}
		c, status, challenge := v.Check(r, "", scopes)
		if c == nil {
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, http.StatusText(status), status)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}
