// Package demo holds what `ficus demo` runs besides ficus itself: a legacy
// monolith (go-httpbin), a demo new service, and the demo route file.
package demo

import (
	"bytes"
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
	"text/template"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

//go:embed routes.yaml.tmpl
var routesTemplate string

// Routes renders the demo route file for the given upstream URLs.
func Routes(monolithURL, ordersURL string) ([]byte, error) {
	tpl, err := template.New("routes").Parse(routesTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = tpl.Execute(&b, map[string]string{"Monolith": monolithURL, "Orders": ordersURL})
	return b.Bytes(), err
}

// Httpbin is go-httpbin standing in for the API side of a legacy
// monolith.
func Httpbin() http.Handler { return httpbin.New() }

// Service is the demo "new service": it answers with JSON saying it served
// the request and what it received, so the routing is visible with curl.
// Web-hook deliveries (they carry Webhook-Event-Id) are also reported on
// log, since nobody reads the answers to them.
func Service(name string, log io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
