package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
)

// CSRF protection of state-changing requests, in the order a browser
// gives evidence: Sec-Fetch-Site, else Origin, both judged by the
// standard library's http.CrossOriginProtection (same-origin, or an
// allowed origin; a same-site request from a sibling host is cross-origin
// and refused unless its origin is allowed), else the session's CSRF
// token in X-CSRF-Token (or, at the login and logout endpoints, the
// csrf_token form field).

// CSRFHeader is the request header in which a page's script echoes the
// session's CSRF token.
const CSRFHeader = "X-CSRF-Token"

var (
	errCrossOrigin = errors.New("a cross-origin request may not change state here (Sec-Fetch-Site or Origin names another site)")
	errNoEvidence  = errors.New("a request that shows no origin (no Sec-Fetch-Site, no Origin) needs the session's CSRF token in " + CSRFHeader)
)

// checkCSRF decides whether a state-changing request may go on. cookie is
// the request's live session cookie ("" for none) and formToken the
// csrf_token field of a form the endpoint has read. noAmbient admits a
// request that shows no origin at all when it carries no session either:
// without a cookie, nothing of the user's can be abused.
func (st *Stage) checkCSRF(r *http.Request, cookie, formToken string, noAmbient bool) error {
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		if st.cop.Check(r) != nil {
			return errCrossOrigin
		}
		return nil
	}
	if noAmbient {
		return nil
	}
	tok := r.Header.Get(CSRFHeader)
	if tok == "" {
		tok = formToken
	}
	if cookie != "" && tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(csrfToken(cookie))) == 1 {
		return nil
	}
	return errNoEvidence
}

// refuseCSRF answers 403 and counts the refusal.
func (st *Stage) refuseCSRF(w http.ResponseWriter, r *http.Request, err error, where string) {
	st.metrics.csrf.WithLabelValues(where).Inc()
	st.o.Logger.Info("state-changing request refused (CSRF)", "path", r.URL.Path, "method", r.Method,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "reason", err.Error())
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "csrf", "error_description": err.Error()})
}

// csrfToken is the session's CSRF token: an HMAC of a fixed label keyed
// by the session cookie's value. It is the same on every instance, stored
// nowhere, cannot be computed without the cookie, and changes when the
// session id does (at login).
func csrfToken(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("ficus csrf token v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
