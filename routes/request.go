package routes

import (
	"net/http"
	"net/url"
	"strings"
)

// WithPath returns r with the escaped path p, a result of NormalizePath,
// in place of its own: a shallow copy whose URL is new, or r itself when
// its path is p already. Handlers that decide by the normalised path pass
// this copy on, so that what they decided on is what the next handler
// sees.
func WithPath(r *http.Request, p string) *http.Request {
	if p == r.URL.EscapedPath() {
		return r
	}
	u := *r.URL
	u.RawPath = p
	u.Path, _ = url.PathUnescape(p) // p comes from NormalizePath: valid escapes
	r = r.WithContext(r.Context())
	r.URL = &u
	return r
}

// StripH2CUpgrade drops a client's request to switch to HTTP/2 in clear
// text (Upgrade: h2c) from h, an outbound request's header, as a server
// that does not offer h2c ignores it (RFC 9113 removed the upgrade; ficus
// never offers it). Passed on, an upstream that accepts it would answer
// 101 and the client's connection would become a raw tunnel to it, past
// every route, auth policy, scope rule and rate limit after the first
// request (h2c smuggling). The request goes on as an ordinary one.
// HTTP2-Settings, which only that upgrade uses, goes too. Other upgrades
// (WebSocket) are untouched.
func StripH2CUpgrade(h http.Header) {
	delete(h, "Http2-Settings")
	for _, v := range h["Upgrade"] {
		for _, tok := range strings.Split(v, ",") {
			if p, _, _ := strings.Cut(strings.TrimSpace(tok), "/"); strings.EqualFold(p, "h2c") {
				delete(h, "Upgrade")
				delete(h, "Connection")
				return
			}
		}
	}
}
