package demo

import (
	"context"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The demo's new web app, behind a ficus session (route policy session).
const (
	// WebAppPath is where the web app lives on the front door.
	WebAppPath = "/app/"
	// webAppServicePath is the service the web app calls through the
	// gateway with its JPT (an oauth2 route to the orders service).
	webAppServicePath = "/api/me/orders"
	// VisitsKey is the session attribute the web app counts page views
	// in, through context updates (a key the demo's sessions allow).
	VisitsKey = "visits"
)

// The headers ficus sends a web app and takes back from it (the session
// layer's defaults).
const (
	hdrLevel  = "X-Ficus-Level"
	hdrUser   = "X-Ficus-User"
	hdrJPT    = "X-Ficus-JPT"
	hdrCSRF   = "X-Ficus-CSRF-Token"
	hdrAttrs  = "X-Ficus-Session-Attrs"
	hdrUpdate = "X-Ficus-Context-Update"
)

// webAppMaxAnswer bounds the service's answer the web app reads.
const webAppMaxAnswer = 64 << 10

var webAppPage = template.Must(template.New("webapp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New web app</title></head>
<body>
<h1>The new web app</h1>
<p id="greeting">{{.Greeting}}</p>
<p>Your level: <b id="level">{{.Level}}</b>; page views this session: <span id="visits">{{.Visits}}</span></p>
{{if .LoginError}}<p id="message">Wrong user name or password.</p>{{end}}
{{if .LoggedOn}}<form method="post" action="{{.LogoutPath}}">
<input type="hidden" name="return_to" value="{{.Self}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button id="logout" type="submit">Log out</button></form>
{{else}}<form method="post" action="{{.LoginPath}}">
<input type="hidden" name="return_to" value="{{.Self}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<p><label>User name <input id="username" name="username" autocomplete="username" required></label></p>
<p><label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label></p>
<p><button id="login" type="submit">Log in</button></p>
</form>{{end}}
<h2>A service call with my JPT</h2>
<p>GET {{.ServicePath}} through ficus, with the JPT ficus gave this page; the service sees a JWT:</p>
<p id="service-answer">{{.Service}}</p>
<p id="served-by">served by the new web app, behind a ficus session</p>
</body></html>
`))

// webAppData is what the web app's page shows.
type webAppData struct {
	Greeting, Level, Visits, CSRF, Service string
	LoggedOn, LoginError                   bool
	Self, LoginPath, LogoutPath            string
	ServicePath                            string
}

// WebApp is the demo's new web app. It holds no session and no token of
// its own: ficus's session layer hands it the visitor's level, user and
// JPT in headers. It greets the visitor by level, counts page views in a
// session attribute (a context update back to ficus), offers ficus's
// login and logout, and calls a service through the gateway at front
// with its JPT, showing what the service saw.
func WebApp(front string) http.Handler {
	client := &http.Client{Timeout: 5 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		d := webAppData{Level: r.Header.Get(hdrLevel), CSRF: r.Header.Get(hdrCSRF), Self: WebAppPath,
			LoginPath: "/auth/login", LogoutPath: "/auth/logout", ServicePath: webAppServicePath,
			LoginError: r.URL.Query().Has("login_error")}
		if d.Level == "" {
			http.Error(w, "this web app runs behind a ficus session route (no "+hdrLevel+")", http.StatusServiceUnavailable)
			return
		}
		d.LoggedOn = d.Level == "logged_on"
		d.Visits = strconv.Itoa(visits(r.Header.Get(hdrAttrs)) + 1)
		claims, answer := callService(r.Context(), client, front, r.Header.Get(hdrJPT))
		d.Service = answer
		switch d.Level {
		case "logged_on":
			name, _ := claims["name"].(string)
			if name == "" {
				name = r.Header.Get(hdrUser)
			}
			d.Greeting = "Hello, " + name + "! You are logged on."
		case "returning":
			d.Greeting = "Welcome back! Log in to see your orders."
		default:
			d.Greeting = "Welcome, new visitor!"
		}
		update, _ := json.Marshal(map[string]string{VisitsKey: d.Visits})
		h := w.Header()
		h.Set(hdrUpdate, string(update))
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", legacyCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		_ = webAppPage.Execute(w, d)
	})
}

// visits reads the page-view count from the session attributes.
func visits(attrs string) int {
	var a map[string]string
	if json.Unmarshal([]byte(attrs), &a) != nil {
		return 0
	}
	n, _ := strconv.Atoi(a[VisitsKey])
	return max(n, 0)
}

// callService calls the orders service through the gateway with jpt and
// returns the claims of the JWT the service saw and a line saying what it
// answered.
func callService(ctx context.Context, client *http.Client, front, jpt string) (map[string]any, string) {
	if jpt == "" {
		return nil, "no JPT: not called"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := url.JoinPath(front, webAppServicePath)
	if err != nil {
		return nil, "cannot call: " + err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "cannot call: " + err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+jpt)
	resp, err := client.Do(req)
	if err != nil {
		return nil, "the call failed: " + err.Error()
	}
	defer resp.Body.Close()
	var a struct {
		ServedBy string         `json:"served_by"`
		Claims   map[string]any `json:"jwt_claims"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, webAppMaxAnswer)).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		return nil, "the service answered " + resp.Status
	}
	sub, _ := a.Claims["sub"].(string)
	level, _ := a.Claims["level"].(string)
	return a.Claims, a.ServedBy + " answered 200; the JWT ficus gave it: sub " + sub + ", level " + level
}
