package strangler

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ficus-gw/ficus/routes"
)

// pathRewrite swaps a literal path prefix, compared as routes match it
// (routes.CutPrefix).
type pathRewrite struct {
	strip, add string
}

func (pr pathRewrite) empty() bool { return pr.strip == "" && pr.add == "" }

// apply maps a public path to the upstream's path.
func (pr pathRewrite) apply(p string) string {
	return swapPrefix(p, strings.TrimSuffix(pr.strip, "/"), strings.TrimSuffix(pr.add, "/"))
}

// reverse maps an upstream path back to the public one.
func (pr pathRewrite) reverse(p string) string {
	if pr.add == "" && pr.strip != "" {
		// Nothing marks a stripped path; a Location without the stripped
		// prefix gets it back only if it is a path of this route.
		return strings.TrimSuffix(pr.strip, "/") + p
	}
	return swapPrefix(p, strings.TrimSuffix(pr.add, "/"), strings.TrimSuffix(pr.strip, "/"))
}

func swapPrefix(p, from, to string) string {
	if from != "" {
		rest, ok := routes.CutPrefix(p, from)
		if !ok {
			return p
		}
		p = rest
	}
	p = to + p
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// joinPath puts an upstream's base path in front of a request path.
func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + p
}

// rewriteResponse maps Location and Set-Cookie of an upstream response back
// to the public host and prefix.
func (tg *target) rewriteResponse(resp *http.Response) error {
	publicHost := resp.Request.Header.Get("X-Forwarded-Host")
	proto := resp.Request.Header.Get("X-Forwarded-Proto")
	if proto == "" {
		proto = "http"
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if nl, ok := tg.rewriteLocation(loc, proto, publicHost); ok {
			resp.Header.Set("Location", nl)
		}
	}
	if cookies := resp.Header["Set-Cookie"]; len(cookies) > 0 {
		for i, line := range cookies {
			c, err := http.ParseSetCookie(line)
			if err != nil {
				continue
			}
			changed := false
			if c.Domain != "" && tg.up.internalHosts[strings.ToLower(strings.TrimPrefix(c.Domain, "."))] {
				c.Domain = tg.cookieDomain
				changed = true
			}
			if c.Path != "" && !tg.path.empty() {
				if np := tg.publicPath(c.Path); np != c.Path {
					c.Path = np
					changed = true
				}
			}
			if changed {
				cookies[i] = c.String()
			}
		}
	}
	return nil
}

func (tg *target) rewriteLocation(loc, proto, publicHost string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", false
	}
	if u.Host != "" {
		if !tg.up.internalHosts[strings.ToLower(u.Host)] && !tg.up.internalHosts[strings.ToLower(u.Hostname())] {
			return "", false // a redirect elsewhere is not ours to touch
		}
		if publicHost == "" {
			return "", false
		}
		u.Scheme, u.Host = proto, publicHost
	} else if !strings.HasPrefix(u.Path, "/") {
		return "", false // relative to the current path: already public
	}
	u.Path = tg.publicPath(u.Path)
	u.RawPath = ""
	return u.String(), true
}

// publicPath maps an upstream path (with its base path) to the public path.
func (tg *target) publicPath(p string) string {
	if base := strings.TrimSuffix(tg.up.url.Path, "/"); base != "" {
		if !strings.HasPrefix(p, base) || (len(p) > len(base) && p[len(base)] != '/') {
			return p
		}
		p = p[len(base):]
		if p == "" {
			p = "/"
		}
	}
	if tg.path.empty() {
		return p
	}
	return tg.path.reverse(p)
}
