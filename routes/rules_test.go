package routes

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/go-playground/validator/v10"
	"go.yaml.in/yaml/v3"
)

// tagErrors is what go-playground/validator says of r through the
// validate tags of Route, as field: reason lines.
func tagErrors(t testing.TB, r *Route) []string {
	t.Helper()
	var out []string
	err := fieldRules().Struct(r)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("validator: %v", err)
	}
	for _, fe := range ves {
		out = append(out, fmt.Sprintf("routes[0].%s: %s", fieldPath(fe.Namespace()), ruleReason(fe)))
	}
	return out
}

// checkRouteRules fails unless routeRules says of r what the validate
// tags say.
func checkRouteRules(t testing.TB, r *Route) {
	t.Helper()
	var got []string
	for _, e := range (&File{}).routeRules("routes[0]", r) {
		got = append(got, e.Field+": "+e.Reason)
	}
	want := tagErrors(t, r)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("route %+v:\nrouteRules:\n  %s\nvalidate tags:\n  %s", r, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The field rules of routes are applied by hand (routeRules); they say
// exactly what the validate tags on Route say, in the same order.
func TestRouteRulesMatchTheTags(t *testing.T) {
	t.Parallel()
	routes := []string{
		`{name: ok, match: {prefix: /}, to: legacy}`,
		`{}`,
		`{name: "Bad Name", match: {host: "bad host!", methods: [GET, ""], header: {value: x}}}`,
		`{name: a, match: {host: shop.example.com, header: X-Beta}}`,
		`{name: a, split: [{to: "", weight: -1}, {to: b, weight: 101}, {to: c, weight: 100}, {to: d, weight: 0}]}`,
		`{name: a, split: []}`,
		`{name: a, sticky: {cookie: c, max_age: -5s}}`,
		`{name: a, sticky: {cookie: c, max_age: 5s}}`,
		`{name: a, auth: {}}`,
		`{name: a, auth: {policy: magic, scopes_all: [a, ""], scopes_any: ["", b], levels: [admin, returning, ""]}}`,
		`{name: a, auth: {policy: session, levels: [anonymous, logged_on]}}`,
		`{name: a, shadow: {percent: 101}}`,
		`{name: a, shadow: {to: b, percent: -1}}`,
		`{name: a, shadow: {to: b, percent: 100}, override: {}, rewrite: {}, fallback: {disabled: true}}`,
		`{name: ` + strings.Repeat("x", 64) + `}`,
		`{name: a, metrics: off, metrics_group: shop}`,
		`{name: a, metrics: on, metrics_group: "Bad Group"}`,
		`{name: a, metrics: "no"}`,
		`{name: a, shadow: {to: b, compare: true, headers: [X-A, ""], ignore: ["", /a], redact: [""], max_body: 16777217}}`,
		`{name: a, shadow: {to: b, compare: true, headers: [X-A], ignore: [/a/*/b], redact: [/c], max_body: 1MiB}}`,
		`{name: a, analysis: {window: -1s, min_requests: -1, max_error_percent: 101, max_p99_ratio: -2, steps: [0, 50, 101], interval: -1s, parity_min: 1.5}}`,
		`{name: a, analysis: {window: 1m, min_requests: 100000001, max_error_percent: -0.5, max_p99_ratio: 1001, steps: [1, 100], parity_min: -1}}`,
		`{name: a, analysis: {window: 30s, min_requests: 10, max_error_percent: 5, max_p99_ratio: 2, steps: [5, 50, 100], interval: 1m, parity_min: 0.99}}`,
		`{name: a, rate_limit: {rate: 10/s, burst: -1, by: ip, absent: drop, max_keys: 1000001}}`,
		`{name: a, rate_limit: {rate: 10/s, burst: 1000001, by: header, header: X-Api-Key, absent: shared, max_keys: -1}}`,
		`{name: a, rate_limit: {rate: 6000/m, burst: 100, by: client, absent: address, max_keys: 10}}`,
		`{name: a, rate_limit: api}`,
	}
	for _, src := range routes {
		var r Route
		if err := yaml.Unmarshal([]byte(src), &r); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		checkRouteRules(t, &r)
	}
}

// The byte-by-byte character classes say what their patterns say.
func TestCharClassesMatchTheirPatterns(t *testing.T) {
	t.Parallel()
	classes := []struct {
		pattern string
		check   func(string) bool
	}{
		{`^[a-z0-9][a-z0-9_.-]{0,62}$`, validName},
		{"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", isToken},
		{`^[A-Za-z0-9._~!$&'()*+,=:@-]+$`, isLiteral},
		{`^\{[A-Za-z_][A-Za-z0-9_]*\}$`, isParam},
	}
	inputs := []string{"", "{}", "{_}", "{a}", "{a1_b}", "{1a}", "{a-b}", "{a}}", "{{a}", "a{b}", "GET", "get",
		"x-ficus-side", "Bad Name", "ab.c_d-e", "-ab", ".ab", "é", "a\x00b", "a\nb",
		strings.Repeat("a", 63), strings.Repeat("a", 64), "0" + strings.Repeat("-", 62)}
	for b := 0; b < 256; b++ {
		inputs = append(inputs, string([]byte{byte(b)}), "a"+string([]byte{byte(b)}), "{a"+string([]byte{byte(b)})+"}")
	}
	for _, c := range classes {
		re := regexp.MustCompile(c.pattern)
		for _, in := range inputs {
			if got, want := c.check(in), re.MatchString(in); got != want {
				t.Errorf("%s on %q: %v, the pattern says %v", c.pattern, in, got, want)
			}
		}
	}
}

func FuzzCharClasses(f *testing.F) {
	f.Add("{id}")
	f.Add("orders-v2")
	names := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	tokens := regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	literal := regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,=:@-]+$`)
	param := regexp.MustCompile(`^\{[A-Za-z_][A-Za-z0-9_]*\}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if validName(s) != names.MatchString(s) || isToken(s) != tokens.MatchString(s) ||
			isLiteral(s) != literal.MatchString(s) || isParam(s) != param.MatchString(s) {
			t.Fatalf("a character class differs from its pattern on %q", s)
		}
	})
}

// A file from Parse is compiled once: Compile returns the matcher that
// validation built, unless the routes were replaced.
func TestCompileReusesTheMatcherOfParse(t *testing.T) {
	t.Parallel()
	f := mustParse(t, "../testdata/routes/valid.yaml")
	m1, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if m2, _ := Compile(f); m1 != m2 || m1 != f.matcher {
		t.Fatal("Compile compiled a parsed file again")
	}
	f.Routes = f.Routes[:len(f.Routes)-1]
	m3, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if m3 == m1 {
		t.Fatal("Compile returned the matcher of routes that were replaced")
	}
}
