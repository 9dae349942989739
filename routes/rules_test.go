package routes

import (
	"errors"
	"fmt"
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
	}
	for _, src := range routes {
		var r Route
		if err := yaml.Unmarshal([]byte(src), &r); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		checkRouteRules(t, &r)
	}
}
