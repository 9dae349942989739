package adapters

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
)

// AdminRoutes adds the inbox admin API to mux (the operational listener):
//
//	GET  /admin/webhooks?adapter=&status=&limit=      newest events, without bodies
//	GET  /admin/webhooks/{adapter}/{id}               one event with headers and body
//	POST /admin/webhooks/{adapter}/{id}/replay        deliver again
//	POST /admin/webhooks/purge?adapter=&older_than=   delete old delivered and dead events
func AdminRoutes(mux *http.ServeMux, st *inbox.Store) {
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
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, err error) {
		if errors.Is(err, inbox.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("GET /admin/webhooks", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 50
		}
		evs, err := st.List(r.Context(), r.URL.Query().Get("adapter"), r.URL.Query().Get("status"), limit)
		if err != nil {
			fail(w, err)
			return
		}
		out := make([]event, 0, len(evs))
		for _, e := range evs {
			out = append(out, view(e))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /admin/webhooks/{adapter}/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, err := st.Get(r.Context(), r.PathValue("adapter"), r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, view(e))
	})
	mux.HandleFunc("POST /admin/webhooks/{adapter}/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Replay(r.Context(), r.PathValue("adapter"), r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
	})
	mux.HandleFunc("POST /admin/webhooks/purge", func(w http.ResponseWriter, r *http.Request) {
		older, err := time.ParseDuration(r.URL.Query().Get("older_than"))
		if err != nil || older < time.Hour {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "older_than must be a duration of at least 1h"})
			return
		}
		n, err := st.Purge(r.Context(), r.URL.Query().Get("adapter"), time.Now().Add(-older))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"purged": n})
	})
}
