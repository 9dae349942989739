package routes

import (
	"strings"
	"testing"
)

const editBase = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
  billing: {url: "http://127.0.0.1:3"}
routes:
  # the orders API moves first
  - name: orders
    match: {prefix: /api/orders}
    split:
      - {to: orders, weight: 20}
      - {to: legacy, weight: 80}
    sticky: {cookie: ficus_cohort}
  - name: billing
    match: {prefix: /api/billing}
    to: billing
  - {name: cart, match: {prefix: /cart}, to: legacy}
  - name: three
    match: {prefix: /three}
    split:
      - {to: orders, weight: 20}
      - {to: billing, weight: 20}
      - {to: legacy, weight: 60}
`

// routeOf parses text and returns the weights of route name.
func routeOf(t *testing.T, text []byte, name string) (map[string]int, *Route) {
	t.Helper()
	f, err := Parse("edited", text)
	if err != nil {
		t.Fatalf("edited file invalid: %v\n%s", err, text)
	}
	for _, r := range f.Routes {
		if r.Name == name {
			return weights(r), r
		}
	}
	t.Fatalf("route %s gone:\n%s", name, text)
	return nil, nil
}

func TestSetWeight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, route, target string
		percent             int
		want                map[string]int
		wantErr             string
	}{
		{name: "two-way split", route: "orders", target: "orders", percent: 50, want: map[string]int{"orders": 50, "legacy": 50}},
		{name: "the monolith side", route: "orders", target: "legacy", percent: 95, want: map[string]int{"orders": 5, "legacy": 95}},
		{name: "to a new upstream becomes a split with the monolith", route: "billing", target: "billing", percent: 30, want: map[string]int{"billing": 30, "legacy": 70}},
		{name: "to the monolith becomes a split with the target", route: "cart", target: "orders", percent: 10, want: map[string]int{"orders": 10, "legacy": 90}},
		{name: "all to one side", route: "orders", target: "orders", percent: 100, want: map[string]int{"orders": 100, "legacy": 0}},
		{name: "unchanged", route: "orders", target: "orders", percent: 20, wantErr: ErrNoChange.Error()},
		{name: "three-way", route: "three", target: "orders", percent: 30, wantErr: "splits 3 ways"},
		{name: "not in the split", route: "orders", target: "billing", percent: 30, wantErr: "splits between orders and legacy, not billing"},
		{name: "monolith of a monolith route", route: "cart", target: "legacy", percent: 30, wantErr: "name the new upstream"},
		{name: "unknown route", route: "nope", target: "orders", percent: 30, wantErr: `no route "nope"`},
		{name: "unknown upstream", route: "orders", target: "nope", percent: 30, wantErr: `"nope" is not an upstream`},
		{name: "percent above 100", route: "orders", target: "orders", percent: 101, wantErr: "between 0 and 100"},
		{name: "negative percent", route: "orders", target: "orders", percent: -1, wantErr: "between 0 and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := SetWeight("routes.yaml", []byte(editBase), tt.route, tt.target, tt.percent)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := routeOf(t, out, tt.route)
			if len(got) != len(tt.want) {
				t.Fatalf("weights %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("weights %v, want %v", got, tt.want)
				}
			}
			// The rest of the file is kept, comments included.
			if !strings.Contains(string(out), "# the orders API moves first") || !strings.Contains(string(out), "cookie: ficus_cohort") {
				t.Fatalf("file not kept:\n%s", out)
			}
			if d := Diff(mustParseText(t, editBase), mustParseText(t, string(out))); len(d) != 1 || d[0].Name != tt.route {
				t.Fatalf("more than the route changed: %+v", d)
			}
		})
	}
}

func mustParseText(t *testing.T, text string) *File {
	t.Helper()
	f, err := Parse("x", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSetState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, route string
		state       State
		target      string
		percent     int
		want        map[string]int
		wantErr     string
	}{
		{name: "canary to migrated", route: "orders", state: StateMigrated, want: map[string]int{"orders": 100, "legacy": 0}},
		{name: "canary to legacy keeps the split", route: "orders", state: StateLegacy, want: map[string]int{"orders": 0, "legacy": 100}},
		{name: "canary share changed", route: "orders", state: StateCanary, percent: 40, want: map[string]int{"orders": 40, "legacy": 60}},
		{name: "canary already", route: "orders", state: StateCanary, wantErr: ErrNoChange.Error()},
		{name: "to a new upstream is migrated already", route: "billing", state: StateMigrated, wantErr: ErrNoChange.Error()},
		{name: "to a new upstream back to legacy", route: "billing", state: StateLegacy, want: map[string]int{"billing": 0, "legacy": 100}},
		{name: "legacy route to canary names its upstream", route: "cart", state: StateCanary, target: "orders", percent: 5, want: map[string]int{"orders": 5, "legacy": 95}},
		{name: "legacy route to migrated", route: "cart", state: StateMigrated, target: "billing", want: map[string]int{"billing": 100, "legacy": 0}},
		{name: "legacy route already legacy", route: "cart", state: StateLegacy, wantErr: ErrNoChange.Error()},
		{name: "legacy route without a new upstream", route: "cart", state: StateMigrated, wantErr: "no new upstream yet"},
		{name: "canary without a share", route: "cart", state: StateCanary, target: "orders", wantErr: "--percent"},
		{name: "canary share of 100", route: "orders", state: StateCanary, percent: 100, wantErr: "between 1 and 99"},
		{name: "another new upstream", route: "orders", state: StateMigrated, target: "billing", wantErr: "already has the new upstream orders"},
		{name: "the monolith as new upstream", route: "cart", state: StateMigrated, target: "legacy", wantErr: "is the monolith"},
		{name: "three-way", route: "three", state: StateMigrated, wantErr: "splits 3 ways"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := SetState("routes.yaml", []byte(editBase), tt.route, tt.state, tt.target, tt.percent)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, r := routeOf(t, out, tt.route)
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("weights %v, want %v\n%s", got, tt.want, out)
				}
			}
			f := mustParseText(t, string(out))
			if st, _, ok := RouteState(f, r); !ok || st != tt.state {
				t.Fatalf("state after the edit: %s %v, want %s", st, ok, tt.state)
			}
			// The new upstream comes first in a new split: it holds the low buckets.
			if r.Split[0].To == f.Monolith {
				t.Fatalf("monolith first: %+v", r.Split)
			}
		})
	}
	if _, err := ParseState("done"); err == nil {
		t.Fatal("unknown state accepted")
	}
	if _, err := SetState("x", []byte("version: 1\n"), "orders", StateLegacy, "", 0); err == nil {
		t.Fatal("invalid file accepted")
	}
}

// A route written as a flow mapping stays a valid flow mapping.
func TestSetWeightFlowRoute(t *testing.T) {
	t.Parallel()
	out, err := SetWeight("x", []byte(editBase), "cart", "orders", 25)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := routeOf(t, out, "cart"); got["orders"] != 25 || got["legacy"] != 75 {
		t.Fatalf("%v\n%s", got, out)
	}
}
