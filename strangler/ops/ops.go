// Package ops holds what the handlers of the operational listener share:
// the one way the admin API writes its answers and errors, and the
// readiness rule of a running process. The admin API never sends a raw
// error: a caller gets a status and a safe message, the cause goes to the
// log.
package ops

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Error is an admin-API error. Status and Message are sent to the caller;
// Cause is only logged.
type Error struct {
	// Status is the HTTP status; 0 means 500.
	Status int
	// Message is safe to show the caller; empty means the status text.
	Message string
	// Cause, if set, is logged with the request, never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// WriteError renders err as the admin API's error answer, a JSON object
// {"error": message}: an *Error (found with errors.As) with its status and
// message, any other error as 500 "internal error". The cause is logged to
// log (at ERROR for a 5xx, DEBUG otherwise; nil logs nothing), never sent.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := &Error{Status: http.StatusInternalServerError, Message: "internal error", Cause: err}
	var ae *Error
	if errors.As(err, &ae) {
		e = ae
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if log != nil && e.Cause != nil {
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "admin API request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "error", e.Cause.Error())
	}
	WriteJSON(w, status, map[string]string{"error": msg})
}

// WriteJSON writes v as the JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
