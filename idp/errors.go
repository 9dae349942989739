package idp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Error is an OAuth 2.0 error (RFC 6749 section 5.2, RFC 6750 section 3.1,
// RFC 7009, RFC 8693). Description goes to the client; Cause is only
// logged. The predeclared values are never modified: With* return copies.
type Error struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, in seconds, is sent with 429 answers.
	RetryAfter int
	Cause      error
}

// The OAuth errors ficus answers with.
var (
	ErrInvalidRequest       = &Error{Code: "invalid_request", Status: http.StatusBadRequest}
	ErrInvalidClient        = &Error{Code: "invalid_client", Status: http.StatusUnauthorized}
	ErrInvalidGrant         = &Error{Code: "invalid_grant", Status: http.StatusBadRequest}
	ErrUnauthorizedClient   = &Error{Code: "unauthorized_client", Status: http.StatusBadRequest}
	ErrUnsupportedGrantType = &Error{Code: "unsupported_grant_type", Status: http.StatusBadRequest}
	ErrInvalidScope         = &Error{Code: "invalid_scope", Status: http.StatusBadRequest}
	ErrInvalidTarget        = &Error{Code: "invalid_target", Status: http.StatusBadRequest}
	ErrAccessDenied         = &Error{Code: "access_denied", Status: http.StatusForbidden}
	ErrInvalidToken         = &Error{Code: "invalid_token", Status: http.StatusUnauthorized}
	ErrInsufficientScope    = &Error{Code: "insufficient_scope", Status: http.StatusForbidden}
	ErrSlowDown             = &Error{Code: "slow_down", Status: http.StatusTooManyRequests}
	ErrServer               = &Error{Code: "server_error", Status: http.StatusInternalServerError}
	ErrUnavailable          = &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable}
	// OpenID Connect Core 3.1.2.6: answers to prompt=none.
	ErrLoginRequired   = &Error{Code: "login_required", Status: http.StatusBadRequest, Description: "the user must sign in"}
	ErrConsentRequired = &Error{Code: "consent_required", Status: http.StatusBadRequest, Description: "the user must approve the request"}
)

func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Cause != nil {
		s += " (" + e.Cause.Error() + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches errors with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithDescription returns a copy with a public description.
func (e *Error) WithDescription(format string, args ...any) *Error {
	c := *e
	c.Description = fmt.Sprintf(format, args...)
	return &c
}

// WithCause returns a copy carrying a private cause (logged, never sent).
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Cause = err
	return &c
}

// WithRetryAfter returns a copy with a Retry-After in seconds.
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	c.RetryAfter = seconds
	return &c
}

// WriteJSON writes the error as the token endpoint does (RFC 6749 5.2).
func (e *Error) WriteJSON(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized && e.Code == "invalid_client" {
		h.Set("WWW-Authenticate", `Basic realm="ficus"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	_ = json.NewEncoder(w).Encode(body)
}

// RedirectQuery encodes the error for an authorization response redirect
// (RFC 6749 4.1.2.1).
func (e *Error) RedirectQuery(state string) url.Values {
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

// asError returns the *Error in err's chain; any other error is a
// server_error carrying err as its cause.
func asError(err error) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	return ErrServer.WithCause(err)
}
