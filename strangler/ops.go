package strangler

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpsHandler serves the operational listener: /healthz (the process is
// alive), /readyz (rules are loaded and ready() holds; 503 otherwise, for
// example while draining; the body names the rule set served, its File.Name)
// and /metrics. mux, if not nil, receives the
// routes so callers can add their own (the admin API).
func (g *Gateway) OpsHandler(gatherer prometheus.Gatherer, ready func() bool, mux *http.ServeMux) http.Handler {
	if mux == nil {
		mux = http.NewServeMux()
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !g.Ready() || (ready != nil && !ready()) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		// The rule set served: a file's path, or "revision 7" from the
		// rule store.
		_, _ = w.Write([]byte("ready\nrules: " + g.Rules().Name + "\n"))
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}
