package routes

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ChangeKind says what happened to a route or upstream between two files.
type ChangeKind string

// The kinds of change.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is one difference between two rule files.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// What is "route", "upstream", "bridge", "rate_limit" or "monolith".
	What string `json:"what"`
	Name string `json:"name"`
	// Details say, for a changed item, what changed, one line each (e.g.
	// "split orders: 10% -> 25%").
	Details []string `json:"details,omitempty"`
}

// Diff lists the differences from old to new: upstreams first, then
// bridges, then named rate limits, then routes, each by name.
func Diff(old, new *File) []Change {
	var out []Change
	if old.Monolith != new.Monolith {
		out = append(out, Change{Kind: Changed, What: "monolith", Name: new.Monolith,
			Details: []string{fmt.Sprintf("monolith: %s -> %s", old.Monolith, new.Monolith)}})
	}
	for _, name := range unionKeys(old.Upstreams, new.Upstreams) {
		o, n := old.Upstreams[name], new.Upstreams[name]
		switch {
		case o == nil:
			out = append(out, Change{Kind: Added, What: "upstream", Name: name, Details: []string{"url: " + n.URL}})
		case n == nil:
			out = append(out, Change{Kind: Removed, What: "upstream", Name: name})
		case !reflect.DeepEqual(o, n):
			out = append(out, Change{Kind: Changed, What: "upstream", Name: name, Details: fieldDiff(o, n)})
		}
	}
	for _, name := range unionKeys(old.Bridges, new.Bridges) {
		o, n := old.Bridges[name], new.Bridges[name]
		switch {
		case o == nil:
			out = append(out, Change{Kind: Added, What: "bridge", Name: name, Details: []string{"cookie: " + n.Cookie}})
		case n == nil:
			out = append(out, Change{Kind: Removed, What: "bridge", Name: name})
		case !reflect.DeepEqual(o, n):
			d := fieldDiff(o, n)
			if o.whoamiURL != n.whoamiURL {
				d = append(d, fmt.Sprintf("whoami url: %s -> %s", o.whoamiURL, n.whoamiURL))
			}
			out = append(out, Change{Kind: Changed, What: "bridge", Name: name, Details: d})
		}
	}
	for _, name := range unionKeys(old.RateLimits, new.RateLimits) {
		o, n := old.RateLimits[name], new.RateLimits[name]
		switch {
		case o == nil:
			out = append(out, Change{Kind: Added, What: "rate_limit", Name: name, Details: []string{"rate: " + n.Rate.String() + ", by: " + n.By}})
		case n == nil:
			out = append(out, Change{Kind: Removed, What: "rate_limit", Name: name})
		case *o != *n:
			out = append(out, Change{Kind: Changed, What: "rate_limit", Name: name, Details: fieldDiff(o, n)})
		}
	}
	oldRoutes, newRoutes := routesByName(old), routesByName(new)
	for _, name := range unionKeys(oldRoutes, newRoutes) {
		o, n := oldRoutes[name], newRoutes[name]
		switch {
		case o == nil:
			out = append(out, Change{Kind: Added, What: "route", Name: name, Details: []string{describe(n)}})
		case n == nil:
			out = append(out, Change{Kind: Removed, What: "route", Name: name, Details: []string{describe(o)}})
		case !reflect.DeepEqual(o, n):
			out = append(out, Change{Kind: Changed, What: "route", Name: name, Details: routeDiff(o, n)})
		}
	}
	return out
}

// WriteDiff prints changes for people: one "+", "-" or "~" line per item,
// its details indented below. It prints "no changes" when there are none.
func WriteDiff(w io.Writer, changes []Change) error {
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "no changes")
		return err
	}
	sign := map[ChangeKind]string{Added: "+", Removed: "-", Changed: "~"}
	for _, c := range changes {
		if _, err := fmt.Fprintf(w, "%s %s %s\n", sign[c.Kind], c.What, c.Name); err != nil {
			return err
		}
		for _, d := range c.Details {
			if _, err := fmt.Fprintf(w, "    %s\n", d); err != nil {
				return err
			}
		}
	}
	return nil
}

func describe(r *Route) string {
	return matchString(r.Match) + " -> " + targetString(r)
}

func matchString(m Match) string {
	var b strings.Builder
	b.WriteString(m.Host)
	if m.Path != "" {
		b.WriteString(m.Path)
	} else {
		b.WriteString(m.Prefix + "/**")
	}
	if len(m.Methods) > 0 {
		b.WriteString(" [" + strings.Join(m.Methods, ",") + "]")
	}
	if h := m.Header; h != nil {
		b.WriteString(" header " + h.Name)
		if h.Value != "" {
			b.WriteString("=" + h.Value)
		}
	}
	return b.String()
}

func targetString(r *Route) string {
	if r.To != "" {
		return r.To
	}
	parts := make([]string, len(r.Split))
	for i, s := range r.Split {
		parts[i] = fmt.Sprintf("%s %d%%", s.To, s.Weight)
	}
	return strings.Join(parts, ", ")
}

func routeDiff(o, n *Route) []string {
	var out []string
	if !reflect.DeepEqual(o.Match, n.Match) {
		out = append(out, fmt.Sprintf("match: %s -> %s", matchString(o.Match), matchString(n.Match)))
	}
	if targetString(o) != targetString(n) {
		ow, nw := weights(o), weights(n)
		for _, t := range unionKeys(ow, nw) {
			if ow[t] != nw[t] {
				out = append(out, fmt.Sprintf("weight %s: %d%% -> %d%%", t, ow[t], nw[t]))
			}
		}
	}
	rest := func(r *Route) Route {
		c := *r
		c.Match, c.To, c.Split = Match{}, "", nil
		if c.Auth != nil {
			a := *c.Auth
			a.bridge = nil // a changed bridge is a bridge's change, named below
			c.Auth = &a
		}
		c.limit = nil // a changed named limit is the limit's change, listed above
		return c
	}
	ro, rn := rest(o), rest(n)
	out = append(out, fieldDiff(&ro, &rn)...)
	if ob, nb := o.Auth.BridgeRule(), n.Auth.BridgeRule(); ob != nil && nb != nil && ob.name == nb.name && !reflect.DeepEqual(ob, nb) {
		out = append(out, "bridge "+nb.name+" changed")
	}
	if ol, nl := o.limit, n.limit; ol != nil && nl != nil && ol.name != "" && ol.name == nl.name && *ol != *nl {
		out = append(out, "rate_limit "+nl.name+" changed")
	}
	return out
}

func weights(r *Route) map[string]int {
	w := map[string]int{}
	if r.To != "" {
		w[r.To] = 100
	}
	for _, s := range r.Split {
		w[s.To] = s.Weight
	}
	return w
}

// fieldDiff compares two structs field by field (by yaml name) and renders
// each differing field as "field: old -> new".
func fieldDiff(o, n any) []string {
	ov, nv := reflect.ValueOf(o).Elem(), reflect.ValueOf(n).Elem()
	var out []string
	for i := 0; i < ov.NumField(); i++ {
		f := ov.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		a, b := ov.Field(i).Interface(), nv.Field(i).Interface()
		if !reflect.DeepEqual(a, b) {
			out = append(out, fmt.Sprintf("%s: %s -> %s", name, flow(a), flow(b)))
		}
	}
	return out
}

// flow renders a value as one-line YAML.
func flow(v any) string {
	rv := reflect.ValueOf(v)
	if (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.IsNil() {
		return "(none)"
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "\n") {
		lines := strings.Split(s, "\n")
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		s = "{" + strings.Join(lines, ", ") + "}"
	}
	return s
}

func routesByName(f *File) map[string]*Route {
	m := make(map[string]*Route, len(f.Routes))
	for _, r := range f.Routes {
		m[r.Name] = r
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := sortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
