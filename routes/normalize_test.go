package routes

import (
	"strings"
	"testing"
)

// dotParamTests are spellings of dot and empty segments carrying
// ;parameters, which Tomcat, Jetty and Spring resolve as plain dot or empty
// segments (issue 8, item 5).
var dotParamTests = []struct {
	given, want string
}{
	{"/x/..;/admin/x", "/admin/x"},
	{"/.;/admin/x", "/admin/x"},
	{"/x/..;jsessionid=1/admin/x", "/admin/x"},
	{"/x/..;a=1;b=2/admin/x", "/admin/x"},
	{"/x/%2e%2e;/admin/x", "/admin/x"},
	{"/x/%2E%2E%3B/admin/x", "/admin/x"},
	{"/x/..%3bjsessionid=x/admin/x", "/admin/x"},
	{"/x/.%2e;a=b/admin", "/admin"},
	{"/x/%2e;/admin", "/x/admin"},
	{"/;x/admin/x", "/admin/x"},
	{"/%3bx/admin/x", "/admin/x"},
	{"/admin/;x/y", "/admin/y"},
	{"/..;/..;/etc/passwd", "/etc/passwd"},
	{"/admin/x/..;", "/admin/"},
	{"/admin/x/.;x", "/admin/x/"},
	{"/admin/;jsessionid=1", "/admin/"},
	{"/x/..;", "/"},
	{"/.;", "/"},
	{"/;", "/"},
	// Parameters of an ordinary segment are kept (and ignored by matching).
	{"/admin;x=1/y", "/admin;x=1/y"},
	{"/a;/b", "/a;/b"},
	{"/a/...;/b", "/a/...;/b"},
	{"/a/..x;/b", "/a/..x;/b"},
	{"/a/;x..", "/a/"},
}

func TestNormalizePathDotSegmentsWithParameters(t *testing.T) {
	t.Parallel()
	for _, tt := range dotParamTests {
		t.Run(tt.given, func(t *testing.T) {
			got, err := NormalizePath(tt.given)
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.given, got, err, tt.want)
			}
			if again, err := NormalizePath(got); err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q (%v)", got, again, err)
			}
		})
	}
}

// A protected prefix is matched whatever the spelling of a path under it.
func TestMatchDotSegmentsWithParameters(t *testing.T) {
	t.Parallel()
	f, err := Parse("r.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
routes:
  - {name: admin, match: {prefix: /admin}, to: legacy, auth: {policy: oauth2}}
  - {name: console, match: {path: /console}, to: legacy, auth: {policy: oauth2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ given, want string }{
		{"/x/..;/admin/x", "admin"},
		{"/.;/admin/x", "admin"},
		{"/;x/admin/x", "admin"},
		{"/%3Bx/admin", "admin"},
		{"/admin;x=1/y", "admin"},
		{"/console/;jsessionid=1", "console"},
		{"/console/.;x", "console"},
		{"/x/..;/console", "console"},
		{"/x/..;/other", ""},
	} {
		p, err := NormalizePath(tt.given)
		if err != nil {
			t.Fatalf("NormalizePath(%q): %v", tt.given, err)
		}
		got := ""
		if i := m.Match("", "GET", p, nil); i >= 0 {
			got = f.Routes[i].Name
		}
		if got != tt.want {
			t.Errorf("%q (normalised %q) matched %q, want %q", tt.given, p, got, tt.want)
		}
	}
}

// No normalised path has a segment that a server stripping ;parameters
// would take for an empty or dot segment.
func checkNoDotNames(t *testing.T, p string) {
	t.Helper()
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		name, _, _ := strings.Cut(seg, ";")
		if (name == "" && (i < len(segs)-1 || seg != "")) || name == "." || name == ".." {
			t.Fatalf("normalised path %q has segment %q, an empty or dot segment once its ;parameters are removed", p, seg)
		}
	}
}

func TestPrefixesMatchLikeRoutes(t *testing.T) {
	t.Parallel()
	ps, err := CompilePrefixes([]string{"/admin", "/", "/users/{id}/orders", "/Static/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		given string
		want  int
	}{
		{"/admin", 0},
		{"/admin/x", 0},
		{"/ADMIN/x", 0},
		{"/admin;x=1/y", 0},
		{"/x/..;/admin/y", 0},
		{"/.;/admin", 0},
		{"/adminx", 1},
		{"/users/7/orders/1", 2},
		{"/users/7/orders;a/1", 2},
		{"/users/7", 1},
		{"/static", 3},
		{"/STATIC/app.js", 3},
	} {
		p, err := NormalizePath(tt.given)
		if err != nil {
			t.Fatalf("NormalizePath(%q): %v", tt.given, err)
		}
		if got := ps.Match(p); got != tt.want {
			t.Errorf("Match(%q) = %d, want %d", tt.given, got, tt.want)
		}
	}
	none, err := CompilePrefixes([]string{"/a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := none.Match("/b"); got != -1 {
		t.Errorf("Match(/b) = %d, want -1", got)
	}
}

func TestCompilePrefixesRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		given []string
		want  string
	}{
		{[]string{"admin"}, "must start with /"},
		{[]string{"/a/../b"}, "dot segment"},
		{[]string{"/a//b"}, "empty segment"},
		{[]string{"/a;b"}, "characters outside"},
		{[]string{"/a%2Fb"}, "characters outside"},
		{[]string{"/admin", "/Admin/"}, `"/Admin/" matches the same paths as "/admin"`},
		{[]string{"/u/{a}", "/u/{b}"}, `"/u/{b}" matches the same paths as "/u/{a}"`},
		{[]string{"x", "/a", "/A"}, "must start with /\nprefix \"/A\" matches"},
	} {
		_, err := CompilePrefixes(tt.given)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompilePrefixes(%q) = %v, want an error with %q", tt.given, err, tt.want)
		}
	}
}
