package routes

import (
	"net/http"
	"net/url"
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
