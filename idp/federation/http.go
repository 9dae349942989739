package federation

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ficus-gw/ficus/idp"
	"github.com/labstack/echo/v4"
)

// Handler serves the upstreams' callbacks:
//
//	GET /oauth2/federation/NAME/callback
//
// The front door sends it the IDP's paths under /oauth2/federation/.
func (f *Federation) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = f.errorHandler
	e.GET("/oauth2/federation/:name/callback", f.handleCallback)
	return e
}

// BeginAuthorize implements idp.UpstreamLogins: the login page's button
// for the upstream name.
func (f *Federation) BeginAuthorize(c echo.Context, name string, ar *idp.AuthorizeRequest, params url.Values) error {
	u := f.byName[name]
	if u == nil {
		return f.render(c.Response(), c.Request(), refusal(http.StatusBadRequest, nil, "There is no such sign-in provider.", nil), "")
	}
	keep := map[string][]string{}
	for _, k := range idp.AuthorizeParams {
		if v := params.Get(k); v != "" {
			keep[k] = []string{v}
		}
	}
	err := f.begin(c.Request().Context(), c.Response(), c.Request(), u, pending{Kind: kindAuthorize, Params: keep})
	if err != nil {
		return f.render(c.Response(), c.Request(), err, pending{Kind: kindAuthorize, Params: keep}.retryURL())
	}
	return nil
}

// BeginSession sends the browser to the upstream name to log into a web
// session (strangler/session's /auth/login with provider=NAME); returnTo
// is checked by the session layer when the login completes.
func (f *Federation) BeginSession(w http.ResponseWriter, r *http.Request, name, returnTo string) {
	u := f.byName[name]
	if u == nil {
		f.writePage(w, refusal(http.StatusBadRequest, nil, "There is no such sign-in provider.", nil), "/")
		return
	}
	what := pending{Kind: kindSession, ReturnTo: returnTo}
	if err := f.begin(r.Context(), w, r, u, what); err != nil {
		f.writePage(w, err, what.retryURL())
	}
}

// Has reports whether name is a configured upstream.
func (f *Federation) Has(name string) bool { return f.byName[name] != nil }

func (f *Federation) handleCallback(c echo.Context) error {
	u := f.byName[c.Param("name")]
	if u == nil {
		return refusal(http.StatusNotFound, nil, "There is no such sign-in provider.", nil)
	}
	r, w := c.Request(), c.Response()
	ctx := r.Context()
	cb, err := f.take(ctx, w, r, u)
	if err != nil {
		return err
	}
	retry := cb.what.retryURL()
	if e := r.URL.Query().Get("error"); e != "" {
		return f.render(w, r, refusal(http.StatusUnauthorized, u, "The sign-in with %s was cancelled or refused there.",
			fmt.Errorf("upstream error %q: %s", e, r.URL.Query().Get("error_description"))), retry)
	}
	if !u.inFlight.TryAcquire(1) {
		return f.render(w, r, refusal(http.StatusServiceUnavailable, u, "Too many sign-ins with %s are in progress. Try again in a moment.", nil), retry)
	}
	id, err := f.finish(ctx, u, cb, r.URL.Query().Get("code"))
	u.inFlight.Release(1)
	if err != nil {
		return f.render(w, r, err, retry)
	}
	user, result, err := f.resolveUser(ctx, u, id, f.o.ClientAddr(r))
	if err != nil {
		return f.render(w, r, err, retry)
	}
	amr := append([]string{"fed"}, id.amr...)
	switch cb.what.Kind {
	case kindAuthorize:
		ar, err := f.o.IDP.ValidateAuthorize(ctx, cb.what.Params)
		if err != nil {
			// The client or its registration changed meanwhile: say so
			// here rather than redirect anywhere.
			return f.render(w, r, refusal(http.StatusBadRequest, u, "The application you signed in for no longer accepts this sign-in.", err), "/")
		}
		ar.Scope = result.grantable(ar.Scope)
		return f.o.IDP.CompleteLogin(c, ar, idp.Authenticated{User: user, AMR: amr, At: id.authTime, Consented: true})
	case kindSession:
		s := f.sessionLogin()
		if s == nil {
			return f.render(w, r, refusal(http.StatusNotFound, u, "Web sessions are not served here.", nil), "/")
		}
		s.LoginFederated(w, r, user, amr, cb.what.ReturnTo)
		return nil
	}
	return f.render(w, r, refusal(http.StatusBadRequest, u, "This sign-in cannot be completed. Start again.", errors.New("unknown login kind")), "/")
}

// refusalError is a login that ends on an error page: the status, the
// message for the user and the cause for the log.
type refusalError struct {
	status   int
	provider string
	msg      string
	cause    error
}

func (e *refusalError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *refusalError) Unwrap() error { return e.cause }

// refusal is a refusalError; a %s in msg is the provider's display name.
func refusal(status int, u *upstream, msg string, cause error) *refusalError {
	e := &refusalError{status: status, msg: msg, cause: cause}
	if u != nil {
		e.provider = u.cfg.Name
		if strings.Contains(msg, "%s") {
			e.msg = fmt.Sprintf(msg, u.cfg.DisplayName)
		}
	}
	return e
}

var errorPage = template.Must(template.New("fed").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in failed — ficus</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}.err{color:#a00}</style></head>
<body><h1>Sign-in failed</h1>
<p class="err" role="alert">{{.Msg}}</p>
<p><a href="{{.Retry}}">Start again</a></p>
</body></html>`))

func (f *Federation) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	_ = f.render(c.Response(), c.Request(), err, "/")
}

// render answers a refused login with the error page (never a 500 with
// details); it returns nil so that echo writes nothing more.
func (f *Federation) render(w http.ResponseWriter, r *http.Request, err error, retry string) error {
	f.writePage(w, err, retry)
	return nil
}

func (f *Federation) writePage(w http.ResponseWriter, err error, retry string) {
	var re *refusalError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &re):
	case errors.As(err, &he):
		re = &refusalError{status: he.Code, msg: strings.ToUpper(http.StatusText(he.Code)[:1]) + http.StatusText(he.Code)[1:] + "."}
	default:
		re = &refusalError{status: http.StatusServiceUnavailable, msg: "The sign-in service is unavailable. Try again later.", cause: err}
	}
	level := f.log.Info
	if re.status >= 500 {
		level = f.log.Warn
	}
	if re.cause != nil || re.status >= 500 {
		cause := ""
		if re.cause != nil {
			cause = re.cause.Error()
		}
		level("federation: a login was refused", "provider", re.provider, "status", re.status, "reason", cause)
	}
	if !strings.HasPrefix(retry, "/") || strings.HasPrefix(retry, "//") {
		retry = "/"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(re.status)
	_ = errorPage.Execute(w, map[string]string{"Msg": re.msg, "Retry": retry})
}

// origins are where the login form may send the browser for u.
func (u *upstream) origins() []string {
	var out []string
	add := func(raw string) {
		if p, err := url.Parse(raw); err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" &&
			!strings.ContainsAny(p.Host, " ;,'") {
			if o := p.Scheme + "://" + p.Host; !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	add(u.cfg.Issuer)
	if a := u.authURL.Load(); a != nil {
		add(*a)
	}
	return out
}

var _ idp.UpstreamLogins = (*Federation)(nil)
