package routes

import (
	"net/http"
	"strings"
	"testing"
)

// Issue 8, item 18: `header: NAME` is shorthand for {name: NAME}, a header
// that must be present (as docs/routes.md says).
func TestHeaderShorthand(t *testing.T) {
	t.Parallel()
	base := "version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  beta: {url: \"http://127.0.0.1:2\"}\nroutes:\n"
	f, err := Parse("r.yaml", []byte(base+"  - {name: beta, match: {prefix: /app, header: X-Beta}, to: beta}\n  - {name: app, match: {prefix: /app}, to: legacy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := f.Routes[0].Match.Header; h == nil || h.Name != "X-Beta" || h.Value != "" {
		t.Fatalf("header = %+v, want {Name: X-Beta}", h)
	}
	m, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if i := m.Match("", "GET", "/app/x", http.Header{"X-Beta": {"anything"}}); i != 0 {
		t.Errorf("with the header: route %d, want 0", i)
	}
	if i := m.Match("", "GET", "/app/x", nil); i != 1 {
		t.Errorf("without the header: route %d, want 1", i)
	}

	for _, tt := range []struct{ name, route, want string }{
		{"unknown key", "  - {name: a, match: {prefix: /, header: {name: X-A, valeu: '1'}}, to: beta}\n", `r.yaml:7:1: field valeu not found in match.header (name, value)`},
		{"list", "  - {name: a, match: {prefix: /, header: [X-A]}, to: beta}\n", `r.yaml:7:1: match.header must be a header name or {name: NAME, value: VALUE}`},
		{"empty name", "  - {name: a, match: {prefix: /, header: ''}, to: beta}\n", `routes[0].match.header.name: is required`},
		{"bad name", "  - {name: a, match: {prefix: /, header: 'X A'}, to: beta}\n", `invalid header name "X A"`},
		{"reserved", "  - {name: a, match: {prefix: /, header: X-Ficus-Side}, to: beta}\n", `reserved for ficus`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(base+tt.route))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
