// Package bearer is RFC 6750 as ficus speaks it: the token taken from an
// Authorization header (section 2.1), and the section 3 challenge, the
// WWW-Authenticate: Bearer header of every ficus answer that refuses a
// bearer token: the gateway's auth stage, the offline verifier, its echo
// and net/http middleware and the sidecar. One function, so that every
// surface names the same realm and quotes alike. The body of such an
// answer is each surface's own (OAuth2 JSON at the gateway, plain text in
// the verifier).
//
// It imports only the standard library, so any ficus package may use it.
package bearer

import (
	"fmt"
	"strings"
)

// Realm is the realm every ficus challenge names.
const Realm = "ficus"

// Challenge returns the value of a WWW-Authenticate header. code is the
// RFC 6750 error code (invalid_request, invalid_token,
// insufficient_scope), empty for a request that carried no credentials
// (section 3.1: no error then); description and scope are left out when
// empty.
func Challenge(code, description, scope string) string {
	v := `Bearer realm="` + Realm + `"`
	if code != "" {
		v += fmt.Sprintf(`, error=%q`, code)
	}
	if code != "" && description != "" {
		v += fmt.Sprintf(`, error_description=%q`, description)
	}
	if scope != "" {
		v += fmt.Sprintf(`, scope=%q`, scope)
	}
	return v
}

// MaxTokenLen bounds a token Token accepts.
const MaxTokenLen = 8192

// Token returns the token of an Authorization header value with the
// Bearer scheme (any case), or false when there is none or it is not one
// token: empty, longer than MaxTokenLen, or holding a space, tab or comma.
func Token(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" || len(tok) > MaxTokenLen || strings.ContainsAny(tok, " \t,") {
		return "", false
	}
	return tok, true
}
