package strangler

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/ficus-gw/ficus/strangler/clientaddr"
)

// OwnedHeaderPrefix marks headers that only ficus sets for upstreams; a
// client's copies are always removed.
const OwnedHeaderPrefix = "X-Ficus-"

// stripOwned removes the client's copies of headers that ficus owns: any
// X-Ficus-* header and the configured extra names (canonical form).
func stripOwned(h http.Header, extra []string) {
	for k := range h {
		if len(k) >= len(OwnedHeaderPrefix) && strings.EqualFold(k[:len(OwnedHeaderPrefix)], OwnedHeaderPrefix) {
			delete(h, k)
		}
	}
	for _, k := range extra {
		delete(h, k)
	}
}

// edgeForwarding are forwarding headers that a proxy in front of ficus may
// set and that frameworks trust for the client's address, scheme, port or
// path prefix. Ficus sets none of them, so when the peer is not a trusted
// proxy (ficus is the edge) a client's copies are forgeries and go.
// X-Forwarded-For, -Host and -Proto are replaced by ficus's own, and
// Forwarded is always removed (httputil.ReverseProxy's Rewrite does it).
// Client-IP is read by Rails (remote_ip) and PHP frameworks (CodeIgniter);
// X-Forwarded-Protocol is in gunicorn's default secure_scheme_headers;
// Front-End-Https marks HTTPS for CodeIgniter and IIS-era front ends.
var edgeForwarding = []string{
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Forwarded-Protocol", "Front-End-Https",
	"X-Real-Ip", "X-Client-Ip", "Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip",
}

// pathOverrides make some servers (IIS URL Rewrite, Symfony, Laravel) serve
// a path other than the one in the request line. Ficus matched routes and
// their auth policies on the request line, so these are removed from every
// request, from trusted proxies too.
var pathOverrides = []string{"X-Original-Url", "X-Rewrite-Url"}

// stripForgeable removes the forwarding headers a client may forge (h is an
// outbound request's header, canonical keys).
func stripForgeable(h http.Header, trustedPeer bool) {
	for _, k := range pathOverrides {
		delete(h, k)
	}
	if !trustedPeer {
		for _, k := range edgeForwarding {
			delete(h, k)
		}
	}
}

// stripCookies removes the cookies named in names from h's Cookie
// headers (h is an outbound request's header). A Cookie line without one
// of them is left byte for byte as the client sent it; a line with one
// keeps its other cookies in their order, and goes when none is left.
func stripCookies(h http.Header, names []string) {
	lines := h["Cookie"]
	if len(names) == 0 || len(lines) == 0 {
		return
	}
	out := lines[:0:0]
	changed := false
	for _, line := range lines {
		if !hasCookie(line, names) {
			out = append(out, line)
			continue
		}
		var kept []string
		removed := false
		for _, pair := range strings.Split(line, ";") {
			pair = strings.TrimSpace(pair)
			name, _, _ := strings.Cut(pair, "=")
			switch {
			case slices.Contains(names, strings.TrimSpace(name)):
				removed = true
			case pair != "":
				kept = append(kept, pair)
			}
		}
		switch {
		case !removed:
			out = append(out, line)
		case len(kept) > 0:
			out = append(out, strings.Join(kept, "; "))
		}
		changed = changed || removed
	}
	switch {
	case !changed:
	case len(out) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = out
	}
}

// hasCookie reports whether a Cookie line may hold one of names (a cheap
// test that lets most lines pass untouched).
func hasCookie(line string, names []string) bool {
	for _, n := range names {
		if strings.Contains(line, n) {
			return true
		}
	}
	return false
}

// hasOwned reports whether h holds a header that stripOwned removes.
func hasOwned(h http.Header, extra []string) bool {
	for k := range h {
		if len(k) >= len(OwnedHeaderPrefix) && strings.EqualFold(k[:len(OwnedHeaderPrefix)], OwnedHeaderPrefix) {
			return true
		}
	}
	for _, k := range extra {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// validRequestID accepts a client's X-Request-Id when it is short and
// plain; anything else is replaced.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// trusted reports whether the peer at remoteAddr (host:port) is a
// configured trusted proxy, whose X-Forwarded-* headers ficus keeps and
// extends. clientaddr decides, as it does for the adapters and the IDP.
func trusted(remoteAddr string, prefixes []netip.Prefix) bool {
	if len(prefixes) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	return err == nil && clientaddr.New(prefixes).Trusted(ap.Addr())
}
