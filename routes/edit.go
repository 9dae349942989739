package routes

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// State is where a route stands in its migration, as the quick flips of
// `ficus routes state` set it. Each state is a two-way split between the
// route's new upstream and the monolith:
//
//	legacy    new upstream 0%, monolith 100%
//	canary    new upstream P%, monolith 100-P% (0 < P < 100)
//	migrated  new upstream 100%, monolith 0%
//
// The split (not a plain `to:`) is kept in every state, so the route's
// sticky cohorts and tester overrides stay valid and a tester can still
// force either side; the fallback to the monolith still applies when the
// new upstream cannot take a request.
type State string

// The states of a route.
const (
	StateLegacy   State = "legacy"
	StateCanary   State = "canary"
	StateMigrated State = "migrated"
)

// ParseState reads a state name.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateLegacy, StateCanary, StateMigrated:
		return st, nil
	}
	return "", fmt.Errorf("state must be legacy, canary or migrated (got %q)", s)
}

// ErrNoChange is returned by the edits when the rule file already says
// what was asked.
var ErrNoChange = errors.New("the rules already say so: nothing to change")

// SetWeight returns the rule file text data with route rebalanced as a
// two-way split in which target gets percent and the other side the rest.
// A split of two keeps its two upstreams; a route with `to: X` becomes a
// split between X and target, or, when target is X, between X and the
// monolith. Anything else (a split of three or more, an unknown route or
// upstream, a percent outside 0..100) is refused with the reason. name is
// used in errors. The result is validated as a whole; comments and the
// other routes are kept, the layout is re-indented by the YAML encoder.
func SetWeight(name string, data []byte, route, target string, percent int) ([]byte, error) {
	f, r, err := parseFor(name, data, route)
	if err != nil {
		return nil, err
	}
	if percent < 0 || percent > 100 {
		return nil, fmt.Errorf("percent must be between 0 and 100 (got %d)", percent)
	}
	if f.Upstreams[target] == nil {
		return nil, fmt.Errorf("route %s: %q is not an upstream of the rule file (upstreams: %v)", route, target, sortedKeys(f.Upstreams))
	}
	var other string
	switch {
	case len(r.Split) == 2:
		i := slices.IndexFunc(r.Split, func(s Split) bool { return s.To == target })
		if i < 0 {
			return nil, fmt.Errorf("route %s splits between %s and %s, not %s", route, r.Split[0].To, r.Split[1].To, target)
		}
		other = r.Split[1-i].To
	case len(r.Split) > 2:
		return nil, fmt.Errorf("route %s splits %d ways; set-weight rebalances a two-way split (edit the file and apply it)", route, len(r.Split))
	case r.To != target:
		other = r.To
	case target == f.Monolith:
		return nil, fmt.Errorf("route %s sends everything to the monolith %s: name the new upstream to give a share to", route, target)
	default:
		other = f.Monolith
	}
	return withSplit(f, data, r, map[string]int{target: percent, other: 100 - percent})
}

// SetState returns the rule file text data with route put in state st
// (see State). newUpstream names the route's new upstream; empty means the
// one the route already has besides the monolith, which is required when
// it has none. percent is the new upstream's share for canary (1..99); 0
// keeps the share of a route already in canary. name is used in errors.
func SetState(name string, data []byte, route string, st State, newUpstream string, percent int) ([]byte, error) {
	f, r, err := parseFor(name, data, route)
	if err != nil {
		return nil, err
	}
	if cur, up, ok := RouteState(f, r); ok && cur == st && (newUpstream == "" || newUpstream == up) &&
		(st != StateCanary || percent == 0 || percent == weights(r)[up]) {
		return nil, ErrNoChange
	}
	var current []string
	for _, t := range r.Targets() {
		if t != f.Monolith {
			current = append(current, t)
		}
	}
	switch {
	case len(r.Split) > 2:
		return nil, fmt.Errorf("route %s splits %d ways; a state is a two-way split between one new upstream and the monolith (edit the file and apply it)", route, len(r.Split))
	case len(current) > 1:
		return nil, fmt.Errorf("route %s splits between %s and %s, neither the monolith %s", route, current[0], current[1], f.Monolith)
	case newUpstream == "" && len(current) == 0:
		return nil, fmt.Errorf("route %s has no new upstream yet: name it (--target)", route)
	case newUpstream == "":
		newUpstream = current[0]
	case newUpstream == f.Monolith:
		return nil, fmt.Errorf("%s is the monolith; name the route's new upstream", newUpstream)
	case f.Upstreams[newUpstream] == nil:
		return nil, fmt.Errorf("%q is not an upstream of the rule file (upstreams: %v)", newUpstream, sortedKeys(f.Upstreams))
	case len(current) == 1 && current[0] != newUpstream:
		return nil, fmt.Errorf("route %s already has the new upstream %s, not %s (edit the file to change it)", route, current[0], newUpstream)
	}
	share := weights(r)[newUpstream]
	switch st {
	case StateLegacy:
		share = 0
	case StateMigrated:
		share = 100
	case StateCanary:
		switch {
		case percent != 0:
			if percent < 1 || percent > 99 {
				return nil, fmt.Errorf("a canary share must be between 1 and 99 percent (got %d)", percent)
			}
			share = percent
		case share == 0 || share == 100 || len(r.Split) == 0:
			return nil, fmt.Errorf("route %s is not in canary yet: give the new upstream's share (--percent)", route)
		}
	default:
		return nil, fmt.Errorf("unknown state %q", st)
	}
	return withSplit(f, data, r, map[string]int{newUpstream: share, f.Monolith: 100 - share})
}

// RouteState says which State a route is in, and its new upstream; ok is
// false for a route that is no split of one new upstream and the monolith
// (nor a `to:`).
func RouteState(f *File, r *Route) (st State, newUpstream string, ok bool) {
	var others []string
	for _, t := range r.Targets() {
		if t != f.Monolith {
			others = append(others, t)
		}
	}
	if len(others) > 1 || len(r.Split) > 2 {
		return "", "", false
	}
	if len(others) == 0 {
		return StateLegacy, "", true
	}
	switch weights(r)[others[0]] {
	case 0:
		return StateLegacy, others[0], true
	case 100:
		return StateMigrated, others[0], true
	}
	return StateCanary, others[0], true
}

func parseFor(name string, data []byte, route string) (*File, *Route, error) {
	f, err := Parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range f.Routes {
		if r.Name == route {
			return f, r, nil
		}
	}
	names := make([]string, len(f.Routes))
	for i, r := range f.Routes {
		names[i] = r.Name
	}
	slices.Sort(names)
	return nil, nil, fmt.Errorf("no route %q in the rule file (routes: %v)", route, names)
}

// withSplit rewrites route r of data as a split with the given weights:
// an existing split keeps its entries and their order, only the weights
// change; a `to:` becomes a split, the new upstream first (new upstreams
// hold the low cohort buckets). The result is parsed and validated.
func withSplit(f *File, data []byte, r *Route, w map[string]int) ([]byte, error) {
	if len(r.Split) > 0 {
		same := len(w) == len(r.Split)
		for _, s := range r.Split {
			if v, ok := w[s.To]; !ok || v != s.Weight {
				same = false
			}
		}
		if same {
			return nil, ErrNoChange
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: %v", f.Name, err)
	}
	node := routeNode(doc.Content[0], r.Name)
	if node == nil {
		return nil, fmt.Errorf("%s: route %s is not a plain mapping in the file (aliases are not edited)", f.Name, r.Name)
	}
	if len(r.Split) > 0 {
		seq := mapValue(node, "split")
		for i, item := range seq.Content {
			setMapValue(item, "weight", intNode(w[r.Split[i].To]))
		}
	} else {
		order := make([]string, 0, 2)
		for t := range w {
			order = append(order, t)
		}
		// The new upstream first: it takes the low buckets.
		slices.SortFunc(order, func(a, b string) int {
			switch {
			case a == b:
				return 0
			case b == f.Monolith:
				return -1
			case a == f.Monolith:
				return 1
			}
			if a < b {
				return -1
			}
			return 1
		})
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if node.Style&yaml.FlowStyle != 0 {
			seq.Style = yaml.FlowStyle
		}
		for _, t := range order {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle,
				Content: []*yaml.Node{strNode("to"), strNode(t), strNode("weight"), intNode(w[t])}})
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == "to" {
				node.Content[i], node.Content[i+1] = strNode("split"), seq
			}
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, err := Parse(f.Name, buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// routeNode finds the mapping of the route named name under root's routes.
func routeNode(root *yaml.Node, name string) *yaml.Node {
	routes := mapValue(root, "routes")
	if routes == nil || routes.Kind != yaml.SequenceNode {
		return nil
	}
	for _, n := range routes.Content {
		if n.Kind != yaml.MappingNode {
			continue
		}
		if v := mapValue(n, "name"); v != nil && v.Kind == yaml.ScalarNode && v.Value == name {
			return n
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, strNode(key), v)
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
func intNode(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}
