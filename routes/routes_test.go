package routes

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func mustParse(t testing.TB, path string) *File {
	t.Helper()
	f, err := ParseFile(path)
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", path, err)
	}
	return f
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	f := mustParse(t, "../testdata/routes/valid.yaml")
	if got := len(f.Routes); got != 5 {
		t.Fatalf("routes = %d, want 5", got)
	}
	if d := f.Upstreams["orders"].Timeouts.Dial.Std(0).String(); d != "2s" {
		t.Errorf("dial timeout = %s, want 2s", d)
	}
}

func TestParseInvalidReportsEveryErrorWithPosition(t *testing.T) {
	t.Parallel()
	_, err := ParseFile("../testdata/routes/invalid.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not Errors", err)
	}
	want := []string{
		`invalid.yaml:5:10: upstreams.legacy.url: scheme must be http or https, not "ftp"`,
		`invalid.yaml:12:7: routes[0].split: weights sum to 90, not 100`,
		`invalid.yaml:13:14: routes[0].split[1].to: unknown upstream "nowhere"`,
		`invalid.yaml:14:11: routes[1].name: duplicate route name "orders" (also routes[0])`,
		`invalid.yaml:15:19: routes[1].match.path: parameter {id} appears twice`,
		`invalid.yaml:17:11: routes[2].name: "Bad Name" is not a valid name`,
		`invalid.yaml:18:35: routes[2].match.methods[0]: method "get" must be an upper-case token`,
		`invalid.yaml:20:13: routes[2].sticky: sticky has no effect without a split`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing error\n  %s\nin\n%s", w, got)
		}
	}
	for _, e := range errs {
		if e.Line == 0 {
			t.Errorf("error without a line: %v", e)
		}
	}
}

func TestParseUnknownField(t *testing.T) {
	t.Parallel()
	_, err := ParseFile("../testdata/routes/unknown-field.yaml")
	if err == nil || !strings.Contains(err.Error(), "unknown-field.yaml:10:") || !strings.Contains(err.Error(), "wieght") {
		t.Fatalf("want unknown field error at line 10, got %v", err)
	}
}

func TestParseAmbiguous(t *testing.T) {
	t.Parallel()
	_, err := ParseFile("../testdata/routes/ambiguous.yaml")
	if err == nil {
		t.Fatal("ambiguous routes accepted")
	}
	for _, w := range []string{
		`ambiguous.yaml:11:12: routes[1].match: ambiguous: route "by-id" and route "by-name"`,
		`ambiguous.yaml:17:12: routes[3].match: ambiguous: route "hdr-a" and route "hdr-b"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	base := "version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\nroutes:\n"
	tests := []struct {
		name, given, want string
	}{
		{"empty file", "", "file is empty"},
		{"not yaml", "version: [", "did not find expected"},
		{"wrong version", strings.Replace(base, "version: 1", "version: 2", 1), "version: must be 1"},
		{"unknown monolith", strings.Replace(base, "monolith: legacy", "monolith: nope", 1), `unknown upstream "nope"`},
		{"credentials in url", strings.Replace(base, "127.0.0.1:2", "u:p@127.0.0.1:2", 1), "must not carry credentials"},
		{"no target", base + "  - {name: a, match: {prefix: /}}\n", "needs a target"},
		{"both targets", base + "  - {name: a, match: {prefix: /}, to: new, split: [{to: new, weight: 100}]}\n", "exclusive"},
		{"no match", base + "  - {name: a, to: new}\n", "needs a path or a prefix"},
		{"relative path", base + "  - {name: a, match: {path: x}, to: new}\n", "must start with /"},
		{"dot segment", base + "  - {name: a, match: {path: /a/../b}, to: new}\n", "dot segment"},
		{"bad param", base + "  - {name: a, match: {path: \"/a/x{id}\"}, to: new}\n", "has characters outside"},
		{"partial param", base + "  - {name: a, match: {path: \"/a/{id\"}, to: new}\n", "a parameter is a whole segment"},
		{"split dup", base + "  - {name: a, match: {prefix: /}, split: [{to: new, weight: 50}, {to: new, weight: 50}]}\n", "appears twice"},
		{"weight range", base + "  - {name: a, match: {prefix: /}, split: [{to: new, weight: 150}, {to: legacy, weight: -50}]}\n", "must be at most 100"},
		{"bad duration", strings.Replace(base, "{url: \"http://127.0.0.1:2\"}", "{url: \"http://127.0.0.1:2\", timeouts: {dial: soon}}", 1), "invalid duration"},
		{"strip not prefix", base + "  - {name: a, match: {prefix: /api}, to: new, rewrite: {strip_prefix: /other}}\n", "is not a prefix"},
		{"optional without client", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: optional}}\n", "needs the client"},
		{"unknown policy", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: magic}}\n", "must be one of"},
		{"session scopes", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: session, scopes_all: [orders.read]}}\n", "policy session has no scopes"},
		{"session client", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: session, client: web}}\n", "policy session takes no client"},
		{"session header", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: session, header: X-Jwt}}\n", "sessions.headers"},
		{"session bad level", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: session, levels: [admin]}}\n", "must be one of"},
		{"bad level", base + "  - {name: a, match: {prefix: /}, to: new, auth: {policy: oauth2, levels: [admin]}}\n", "must be one of"},
		{"sticky two keys", base + "  - {name: a, match: {prefix: /}, split: [{to: new, weight: 50}, {to: legacy, weight: 50}], sticky: {cookie: a, header: b}}\n", "exactly one of"},
		{"shadow unknown", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: ghost, percent: 5}}\n", `unknown upstream "ghost"`},
		{"shadow ignore not a pointer", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: new, percent: 5, compare: true, ignore: [meta.time]}}\n", `"meta.time" is not a JSON pointer`},
		{"shadow redact bad escape", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: new, percent: 5, compare: true, redact: [/a~2]}}\n", "~ must be followed by 0 or 1"},
		{"shadow settings without compare", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: new, percent: 5, learn_noise: true}}\n", "need compare: true"},
		{"shadow bad header", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: new, percent: 5, compare: true, headers: [\"a b\"]}}\n", "invalid header name"},
		{"shadow max_body", base + "  - {name: a, match: {prefix: /}, to: legacy, shadow: {to: new, percent: 5, compare: true, max_body: 1GiB}}\n", "max_body: must be at most"},
		{"reserved header", base + "  - {name: a, match: {prefix: /}, to: legacy, override: {header: X-Ficus-Side}}\n", "reserved for ficus"},
		{"override empty", base + "  - {name: a, match: {prefix: /}, to: legacy, override: {}}\n", "needs a header or a cookie"},
		{"metrics mode", base + "  - {name: a, match: {prefix: /}, to: legacy, metrics: none}\n", "must be one of: on, off"},
		{"metrics group name", base + "  - {name: a, match: {prefix: /}, to: legacy, metrics_group: \"Shop Pages\"}\n", "is not a valid name"},
		{"metrics off in a group", base + "  - {name: a, match: {prefix: /}, to: legacy, metrics: off, metrics_group: shop}\n", "exclusive"},
		{"analysis without new upstream", base + "  - {name: a, match: {prefix: /}, to: legacy, analysis: {}}\n", "exactly one new upstream"},
		{"analysis window", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {window: 10ms}}\n", "between 1s and 1h"},
		{"analysis steps order", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {steps: [5, 50, 25]}}\n", "must increase strictly"},
		{"analysis step range", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {steps: [0, 50]}}\n", "must be at least 1"},
		{"analysis hold not a step", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {steps: [5, 50], hold_before: [25]}}\n", "is not one of the steps"},
		{"analysis hold first step", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {steps: [5, 50], hold_before: [5]}}\n", "a person starts the first step"},
		{"analysis error percent", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {max_error_percent: 101}}\n", "must be at most 100"},
		{"analysis parity", base + "  - {name: a, match: {prefix: /}, to: new, analysis: {parity_min: 2}}\n", "must be at most 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tt.given))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.given)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "r.yaml:") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

// A file of nested aliases (billion laughs) is refused quickly.
func TestParseAliasBombIsRefusedQuickly(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	done := make(chan error, 1)
	go func() { _, err := Parse("bomb.yaml", []byte(b.String())); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an alias bomb was accepted as a rule file")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parsing an alias bomb did not finish")
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	f := mustParse(t, "../testdata/routes/valid.yaml")
	m, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, method, path string
		header                   http.Header
		want                     string
	}{
		{"prefix root", "", "GET", "/api/orders", nil, "orders"},
		{"prefix below", "", "POST", "/api/orders/7/lines", nil, "orders"},
		{"pattern beats prefix at its depth", "", "GET", "/api/orders/7", nil, "order-item"},
		{"GET route matches HEAD", "", "HEAD", "/api/orders/7", nil, "order-item"},
		{"method not allowed falls back to prefix", "", "DELETE", "/api/orders/7", nil, "orders"},
		{"segment boundary", "", "GET", "/api/ordersx", nil, ""},
		{"case-insensitive", "", "GET", "/API/Orders/7", nil, "order-item"},
		{"segment parameter ignored", "", "GET", "/api/orders;jsessionid=1/7", nil, "order-item"},
		{"trailing slash", "", "GET", "/api/orders/7/", nil, "order-item"},
		{"host route", "shop.example.com:8080", "GET", "/search/q", nil, "search"},
		{"host case", "SHOP.example.com", "GET", "/search", nil, "search"},
		{"host route other host", "other.example.com", "GET", "/search", nil, ""},
		{"header route", "", "GET", "/admin/users", http.Header{"X-Beta": {"1"}}, "admin-beta"},
		{"header value mismatch", "", "GET", "/admin/users", http.Header{"X-Beta": {"2"}}, "admin"},
		{"no header", "", "GET", "/admin", nil, "admin"},
		{"nothing", "", "GET", "/", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if i := m.Match(tt.host, tt.method, tt.path, tt.header); i >= 0 {
				got = f.Routes[i].Name
			}
			if got != tt.want {
				t.Fatalf("Match(%q %s %s) = %q, want %q", tt.host, tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given, want string
		err         error
	}{
		{"/", "/", nil},
		{"/a/b", "/a/b", nil},
		{"/a/b/", "/a/b/", nil},
		{"//a///b", "/a/b", nil},
		{"/a/./b", "/a/b", nil},
		{"/a/../b", "/b", nil},
		{"/../../etc/passwd", "/etc/passwd", nil},
		{"/a/%2e%2e/b", "/b", nil},
		{"/a/%2E/b", "/a/b", nil},
		{"/a/.%2e/b", "/b", nil},
		{"/a/b/..", "/a/", nil},
		{"/%61dmin", "/admin", nil},
		{"/%40user", "/@user", nil},
		{"/a%3bx", "/a;x", nil},
		{"/a%3fb", "/a%3Fb", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/a%20b", "/a%20b", nil},
		{"/a.b/c..d", "/a.b/c..d", nil},
		{"/a/%2f/b", "", ErrEncodedSlash},
		{"/a%5cb", "", ErrEncodedSlash},
		{"/a\\b", "", ErrControlChar},
		{"/a%00", "", ErrControlChar},
		{"/a%0a", "", ErrControlChar},
		{"/a%zz", "", ErrBadEscape},
		{"/a%2", "", ErrBadEscape},
		{"a", "", ErrPathNotAbsolute},
	}
	for _, tt := range tests {
		t.Run(tt.given, func(t *testing.T) {
			got, err := NormalizePath(tt.given)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q, %v", tt.given, got, err, tt.want, tt.err)
			}
			if err == nil {
				again, _ := NormalizePath(got)
				if again != got {
					t.Fatalf("not idempotent: %q -> %q", got, again)
				}
			}
		})
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	old := mustParse(t, "../testdata/routes/valid.yaml")
	new := mustParse(t, "../testdata/routes/valid-v2.yaml")
	var buf bytes.Buffer
	if err := WriteDiff(&buf, Diff(old, new)); err != nil {
		t.Fatal(err)
	}
	want := `+ upstream payments
    url: http://127.0.0.1:9003
- upstream search
~ route order-item
    match: /api/orders/{id} [GET] -> /api/orders/{id} [GET,HEAD]
~ route orders
    weight legacy: 80% -> 50%
    weight orders: 20% -> 50%
+ route payments
    /payments/** -> payments
- route search
    shop.example.com/search/** -> search
`
	if buf.String() != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	_ = WriteDiff(&buf, Diff(old, old))
	if buf.String() != "no changes\n" {
		t.Fatalf("self diff = %q", buf.String())
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	f := mustParse(t, "../testdata/routes/valid.yaml")
	m, _ := Compile(f)
	h := http.Header{"X-Beta": {"1"}}
	for _, p := range []string{"/api/orders/7", "/API/Orders/7", "/admin/x", "/nothing/here"} {
		allocs := testing.AllocsPerRun(100, func() { m.Match("shop.example.com", "GET", p, h) })
		if allocs != 0 {
			t.Errorf("Match(%s) allocates %.0f times", p, allocs)
		}
	}
}

// synthetic builds a rule file with n routes of mixed shapes.
func synthetic(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  svc: {url: \"http://127.0.0.1:2\"}\nroutes:\n")
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - {name: r%d, match: {prefix: /team%d/api}, to: svc}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: \"/team%d/items/{id}/detail\"}, to: svc}\n", i, i)
		case 2:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: /team%d/static/page, methods: [GET]}, to: legacy}\n", i, i)
		case 3:
			fmt.Fprintf(&b, "  - {name: r%d, match: {prefix: /team%d, header: {name: X-Beta}}, to: svc}\n", i, i)
		}
	}
	b.WriteString("  - {name: catch-all, match: {prefix: /}, to: legacy}\n")
	return []byte(b.String())
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		f, err := Parse("synthetic", synthetic(n))
		if err != nil {
			b.Fatal(err)
		}
		m, _ := Compile(f)
		paths := []string{"/team5/items/42/detail", "/team8/api/v1/things", "/Team6/Static/Page", "/unknown/path/here"}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if m.Match("example.com", "GET", paths[i%len(paths)], nil) < 0 {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = NormalizePath("/api/orders/123/lines")
		}
	})
	b.Run("dirty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = NormalizePath("/api//orders/./%31%32%33/../lines")
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"valid.yaml", "valid-v2.yaml", "invalid.yaml", "ambiguous.yaml", "unknown-field.yaml"} {
		data, err := os.ReadFile("../testdata/routes/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// The examples of docs/routes.md (shorthands, fragments made whole).
	doc, err := os.ReadFile("../docs/routes.md")
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range yamlBlock.FindAllStringSubmatch(string(doc), -1) {
		if src, err := docFile(m[1]); err == nil {
			f.Add([]byte(src))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var loose File
		if yaml.Unmarshal(data, &loose) == nil {
			for _, r := range loose.Routes {
				if r != nil {
					checkRouteRules(t, r)
				}
			}
		}
		file, err := Parse("fuzz.yaml", data)
		// Parse decodes once, with the strict decoder; text that does not
		// parse as YAML at all still gets the parser's own errors.
		var root yaml.Node
		if perr := yaml.Unmarshal(data, &root); perr != nil {
			if want := yamlErrors("fuzz.yaml", perr).Error(); err == nil || err.Error() != want {
				t.Fatalf("not YAML: got %v, want %s", err, want)
			}
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %v", err)
			}
			return
		}
		if _, err := Compile(file); err != nil {
			t.Fatalf("valid file does not compile: %v", err)
		}
	})
}

func FuzzMatch(f *testing.F) {
	file, err := ParseFile("../testdata/routes/valid.yaml")
	if err != nil {
		f.Fatal(err)
	}
	m, _ := Compile(file)
	for _, p := range []string{"/api/orders/7", "/admin/%2e%2e/api", "//a/./b", "/API;x/orders", "/a%2fb"} {
		f.Add(p)
	}
	for _, tt := range dotParamTests {
		f.Add(tt.given[1:])
	}
	// CutPrefix (path rewrites) must agree with Prefixes (the matcher).
	cuts := map[string]*Prefixes{}
	for _, pre := range []string{"/api/orders", "/admin", "/"} {
		if cuts[pre], err = CompilePrefixes([]string{pre}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := NormalizePath("/" + raw)
		if err != nil {
			return
		}
		if again, err := NormalizePath(p); err != nil || again != p {
			t.Fatalf("NormalizePath not idempotent: %q -> %q (%v)", p, again, err)
		}
		if strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.Contains(p, "/./") {
			t.Fatalf("normalised path %q still has //, /./ or /../", p)
		}
		checkNoDotNames(t, p)
		for pre, ps := range cuts {
			rest, ok := CutPrefix(p, pre)
			if ok != (ps.Match(p) == 0) {
				t.Fatalf("CutPrefix(%q, %q) = %v, but the matcher says %v", p, pre, ok, !ok)
			}
			if ok && rest != "" && rest[0] != '/' {
				t.Fatalf("CutPrefix(%q, %q) left %q", p, pre, rest)
			}
		}
		i := m.Match("shop.example.com", "GET", p, nil)
		if i >= 0 {
			// Whatever matched must be a route whose literal prefix the
			// normalised path really has (case-insensitively).
			r := file.Routes[i]
			base := strings.ToLower(strings.SplitN(matchBase(r.Match)+"/{", "/{", 2)[0])
			lp := strings.ToLower(p)
			segs := strings.Split(lp, "/")
			for k := range segs {
				segs[k], _, _ = strings.Cut(segs[k], ";")
			}
			if !hasSegmentPrefix(strings.Join(segs, "/"), base) {
				t.Fatalf("path %q matched route %q (%s)", p, r.Name, base)
			}
		}
	})
}

func TestExamplesAreValid(t *testing.T) {
	t.Parallel()
	paths, _ := filepath.Glob("examples/*.yaml")
	if len(paths) < 3 {
		t.Fatalf("examples: %v", paths)
	}
	for _, p := range paths {
		if _, err := ParseFile(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// BenchmarkParse10k parses and validates a 10,000-route file: the work of
// applying a large revision, on every instance.
func BenchmarkParse10k(b *testing.B) {
	data := synthetic(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("synthetic", data); err != nil {
			b.Fatal(err)
		}
	}
}

// Issue 12: the analysis rule's defaults and its steps.
func TestAnalysisRule(t *testing.T) {
	t.Parallel()
	f, err := Parse("r.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
routes:
  - name: orders
    match: {prefix: /orders}
    split: [{to: orders, weight: 25}, {to: legacy, weight: 75}]
    analysis: {steps: [5, 25, 50, 100], hold_before: [100]}
  - name: plain
    match: {prefix: /plain}
    to: orders
    analysis: {window: 30s, min_requests: 7, max_error_percent: 1.5, interval: 2m}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, p := f.Routes[0].Analysis, f.Routes[1].Analysis
	if a.WindowOrDefault() != time.Minute || a.MinRequestsOrDefault() != 100 || a.MaxErrorPercentOrDefault() != 5 || a.IntervalOrDefault() != time.Minute {
		t.Errorf("defaults: %v %d %v %v", a.WindowOrDefault(), a.MinRequestsOrDefault(), a.MaxErrorPercentOrDefault(), a.IntervalOrDefault())
	}
	if p.WindowOrDefault() != 30*time.Second || p.MinRequestsOrDefault() != 7 || p.MaxErrorPercentOrDefault() != 1.5 || p.IntervalOrDefault() != 2*time.Minute {
		t.Errorf("set: %+v", p)
	}
	tests := []struct {
		weight, next int
		hold, ok     bool
	}{{0, 5, false, true}, {5, 25, false, true}, {25, 50, false, true}, {30, 50, false, true}, {50, 100, true, true}, {100, 0, false, false}}
	for _, tt := range tests {
		if next, hold, ok := a.NextStep(tt.weight); next != tt.next || hold != tt.hold || ok != tt.ok {
			t.Errorf("NextStep(%d) = %d %v %v, want %d %v %v", tt.weight, next, hold, ok, tt.next, tt.hold, tt.ok)
		}
	}
	if a.StepIndex(25) != 2 || a.StepIndex(30) != 0 {
		t.Errorf("StepIndex: %d %d", a.StepIndex(25), a.StepIndex(30))
	}
	if f.Routes[0].NewUpstream("legacy") != "orders" || f.Routes[1].NewUpstream("legacy") != "orders" || f.Routes[0].Weight("orders") != 25 {
		t.Error("NewUpstream or Weight")
	}
}
