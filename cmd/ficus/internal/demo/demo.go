// Package demo holds what `ficus demo` runs besides ficus itself: a legacy
// monolith (go-httpbin), a demo new service, and the demo route file.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

//go:embed routes.yaml.tmpl
var routesTemplate string

// Routes renders the demo route file for the upstreams' URLs.
func Routes(u *Upstreams) ([]byte, error) {
	tpl, err := template.New("routes").Parse(routesTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = tpl.Execute(&b, map[string]string{"Monolith": u.Monolith, "Orders": u.Orders, "WebApp": u.WebApp, "Audience": OrdersAudience})
	return b.Bytes(), err
}

// Httpbin is go-httpbin standing in for the API side of a legacy
// monolith.
func Httpbin() http.Handler { return httpbin.New() }

// Service is the demo "new service": it answers with JSON saying it served
// the request and what it received, so the routing is visible with curl.
// Web-hook deliveries (they carry Webhook-Event-Id) are also reported on
// log, since nobody reads the answers to them. LegacyOrdersPath, moved
// from the monolith, it serves as the monolith's HTML page for the user
// of the JWT it is given, verified as trust says.
func Service(name string, trust Trust, log io.Writer) http.Handler {
	page, pagePath := myOrders(name, trust), mustPrefixes(LegacyOrdersPath)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The moved page is matched as its route matches it.
		if p, err := routes.NormalizePath(r.URL.EscapedPath()); err == nil && pagePath.Match(p) >= 0 {
			page.ServeHTTP(w, r)
			return
		}
		if id := r.Header.Get("Webhook-Event-Id"); id != "" && log != nil {
			fmt.Fprintf(log, "%s service: web-hook %s delivered to %s (Authorization: a JWT from ficus)\n", name, id, r.URL.Path)
		}
		hdr := map[string]string{}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := strings.Join(r.Header[k], ", ")
			if k == "Authorization" && len(v) > 24 {
				v = v[:24] + "…"
			}
			hdr[k] = v
		}
		answer := map[string]any{
			"served_by": name + " (the new service)",
			"method":    r.Method,
			"path":      r.URL.Path,
			"query":     r.URL.RawQuery,
			"headers":   hdr,
		}
		// Show the claims of the JWT ficus put in place of the client's
		// token (decoded for display; a real service verifies it against
		// /.well-known/jwks.json, see docs/sidecar.md).
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
					var claims map[string]any
					if json.Unmarshal(b, &claims) == nil {
						answer["jwt_claims"] = claims
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(answer)
	})
}

// Trust is what a demo service verifies its JWTs with: ficus's IDP.
type Trust struct {
	// JWKSURL is the IDP's key set; Issuer must be the JWTs' iss and
	// Audience in their aud.
	JWKSURL, Issuer, Audience string
}

// myOrders is the "my orders" page moved to a new service: the monolith's
// page, for the user named by the verified JWT, saying who served it. No
// JWT (a browser that is not logged on at the monolith) goes to the
// monolith's login page, as the monolith's own page does.
func myOrders(name string, trust Trust) http.Handler {
	// The verifier is made on first use: ficus serves its keys only once
	// the demo's upstreams are up.
	verifier := sync.OnceValues(func() (*verify.Verifier, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := verify.New(ctx, verify.Options{JWKSURL: trust.JWKSURL, Issuer: trust.Issuer, Audience: trust.Audience})
		if v != nil {
			err = nil // a failed first fetch is retried on use
		}
		return v, err
	})
	served := "served by the " + name + " service (the new service), for the monolith's session"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Redirect(w, r, LegacyLoginPath, http.StatusFound)
			return
		}
		v, err := verifier()
		if err != nil {
			http.Error(w, "cannot verify tokens: "+err.Error(), http.StatusInternalServerError)
			return
		}
		c, err := v.Verify(r.Context(), raw)
		if err != nil {
			http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
			return
		}
		u := Person{Username: c.Subject, CustomerNumber: c.CustomerNumber, Name: displayName(raw, c.Subject)}
		RenderPage(w, http.StatusOK, PageData{Title: "My orders", User: &u, Orders: DemoOrders, ServedBy: served})
	})
}

// displayName is the name claim of a verified JWT, or else fallback.
func displayName(verifiedJWT, fallback string) string {
	parts := strings.Split(verifiedJWT, ".")
	if len(parts) != 3 {
		return fallback
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fallback
	}
	var c struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(b, &c) != nil || c.Name == "" {
		return fallback
	}
	return c.Name
}

// Listen starts h on addr (127.0.0.1:0 for a free loopback port) and
// returns its URL.
func Listen(addr string, h http.Handler) (string, *http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv, nil
}

// LoopbackAddr is the loopback host:port of upstream name in f, where the
// demo serves it again when f is kept; 127.0.0.1:0 when f names no such
// address.
func LoopbackAddr(f *routes.File, name string) string {
	if up := f.Upstreams[name]; up != nil {
		if u, err := url.Parse(up.URL); err == nil && u.Scheme == "http" && u.Port() != "" {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
				return u.Host
			}
		}
	}
	return "127.0.0.1:0"
}
