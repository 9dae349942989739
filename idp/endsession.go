package idp

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/labstack/echo/v4"
)

// endSessionParams are the parameters of an RP-initiated logout request
// that the confirmation form carries back.
var endSessionParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}

var logoutPage = template.Must(template.New("logout").Parse(pageHead + `
<body>{{if .Confirm}}<h1>Sign out</h1>
<p>Do you want to sign out{{if .ClientName}} of <strong>{{.ClientName}}</strong> and ficus{{end}}?</p>
<form method="post" action="logout">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="confirm" value="yes">Sign out</button>
</form>{{else if .Error}}<h1>Sign-out request refused</h1><p class="err" role="alert">{{.Error}}</p>
{{else}}<h1>Signed out</h1><p>You are signed out of ficus.</p>{{end}}</body></html>`))

// handleEndSession is the end_session_endpoint (OpenID Connect
// RP-Initiated Logout 1.0): it ends the browser's IDP session, then sends
// the browser to post_logout_redirect_uri (with state) when that URI is
// registered for the client, else shows that the user is signed out.
// Without a valid id_token_hint naming the session's user, the user
// confirms on a page first (a cross-site link cannot sign anyone out).
// An id_token_hint that does not verify, a client_id that is not its
// audience, or a post_logout_redirect_uri that is not registered are shown
// on a page: never redirected to.
func (p *Provider) handleEndSession(c echo.Context) error {
	ctx := c.Request().Context()
	var q url.Values
	if c.Request().Method == http.MethodPost {
		f, err := form(c)
		if err != nil {
			return p.renderLogout(c, http.StatusBadRequest, asError(err).Description, nil, nil)
		}
		q = f
	} else {
		q = c.QueryParams()
		for _, k := range endSessionParams {
			if len(q[k]) > 1 {
				return p.renderLogout(c, http.StatusBadRequest, "parameter "+k+" is repeated", nil, nil)
			}
		}
	}
	var hint *idTokenClaims
	if raw := q.Get("id_token_hint"); raw != "" {
		h, err := p.verifyIDTokenHint(raw)
		if err != nil {
			return p.renderLogout(c, http.StatusBadRequest, "the id_token_hint is not an ID token of this provider", nil, nil)
		}
		hint = h
	}
	clientID := q.Get("client_id")
	switch {
	case hint != nil && clientID != "" && !slices.Contains(hint.Audience, clientID):
		return p.renderLogout(c, http.StatusBadRequest, "the client_id is not the audience of the id_token_hint", nil, nil)
	case hint != nil && clientID == "":
		clientID = hint.Audience[0]
	}
	var client *store.Client
	if clientID != "" {
		cl, err := p.getClient(ctx, clientID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return p.renderLogout(c, http.StatusBadRequest, "unknown client", nil, nil)
		case err != nil:
			return p.authorizeUnavailable(c, err)
		}
		client = cl
	}
	target := q.Get("post_logout_redirect_uri")
	if target != "" && (client == nil || !slices.Contains(client.PostLogoutRedirectURIs, target)) {
		return p.renderLogout(c, http.StatusBadRequest, "the post_logout_redirect_uri is not registered for this client", nil, nil)
	}
	s, err := p.findSession(c)
	if err != nil {
		return p.authorizeUnavailable(c, err)
	}
	if s != nil {
		confirmed := hint != nil && client != nil && hint.Subject == p.subject(client, s.UserID)
		if !confirmed && c.Request().Method == http.MethodPost && q.Get("confirm") == "yes" {
			if !csrfOK(c, q) {
				return p.renderLogout(c, http.StatusForbidden, "", client, q)
			}
			confirmed = true
		}
		if !confirmed {
			return p.renderLogout(c, http.StatusOK, "", client, q)
		}
		if err := p.browser.End(ctx, s); err != nil {
			return p.authorizeUnavailable(c, err)
		}
		clientName := ""
		if client != nil {
			clientName = client.ID
		}
		p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "logout", ClientID: clientName, UserID: s.UserID, Grant: "oidc", Outcome: "ok",
			RemoteIP: p.clientAddr.Addr(c.Request()).String()})
	}
	p.clearSessionCookie(c)
	if target != "" {
		v := url.Values{}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		return redirectTo(c, target, v)
	}
	return p.renderLogout(c, http.StatusOK, "", nil, nil)
}

// renderLogout shows the sign-out page: the confirmation form when confirm
// holds the request's parameters, the error msg, or that the user is
// signed out.
func (p *Provider) renderLogout(c echo.Context, status int, msg string, client *store.Client, confirm url.Values) error {
	d := map[string]any{"Error": msg}
	if confirm != nil {
		params := map[string]string{}
		for _, k := range endSessionParams {
			if v := confirm.Get(k); v != "" {
				params[k] = v
			}
		}
		d["Confirm"], d["Params"], d["CSRF"] = true, params, p.newCSRF(c)
		if client != nil {
			d["ClientName"] = client.Name
			if client.Name == "" {
				d["ClientName"] = client.ID
			}
		}
	}
	pageHeaders(c)
	c.Response().WriteHeader(status)
	return logoutPage.Execute(c.Response(), d)
}
