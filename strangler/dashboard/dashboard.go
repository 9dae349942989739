package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
	"golang.org/x/time/rate"
)

// Path is where the dashboard is served; its assets are below it.
const Path = "/dashboard/"

// Source is what the dashboard shows of the running gateway. Every method
// is called once per page and must be safe for concurrent use; a nil
// report means no data (the page says so).
type Source interface {
	// Rules is the live rule set; nil before the first one loads.
	Rules() *routes.File
	// Traffic is each route's requests by side (strangler.Gateway.Traffic).
	Traffic() []strangler.RouteTraffic
	// Breakers is each upstream's breaker state (strangler.Gateway.Breakers).
	Breakers() map[string]string
	// Shadow is the shadow comparison of each shadowed route.
	Shadow() []ShadowReport
	// Health is each route's two sides over the analysis window.
	Health() []RouteHealth
	// Analysis is each analysed route's verdict.
	Analysis() []AnalysisStatus
}

// History is the route store's part of the page: the newest revisions and
// the live one with the instances. *revisions.Store is one.
type History interface {
	History(ctx context.Context, limit int) ([]revisions.Revision, error)
	Status(ctx context.Context, silentAfter time.Duration) (*revisions.Status, error)
}

// Options configure the dashboard.
type Options struct {
	// Source is the gateway's state. Required.
	Source Source
	// History is the route store (routes.source postgres). Nil means the
	// rules come from a file: the page shows no revisions and no buttons,
	// since changes go through the route store.
	History History
	// AdminPath is where the admin API is served on the dashboard's origin
	// (the buttons post to AdminPath + "routes/state" and "routes/rollback").
	// Empty means "/admin/".
	AdminPath string
	// Revisions is how many revisions the page lists. Zero means 20.
	Revisions int
	// SilentAfter is how long an instance may go without a heartbeat
	// before the page calls it silent. Zero means
	// revisions.SilentAfter(0).
	SilentAfter time.Duration
	// PerSecond bounds how many pages are rendered a second (anyone can
	// ask for one); more are refused with 429. Zero means 10, with bursts
	// of twice as many.
	PerSecond float64
	// RoutesPerPage bounds the routes one page shows, with their charts
	// and shadow reports: a rule set of thousands of routes is paged
	// (?page=N) rather than rendered whole. Zero means 200.
	RoutesPerPage int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the causes of what the page cannot show; nil
	// discards.
	Logger *slog.Logger
}

// maxRenders bounds the pages rendered at once (each is held whole in
// memory while it is written); more are refused with 429.
const maxRenders = 2

// maxPage bounds the page number a request may ask for.
const maxPage = 1 << 20

// historyTimeout bounds the route store's queries for one page.
const historyTimeout = 5 * time.Second

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(funcs).ParseFS(assets, "assets/page.html"))

// csp allows the page its own stylesheet, script and fetches, and nothing
// else: no inline script or style, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Dashboard serves the page and its assets under Path. It is safe for
// concurrent use.
type Dashboard struct {
	o       Options
	limiter *rate.Limiter
	// renders holds a token per page being rendered.
	renders chan struct{}
	// static are the assets by name below Path + "static/".
	static map[string][]byte
}

// New returns the dashboard; the Source is required.
func New(o Options) (*Dashboard, error) {
	if o.Source == nil {
		return nil, errors.New("dashboard: no source")
	}
	if o.AdminPath == "" {
		o.AdminPath = "/admin/"
	}
	if !strings.HasPrefix(o.AdminPath, "/") || !strings.HasSuffix(o.AdminPath, "/") {
		return nil, errors.New("dashboard: the admin path must start and end with /")
	}
	if o.Revisions <= 0 {
		o.Revisions = 20
	}
	if o.SilentAfter <= 0 {
		o.SilentAfter = revisions.SilentAfter(0)
	}
	if o.PerSecond <= 0 {
		o.PerSecond = 10
	}
	if o.RoutesPerPage <= 0 {
		o.RoutesPerPage = 200
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{o: o, limiter: rate.NewLimiter(rate.Limit(o.PerSecond), int(2*o.PerSecond)+1), static: map[string][]byte{},
		renders: make(chan struct{}, maxRenders)}
	entries, err := fs.ReadDir(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if d.static[e.Name()], err = fs.ReadFile(assets, "assets/static/"+e.Name()); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ServeHTTP serves GET (and HEAD) of the page at Path and of its assets
// at Path + "static/NAME"; anything else is 404 or 405, a path ficus will
// not normalise or a malformed ?page= 400.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	p, err := routes.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, "malformed path", http.StatusBadRequest)
		return
	}
	rest, ok := strings.CutPrefix(p, Path)
	name, isAsset := strings.CutPrefix(rest, "static/")
	asset, found := d.static[name]
	switch {
	case !ok || (rest != "" && !(isAsset && found)):
		http.NotFound(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard only reads: its buttons call the admin API", http.StatusMethodNotAllowed)
	case rest != "":
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(asset))
	case !d.limiter.Allow():
		h.Set("Retry-After", "1")
		http.Error(w, "too many dashboard requests: try again in a second", http.StatusTooManyRequests)
	default:
		d.page(w, r)
	}
}

// pageNumber is the ?page= of a request: 1 without one, an error when it
// is not a number between 1 and maxPage.
func pageNumber(rawQuery string) (int, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, err
	}
	v := q.Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPage {
		return 0, fmt.Errorf("page %q is not a number from 1 to %d", v, maxPage)
	}
	return n, nil
}

func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	n, err := pageNumber(r.URL.RawQuery)
	if err != nil {
		http.Error(w, "malformed query: "+err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case d.renders <- struct{}{}:
		defer func() { <-d.renders }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many dashboard pages at once: try again in a second", http.StatusTooManyRequests)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	v := d.build(ctx, n)
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, v); err != nil {
		d.o.Logger.Error("dashboard: rendering the page", "err", err)
		http.Error(w, "the dashboard could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
