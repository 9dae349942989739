package adapters

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/ops"
)

// AdminRoutes adds the inbox admin API to mux (the operational listener):
//
//	GET  /admin/webhooks?adapter=&status=&limit=      newest events, without bodies
//	GET  /admin/webhooks/{adapter}/{id}               one event with headers and body
//	POST /admin/webhooks/{adapter}/{id}/replay        deliver again
//	POST /admin/webhooks/purge?adapter=&older_than=   delete old delivered and dead events
//
// Errors are written by ops.WriteError: a safe message to the caller, the
// cause to log (nil: not logged).
func AdminRoutes(mux *http.ServeMux, st *inbox.Store, log *slog.Logger) {
	type event struct {
		Adapter    string      `json:"adapter"`
		EventID    string      `json:"event_id"`
		ReceivedAt time.Time   `json:"received_at"`
		Status     string      `json:"status"`
		Attempts   int         `json:"attempts"`
		LastError  string      `json:"last_error,omitempty"`
		Header     http.Header `json:"headers,omitempty"`
		Body       string      `json:"body,omitempty"`
	}
	view := func(e *inbox.Event) event {
		return event{Adapter: e.Adapter, EventID: e.EventID, ReceivedAt: e.ReceivedAt, Status: e.Status, Attempts: e.Attempts,
			LastError: e.LastError, Header: e.Header, Body: string(e.Body)}
	}
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, inbox.ErrNotFound) {
			err = &ops.Error{Status: http.StatusNotFound, Message: "not found", Cause: err}
		}
		ops.WriteError(w, r, log, err)
	}
	mux.HandleFunc("GET /admin/webhooks", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 50
		}
		evs, err := st.List(r.Context(), r.URL.Query().Get("adapter"), r.URL.Query().Get("status"), limit)
		if err != nil {
			fail(w, r, err)
			return
		}
		out := make([]event, 0, len(evs))
		for _, e := range evs {
			out = append(out, view(e))
		}
		ops.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /admin/webhooks/{adapter}/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, err := st.Get(r.Context(), r.PathValue("adapter"), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		ops.WriteJSON(w, http.StatusOK, view(e))
	})
	mux.HandleFunc("POST /admin/webhooks/{adapter}/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Replay(r.Context(), r.PathValue("adapter"), r.PathValue("id")); err != nil {
			fail(w, r, err)
			return
		}
		ops.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
	})
	mux.HandleFunc("POST /admin/webhooks/purge", func(w http.ResponseWriter, r *http.Request) {
		older, err := time.ParseDuration(r.URL.Query().Get("older_than"))
		if err != nil || older < time.Hour {
			fail(w, r, &ops.Error{Status: http.StatusBadRequest, Message: "older_than must be a duration of at least 1h", Cause: err})
			return
		}
		n, err := st.Purge(r.Context(), r.URL.Query().Get("adapter"), time.Now().Add(-older))
		if err != nil {
			fail(w, r, err)
			return
		}
		ops.WriteJSON(w, http.StatusOK, map[string]int64{"purged": n})
	})
}
